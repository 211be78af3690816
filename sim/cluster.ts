/**
 * One simulated cluster: the resource model plus everything that acts on it over time
 * (clock, tasks, lock files, bandwidth sharing) and what observes or disturbs it (counters,
 * faults). The HTTPS and SSH front ends and the in-process API all share one instance.
 */
import { AccessControl } from './access.js';
import { SimClock } from './clock.js';
import { Counters } from './counters.js';
import { fail } from './errors.js';
import { Faults } from './faults.js';
import { LockFiles } from './locks.js';
import type { ResolvedScenario } from './scenario.js';
import { ClusterState, type Guest } from './state.js';
import { TaskRegistry } from './tasks.js';
import { TransferEngine } from './transfers.js';

/** Who is acting: `user@realm!token` for API calls, `root@pam` for SSH and HA. */
export interface Caller {
  authid: string;
}

/** root on a node's shell (SSH, `qm`). */
export const ROOT: Caller = { authid: 'root@pam' };
/** The HA cluster resource manager, which acts as root@pam but is not subject to HA redirection. */
export const HA_MANAGER: Caller = { authid: 'root@pam' };

type PowerHook = (node: string, online: boolean) => Promise<void>;

export class Cluster {
  readonly state: ClusterState;
  readonly counters = new Counters();
  readonly faults: Faults;
  readonly tasks: TaskRegistry;
  readonly locks: LockFiles;
  readonly access: AccessControl;
  readonly transfers: TransferEngine;
  readonly #powerHooks: PowerHook[] = [];
  #stopped = false;

  constructor(
    readonly scenario: ResolvedScenario,
    readonly clock: SimClock,
    seed = 1,
  ) {
    this.state = new ClusterState(scenario, clock.now());
    this.faults = new Faults(
      {
        setNodeOnline: (node, online) => this.setNodeOnline(node, online),
        offlineNodes: () => [...this.state.nodes.values()].filter((n) => !n.online).map((n) => n.name),
      },
      seed,
    );
    this.tasks = new TaskRegistry(clock, this.state, this.counters, this.faults);
    this.locks = new LockFiles(clock);
    this.transfers = new TransferEngine(
      clock,
      (end) => this.state.storageLinkBytesPerSecond(end) ?? this.state.node(end).linkBytesPerSecond,
    );
    this.access = new AccessControl(
      scenario.tokens.map((t) => ({ tokenId: t.id, secret: t.secret, acl: t.acl })),
      scenario.roles,
    );
  }

  /** Called by front ends that must follow node power (HTTPS and SSH listeners). */
  onPowerChange(hook: PowerHook): void {
    this.#powerHooks.push(hook);
  }

  /**
   * Takes a node off the network (crash, cable, reboot) or brings it back. Transfers to or
   * from it break; its listeners close or reopen.
   */
  async setNodeOnline(name: string, online: boolean): Promise<void> {
    const node = this.state.node(name);
    if (node.online === online) return;
    node.online = online;
    if (!online) this.transfers.abortNode(name, new Error(`Connection to node '${name}' lost`));
    for (const hook of this.#powerHooks) await hook(name, online);
  }

  /** Epoch milliseconds on a node's own clock (true simulated time plus its skew). */
  nodeNow(nodeName: string): number {
    return this.clock.now() + this.state.node(nodeName).clockSkewMs;
  }

  /** A majority of nodes online, as corosync requires for writes. */
  get quorate(): boolean {
    const nodes = [...this.state.nodes.values()];
    return nodes.filter((n) => n.online).length * 2 > nodes.length;
  }

  requireQuorum(): void {
    if (!this.quorate) throw fail('cluster not ready - no quorum?');
  }

  /** Free memory of a node for a guest about to run there (host overhead, running guests, reservations). */
  freeMemory(nodeName: string): number {
    const node = this.state.node(nodeName);
    return node.memory - this.usedMemory(nodeName) - node.reservedMemory;
  }

  usedMemory(nodeName: string): number {
    const node = this.state.node(nodeName);
    let used = hostOverhead(node.memory);
    for (const g of this.state.guestsOn(nodeName)) if (g.status === 'running') used += guestMemoryInUse(g);
    return used;
  }

  get stopped(): boolean {
    return this.#stopped;
  }

  stop(): void {
    this.#stopped = true;
    this.clock.stop();
  }
}

/** What the host itself uses: 1.5 GiB plus 2% of RAM (kernel, pve services, ZFS ARC left out). */
function hostOverhead(memory: number): number {
  return Math.round(1.5 * 1024 ** 3 + memory * 0.02);
}

export function guestMemoryInUse(g: Guest): number {
  return Math.round(g.memoryBytes * g.memUsage);
}
