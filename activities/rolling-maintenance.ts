/**
 * Rolling maintenance activities: plan the rollout, check a node's turn, upgrade it over SSH
 * (output to a log file), reboot it, wait until it is back, bring its guests home, verify.
 *
 * Two steps must never happen twice by accident, and each looks at the world before acting:
 * the upgrade (a retried attempt whose predecessor had sent the command asks apt what is left
 * instead of running it again) and the reboot (sent only while the node still runs the boot
 * the workflow saw before it). Everything else only reads, and may be repeated freely.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  describeRollout,
  planRollout,
  RolloutRefusedError,
  type MaintenancePlan,
  type NodeSettings,
} from '../lib/maintenance/plan.js';
import {
  parseAptOutput,
  PENDING_UPGRADES_CHECK,
  pveVersionOf,
  REBOOT_REQUIRED_CHECK,
  rebootReasons,
  type AptSummary,
} from '../lib/maintenance/upgrade.js';
import type { RollingMaintenanceInput } from '../lib/operations/catalog.js';
import { defaultCostAssumptions, migrationMs, transferBytes, type MigrationMode } from '../lib/planning/estimate.js';
import type { GuestMove } from '../lib/planning/evacuation.js';
import type { PveClient } from '../lib/pve/client.js';
import type { RunbookPlan } from '../lib/runbooks/plan.js';
import { PveAuthError, PvePermissionError, PveTlsError, PveValidationError } from '../lib/pve/errors.js';
import { runCommand, SshConnectError, type SshTarget } from '../lib/ssh/client.js';
import type { AwayGuest, UpgradeOutcome } from '../workflows/maintenance-definitions.js';
import type { PlanDraft } from '../workflows/operation.js';
import type { WorkerDeps } from '../worker/deps.js';
import { readClusterSnapshot } from './inventory-snapshot.js';
import type { TaskMarker } from './evacuation.js';
import { operationId, prepareRunbook } from './runbook.js';
import { sshProblems, withSshFailures } from './node-ssh.js';
import { read } from './transient.js';

export interface RollingMaintenanceDeps extends Pick<WorkerDeps, 'pve' | 'config' | 'sshTarget'> {
  /** How often a rebooting node is looked at. Tests and the benchmark shorten it with their simulated clock. */
  pollMs?: number;
  /** Where upgrade logs go; `maintenance/` beside the audit log (data/) when absent. */
  logDir?: string;
  /** Where runbooks live (see activities/runbook.ts). */
  runbooksDir?: string;
}

export type RollingMaintenanceRequest = Omit<RollingMaintenanceInput, 'meta'>;

/** What the API and the cluster say about a node right now. */
export interface NodeProbe {
  /** Its status could be read (through whichever node answers). */
  reachable: boolean;
  /** The cluster lists it online. */
  online: boolean;
  quorate: boolean;
  uptimeSeconds?: number;
  version?: string;
  kernel?: string;
}

/** Failure types the workflows report; none is retried, each is a fact about the world. */
export const MAINTENANCE_FAILURES = [
  'PlanRefused',
  'NodeNotReady',
  'UpgradeFailed',
  'UpgradeInterrupted',
  'NodeNotBack',
  'VerificationFailed',
  'InvalidRequest',
] as const;

/** Tasks that may run beside a maintenance: consoles. Anything else on a node is someone else's work in progress. */
const HARMLESS_TASKS = /^(vncproxy|vncshell|spiceproxy|spiceshell|termproxy)$/;
const TAIL_LINES = 40;
const HEARTBEAT_MS = 2_000;

function fail(type: (typeof MAINTENANCE_FAILURES)[number], message: string, details?: unknown): never {
  throw ApplicationFailure.create({ type, message, nonRetryable: true, ...(details ? { details: [details] } : {}) });
}

function isPermanent(err: unknown): boolean {
  return err instanceof PveAuthError || err instanceof PvePermissionError || err instanceof PveValidationError || err instanceof PveTlsError;
}

/** Reads that fail for good (credentials, privileges) stop the attempt; the rest are retried by Temporal. */
async function reading<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApplicationFailure) throw err;
    throw ApplicationFailure.create({
      type: err instanceof Error ? err.name : 'Error',
      message: err instanceof Error ? err.message : String(err),
      nonRetryable: isPermanent(err),
    });
  }
}

/** Runs a per-node part of the plan, naming the node in its refusal. */
async function forNode<T>(node: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApplicationFailure && err.nonRetryable) {
      throw ApplicationFailure.create({ type: err.type ?? 'PlanRefused', message: `runbook for ${node}: ${err.message}`, nonRetryable: true });
    }
    throw err;
  }
}

function label(g: { type: string; vmid: number; name: string }): string {
  return `${g.type === 'qemu' ? 'VM' : 'CT'} ${g.vmid} (${g.name})`;
}

/** `rolling-maintenance/home/<run>` -> `rolling-maintenance_home/<run>`-like path segments, nothing outside the log dir. */
function safeSegments(key: string): string[] {
  return key.split('/').map((s) => s.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+$/, '_')).filter(Boolean);
}

/** The last lines of a stream of output chunks. */
function tailOf(lines: number) {
  const kept: string[] = [];
  let partial = '';
  return {
    push(chunk: string) {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      kept.push(...parts);
      kept.splice(0, Math.max(0, kept.length - lines));
    },
    lines: () => (partial ? [...kept, partial] : [...kept]).slice(-lines),
  };
}

export function createRollingMaintenanceActivities(deps: RollingMaintenanceDeps) {
  const pollMs = deps.pollMs ?? 2_000;
  const logDir = deps.logDir ?? join(dirname(resolve(deps.config.audit.path)), 'maintenance');

  function environmentOf(environment: string) {
    const env = deps.config.environments[environment];
    if (!env) fail('InvalidRequest', `environment: unknown environment '${environment}'`);
    return env;
  }

  async function sshTo(environment: string, node: string): Promise<SshTarget> {
    return withSshFailures(() => deps.sshTarget(environment, node));
  }

  async function probe(client: PveClient, node: string): Promise<NodeProbe> {
    let online = false;
    let quorate = false;
    try {
      const status = await client.cluster.status();
      quorate = Boolean(status.find((e) => e.type === 'cluster')?.quorate);
      online = Boolean(status.find((e) => e.type === 'node' && e.name === node)?.online);
    } catch (err) {
      if (isPermanent(err)) throw err;
      return { reachable: false, online, quorate };
    }
    try {
      const s = await client.nodes.status({ node });
      const kernel = (s as { 'current-kernel'?: { release?: string } })['current-kernel']?.release;
      const version = s.pveversion ? pveVersionOf(s.pveversion) : undefined;
      return {
        reachable: true,
        online,
        quorate,
        ...(s.uptime !== undefined ? { uptimeSeconds: s.uptime } : {}),
        ...(version ? { version } : {}),
        ...(kernel ? { kernel } : {}),
      };
    } catch (err) {
      if (isPermanent(err)) throw err;
      return { reachable: false, online, quorate };
    }
  }

  /** Tasks running on each node that a maintenance must not cut across (backups, migrations, clones ...). */
  async function busyTasks(client: PveClient, nodes: string[]): Promise<string[]> {
    const busy: string[] = [];
    for (const node of nodes) {
      const tasks = await read(() => client.tasks.list({ node, source: 'active', limit: 100 }));
      for (const t of tasks) {
        if (!HARMLESS_TASKS.test(t.type)) busy.push(`${node} is running ${t.type}${t.id ? ` ${t.id}` : ''} (${t.upid})`);
      }
    }
    return busy;
  }

  async function openLog(logKey: string, node: string): Promise<{ path: string; stream: WriteStream }> {
    const path = join(logDir, ...safeSegments(logKey), `${node}.log`);
    await mkdir(dirname(path), { recursive: true });
    return { path, stream: createWriteStream(path, { flags: 'a', mode: 0o640 }) };
  }

  return {
    /**
     * Reads the cluster once and plans the rollout: order, groups, every node's evacuation.
     * Refuses — with every reason — a rollout that cannot work.
     */
    async planRollingMaintenance(input: RollingMaintenanceRequest): Promise<PlanDraft<MaintenancePlan>> {
      const env = environmentOf(input.environment);
      const client = await deps.pve(input.environment);
      const ctx = Context.current();
      return reading(async () => {
        const clusterNodes = (await read(() => client.nodes.list())).map((n) => n.node).sort();
        const nodes = input.nodes ?? clusterNodes;
        const problems: string[] = [];
        const usesSsh = input.upgrade || input.reboot !== 'never' || input.haMaintenance;
        if (usesSsh) {
          const ssh = sshProblems(env, nodes);
          if (ssh.length > 0) problems.push(`the upgrade and reboot run over SSH, but ${ssh.join('; ')}`);
        }
        const status = await read(() => client.cluster.status());
        if (!status.find((e) => e.type === 'cluster')?.quorate) problems.push('the cluster is not quorate');
        problems.push(...(await busyTasks(client, clusterNodes.filter((n) => status.some((e) => e.type === 'node' && e.name === n && e.online)))));

        const snapshot = await readClusterSnapshot(client, {
          detailsFor: nodes.filter((n) => clusterNodes.includes(n)),
          onProgress: (done, total) => ctx.heartbeat({ read: `${done}/${total} guests` }),
        });
        const drain: NodeSettings['drain'] = {
          maxParallel: input.maxParallel,
          maxParallelPerTarget: input.maxParallelPerTarget,
          ...(input.bwlimitMiBps ? { bwlimitMiBps: input.bwlimitMiBps } : {}),
          includeStopped: input.includeStopped,
          includeTemplates: false,
          localDisks: input.localDisks,
          containers: input.containers,
          containerShutdownTimeoutSeconds: input.containerShutdownTimeoutSeconds,
          onFailure: 'stop',
          linkGbps: input.linkGbps,
        };
        let rollout;
        try {
          rollout = planRollout(
            snapshot,
            {
              ...(input.nodes ? { nodes: input.nodes } : {}),
              keepOrder: input.keepOrder,
              parallelNodes: input.parallelNodes,
              ...(input.minNodesUp ? { minNodesUp: input.minNodesUp } : {}),
              drain,
            },
            env.policy,
          );
        } catch (err) {
          if (!(err instanceof RolloutRefusedError)) throw err;
          if (err.field) fail('PlanRefused', `${err.field}: ${err.problems.join('; ')}`, { field: err.field });
          problems.push(...err.problems);
        }
        if (problems.length > 0 || !rollout) {
          const listed = problems.length === 1 ? problems[0] : problems.map((p, i) => `(${i + 1}) ${p}`).join(' ');
          fail('PlanRefused', `rolling maintenance refused: ${listed}`);
        }

        let runbook: MaintenancePlan['runbook'];
        if (input.runbook) {
          const { name, parameters } = input.runbook;
          const plans: Record<string, RunbookPlan> = {};
          let sha256 = '';
          for (const { node } of rollout.turns) {
            const prepared = await forNode(node, () =>
              prepareRunbook({ ...deps, ...(deps.runbooksDir ? { runbooksDir: deps.runbooksDir } : {}) }, { environment: input.environment, runbook: name, parameters: { ...parameters, node } }, operationId()),
            );
            plans[node] = prepared.details.plan;
            sha256 = prepared.details.runbookSha256;
          }
          runbook = { name, sha256, plans };
        }

        const versions: Record<string, string> = {};
        for (const node of rollout.clusterNodes) {
          const s = await read(() => client.nodes.status({ node }));
          versions[node] = (s.pveversion && pveVersionOf(s.pveversion)) ?? 'unknown';
        }
        return describeRollout({
          environment: input.environment,
          clusterNodes: rollout.clusterNodes,
          turns: rollout.turns,
          batches: rollout.batches,
          versions,
          approveEachNode: input.approveEachNode,
          ...(runbook ? { runbook } : {}),
          pauseBetweenNodesMs: input.pauseBetweenNodesSeconds * 1000,
          settings: {
            upgrade: input.upgrade,
            upgradeCommand: input.upgradeCommand,
            reboot: input.reboot,
            returnGuests: input.returnGuests,
            haMaintenance: input.haMaintenance,
            drain,
            memoryHeadroom: env.policy.memory_headroom,
            memoryBasis: env.policy.memory_basis,
            minNodesUp: rollout.minNodesUp,
            upgradeTimeoutMs: input.upgradeTimeoutSeconds * 1000,
            bootTimeoutMs: input.bootTimeoutSeconds * 1000,
            maxNodeMs: input.maxNodeMinutes * 60_000,
            stopOnFailure: input.stopOnFailure,
          },
        });
      });
    },

    /**
     * May the node be taken down now? The cluster is quorate, every other node is online
     * (except those maintained alongside it), enough stay up, and the node runs nothing that
     * a maintenance would cut across.
     */
    async checkNodeTurn(input: { environment: string; node: string; alongside: string[]; minNodesUp: number }): Promise<void> {
      const client = await deps.pve(input.environment);
      await reading(async () => {
        const status = await read(() => client.cluster.status());
        const nodes = status.filter((e) => e.type === 'node');
        const problems: string[] = [];
        if (!status.find((e) => e.type === 'cluster')?.quorate) problems.push('the cluster is not quorate');
        if (!nodes.find((n) => n.name === input.node)?.online) problems.push(`${input.node} is offline`);
        const down = nodes.filter((n) => !n.online && n.name !== input.node && !input.alongside.includes(n.name)).map((n) => n.name);
        if (down.length > 0) problems.push(`${down.join(', ')} ${down.length === 1 ? 'is' : 'are'} offline`);
        const up = nodes.filter((n) => n.online && n.name !== input.node && !input.alongside.includes(n.name)).length;
        if (up < input.minNodesUp) problems.push(`only ${up} node(s) would stay up, and ${input.minNodesUp} must`);
        if (problems.length === 0) problems.push(...(await busyTasks(client, [input.node])));
        if (problems.length > 0) fail('NodeNotReady', `${input.node} cannot be taken down now: ${problems.join('; ')}`);
      });
    },

    /** Uptime, version and kernel of a node, as the API reports them. */
    async readNodeState(input: { environment: string; node: string }): Promise<NodeProbe> {
      const client = await deps.pve(input.environment);
      return reading(() => probe(client, input.node));
    },

    /**
     * Runs the upgrade command over SSH, its output appended to the node's log file, and
     * reports what apt upgraded and whether the node must reboot. Exactly once: when an
     * earlier attempt had sent the command (its worker was lost), this one asks apt what is
     * left to upgrade instead, and fails for the operator unless nothing is.
     */
    async upgradeNode(input: { environment: string; node: string; command: string; timeoutMs: number; logKey: string }): Promise<UpgradeOutcome> {
      const { node } = input;
      const ctx = Context.current();
      const earlier = ctx.info.heartbeatDetails as UpgradeHeartbeat | undefined;
      const target = await sshTo(input.environment, node);
      const log = await openLog(input.logKey, node);
      const note = (text: string) => log.stream.write(`\n# ${new Date().toISOString()} ${node} (attempt ${ctx.info.attempt}): ${text}\n`);
      const run = (command: string, name: string, timeoutMs: number, onOutput?: (chunk: string) => void) =>
        withSshFailures(() => runCommand(target, command, { timeoutMs, label: name, allowNonZeroExit: true, ...(onOutput ? { onOutput } : {}) }));
      try {
        const versionBefore = earlier?.versionBefore ?? pveVersionOf((await run('pveversion', 'pveversion', 60_000)).stdout);
        let summary: AptSummary;
        let tail: string[];
        if (earlier?.sent) {
          note(`the worker running the upgrade was lost; asking apt what is left (${PENDING_UPGRADES_CHECK})`);
          const check = await run(PENDING_UPGRADES_CHECK, 'apt-get -s dist-upgrade', 120_000, (chunk) => log.stream.write(chunk));
          const pending = parseAptOutput(check.stdout);
          if (pending.changed !== 0) {
            const names = [...pending.upgraded, ...pending.installed];
            fail(
              'UpgradeInterrupted',
              `the upgrade on ${node} was interrupted (the worker running it was lost) and ` +
                `${pending.changed === undefined ? 'apt cannot say what is left' : `${pending.changed} package(s) are still to upgrade${names.length ? ` (${names.slice(0, 8).join(', ')}${names.length > 8 ? ', ...' : ''})` : ''}`}; ` +
                `check the node (dpkg --audit), then resume to run the upgrade again, or skip the node`,
              { logFile: log.path },
            );
          }
          summary = { upgraded: earlier.upgraded ?? [], installed: earlier.installed ?? [] };
          tail = earlier.tail ?? [];
        } else {
          note(`$ ${input.command}`);
          const output = tailOf(TAIL_LINES);
          let stdout = '';
          const state: UpgradeHeartbeat = { sent: true, ...(versionBefore ? { versionBefore } : {}) };
          ctx.heartbeat(state);
          const beat = setInterval(() => ctx.heartbeat({ ...state, tail: output.lines() }), HEARTBEAT_MS);
          let result;
          try {
            result = await run(input.command, 'upgrade', input.timeoutMs, (chunk) => {
              log.stream.write(chunk);
              output.push(chunk);
              stdout += chunk;
              if (!state.upgraded && /^\d+ upgraded, /m.test(stdout)) {
                const planned = parseAptOutput(stdout);
                Object.assign(state, { upgraded: planned.upgraded, installed: planned.installed });
                ctx.heartbeat(state);
              }
            });
          } finally {
            clearInterval(beat);
          }
          tail = output.lines();
          if (result.exitCode !== 0) {
            fail('UpgradeFailed', `the upgrade on ${node} exited ${result.exitCode}: ${tail.at(-1) ?? 'no output'}`, { logFile: log.path, tail });
          }
          summary = parseAptOutput(result.stdout);
        }
        const check = await run(REBOOT_REQUIRED_CHECK, 'reboot-required check', 60_000);
        const reasons = rebootReasons(summary, check.stdout);
        if (earlier?.sent && !earlier.upgraded) reasons.push("the upgrade's package list was lost with its worker, so a reboot is assumed needed");
        const versionAfter = pveVersionOf((await run('pveversion', 'pveversion', 60_000)).stdout);
        note(
          `upgraded ${summary.upgraded.length}, installed ${summary.installed.length}; ` +
            `${reasons.length ? `reboot required: ${reasons.join('; ')}` : 'no reboot required'}; version ${versionBefore ?? '?'} -> ${versionAfter ?? '?'}`,
        );
        return {
          upgraded: summary.upgraded,
          installed: summary.installed,
          rebootReasons: reasons,
          ...(versionBefore ? { versionBefore } : {}),
          ...(versionAfter ? { versionAfter } : {}),
          logFile: log.path,
          tail,
          resumed: Boolean(earlier?.sent),
        };
      } finally {
        await new Promise<void>((done) => log.stream.end(done));
      }
    },

    /** Whether a node asks for a reboot by itself (when nothing was upgraded here). */
    async checkRebootRequired(input: { environment: string; node: string }): Promise<string[]> {
      const target = await sshTo(input.environment, input.node);
      const check = await withSshFailures(() => runCommand(target, REBOOT_REQUIRED_CHECK, { timeoutMs: 60_000, label: 'reboot-required check' }));
      return rebootReasons({ upgraded: [], installed: [] }, check.stdout);
    },

    /**
     * Sends `reboot`, unless the node already went down (or came back with a newer boot)
     * since `uptimeBefore` was read: then an earlier attempt's reboot is under way.
     */
    async rebootNode(input: { environment: string; node: string; uptimeBefore: number }): Promise<{ sent: boolean }> {
      const client = await deps.pve(input.environment);
      const now = await reading(() => probe(client, input.node));
      if (!now.reachable || !now.online || (now.uptimeSeconds ?? Infinity) < input.uptimeBefore) return { sent: false };
      const target = await sshTo(input.environment, input.node);
      try {
        await runCommand(target, 'reboot', { timeoutMs: 60_000, label: 'reboot' });
      } catch (err) {
        // A node going down may drop the session before `reboot` reports back.
        if (!(err instanceof SshConnectError && /closed before the command finished/.test(err.message))) {
          return withSshFailures(() => Promise.reject(err));
        }
      }
      return { sent: true };
    },

    /**
     * Waits until the node has been down and is back: its API answers, the cluster sees it
     * online and quorate, and it reports the expected version. "Has been down" is seen
     * directly, or — for a reboot that happened while no worker watched — from an uptime
     * shorter than before the reboot.
     */
    async waitForNodeBack(input: {
      environment: string;
      node: string;
      uptimeBefore: number;
      expectVersion?: string;
      /** Epoch ms after which the node counts as not back. */
      until: number;
    }): Promise<NodeProbe> {
      const client = await deps.pve(input.environment);
      const ctx = Context.current();
      let wentDown = (ctx.info.heartbeatDetails as { wentDown?: boolean } | undefined)?.wentDown ?? false;
      return reading(async () => {
        for (;;) {
          const p = await probe(client, input.node);
          if (!p.reachable || !p.online || (p.uptimeSeconds ?? Infinity) < input.uptimeBefore) wentDown = true;
          const waitingFor = !wentDown
            ? 'it to go down'
            : !p.reachable
              ? 'its API to answer'
              : !p.online
                ? 'the cluster to see it online'
                : !p.quorate
                  ? 'the cluster to be quorate'
                  : input.expectVersion && p.version !== input.expectVersion
                    ? `version ${input.expectVersion} (it reports ${p.version ?? 'none'})`
                    : undefined;
          if (!waitingFor) return p;
          if (Date.now() >= input.until) {
            fail('NodeNotBack', `${input.node} is not back in time: still waiting for ${waitingFor}`);
          }
          ctx.heartbeat({ wentDown, waitingFor });
          await sleep(pollMs, undefined, { signal: ctx.cancellationSignal });
        }
      });
    },

    /** HA maintenance on or off (PVE offers it only through `ha-manager`); doing it twice is harmless. */
    async setHaMaintenance(input: { environment: string; node: string; enabled: boolean }): Promise<void> {
      const target = await sshTo(input.environment, input.node);
      const action = input.enabled ? 'enable' : 'disable';
      await withSshFailures(() =>
        runCommand(target, `ha-manager crm-command node-maintenance ${action} ${input.node}`, {
          timeoutMs: 60_000,
          label: `ha-manager crm-command node-maintenance ${action}`,
        }),
      );
    },

    /**
     * The migrations that bring a node's guests home, from where each is now and in the
     * state it is in now; guests already home, and guests that no longer exist, are named.
     */
    async planReturn(input: {
      environment: string;
      node: string;
      guests: AwayGuest[];
      linkGbps: number;
      bwlimitMiBps?: number;
    }): Promise<{ moves: GuestMove[]; home: number[]; gone: { vmid: number; name: string; reason: string }[] }> {
      const client = await deps.pve(input.environment);
      const resources = await reading(() => read(() => client.cluster.resources({ type: 'vm' })));
      const costs = defaultCostAssumptions(input.linkGbps);
      const moves: GuestMove[] = [];
      const home: number[] = [];
      const gone: { vmid: number; name: string; reason: string }[] = [];
      for (const g of input.guests) {
        const now = resources.find((r) => r.vmid === g.vmid);
        if (!now?.node) {
          gone.push({ vmid: g.vmid, name: g.name, reason: 'it no longer exists' });
          continue;
        }
        if (now.node === input.node) {
          home.push(g.vmid);
          continue;
        }
        const running = now.status === 'running';
        const mode: MigrationMode = !running ? 'offline' : g.type === 'qemu' ? 'online' : 'restart';
        const bytes = transferBytes(mode, g.memoryBytes, g.localDiskBytes);
        moves.push({
          vmid: g.vmid,
          name: g.name,
          type: g.type,
          source: now.node,
          target: input.node,
          mode,
          priorStatus: running ? 'running' : 'stopped',
          haManaged: now.hastate !== undefined,
          withLocalDisks: mode === 'online' && g.withLocalDisks,
          memoryBytes: g.memoryBytes,
          localDiskBytes: g.localDiskBytes,
          transferBytes: bytes,
          estimatedMs: migrationMs(mode, bytes, costs, input.bwlimitMiBps ? input.bwlimitMiBps * 1024 ** 2 : undefined),
          why: `back to ${input.node} after its maintenance`,
        });
      }
      moves.sort((a, b) => b.estimatedMs - a.estimatedMs || a.vmid - b.vmid);
      return { moves, home, gone };
    },

    /** Where the task histories of `nodes` stand: migrations started after this belong to the caller. */
    async markTasks(input: { environment: string; nodes: string[] }): Promise<TaskMarker> {
      const client = await deps.pve(input.environment);
      return reading(async () => {
        const all = [];
        for (const node of input.nodes) all.push(...(await read(() => client.tasks.list({ node, source: 'all', limit: 50 }))));
        const since = Math.max(0, ...all.map((t) => t.starttime));
        return { node: input.nodes[0] ?? '', since, upids: all.filter((t) => t.starttime === since).map((t) => t.upid) };
      });
    },

    /** The node is up on the expected version and holds the guests that came back, each as it was. */
    async verifyNode(input: {
      environment: string;
      node: string;
      expectVersion?: string;
      guests: { vmid: number; name: string; type: 'qemu' | 'lxc'; status: 'running' | 'stopped' }[];
    }): Promise<{ version?: string }> {
      const client = await deps.pve(input.environment);
      return reading(async () => {
        const p = await probe(client, input.node);
        const resources = await read(() => client.cluster.resources({ type: 'vm' }));
        const problems: string[] = [];
        if (!p.reachable || !p.online) problems.push(`${input.node} is not online`);
        if (!p.quorate) problems.push('the cluster is not quorate');
        if (input.expectVersion && p.version !== input.expectVersion) {
          problems.push(`${input.node} reports version ${p.version ?? 'none'}, expected ${input.expectVersion}`);
        }
        for (const g of input.guests) {
          const r = resources.find((x) => x.vmid === g.vmid);
          if (r?.node !== input.node) problems.push(`${label(g)} is on ${r?.node ?? 'no node'}, not ${input.node}`);
          else if ((r.status === 'running') !== (g.status === 'running')) problems.push(`${label(g)} is ${r.status}, was ${g.status}`);
        }
        if (problems.length > 0) fail('VerificationFailed', problems.join('; '));
        return p.version ? { version: p.version } : {};
      });
    },
  };
}

/** What an upgrade attempt leaves for the next one, should its worker be lost. */
interface UpgradeHeartbeat {
  /** The command was sent: never send it again. */
  sent: boolean;
  versionBefore?: string;
  upgraded?: string[];
  installed?: string[];
  tail?: string[];
}

export type RollingMaintenanceActivities = ReturnType<typeof createRollingMaintenanceActivities>;
