/**
 * What the rolling maintenance activities share: their dependencies, their failure types, and
 * how they look at a node (its state, the tasks it runs) and reach it over SSH.
 */
import { pveVersionOf } from '../../lib/maintenance/upgrade.js';
import type { RollingMaintenanceInput } from '../../lib/operations/catalog.js';
import type { PveClient } from '../../lib/pve/client.js';
import { Failure } from '../../lib/operations/failures.js';
import type { SshTarget } from '../../lib/ssh/client.js';
import type { WorkerDeps } from '../../worker/deps.js';
import { classified, fail, isPermanent } from '../failures.js';

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

/** Tasks that may run beside a maintenance: consoles. Anything else on a node is someone else's work in progress. */
const HARMLESS_TASKS = /^(vncproxy|vncshell|spiceproxy|spiceshell|termproxy)$/;
const MIGRATION_TASKS = /^(qmigrate|vzmigrate|hamigrate)$/;

/** Reaching a node: its environment's settings, SSH, its state and its running tasks. */
export function nodeAccess(deps: RollingMaintenanceDeps) {
  function environmentOf(environment: string) {
    const env = deps.config.environments[environment];
    if (!env) fail(Failure.InvalidRequest, `environment: unknown environment '${environment}'`);
    return env;
  }

  async function sshTo(environment: string, node: string): Promise<SshTarget> {
    return classified('read', () => deps.sshTarget(environment, node));
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

  /**
   * Tasks running on each node that a maintenance must not cut across (backups, migrations,
   * clones ...); the migrations of `returning` guests (the previous node's return) are expected.
   */
  async function busyTasks(client: PveClient, nodes: string[], returning: readonly number[] = []): Promise<string[]> {
    const busy: string[] = [];
    const expected = (t: { type: string; id?: string }) =>
      MIGRATION_TASKS.test(t.type) && returning.includes(Number(t.id));
    for (const node of nodes) {
      const tasks = await client.tasks.list({ node, source: 'active', limit: 100 });
      for (const t of tasks) {
        if (!HARMLESS_TASKS.test(t.type) && !expected(t))
          busy.push(`${node} is running ${t.type}${t.id ? ` ${t.id}` : ''} (${t.upid})`);
      }
    }
    return busy;
  }

  return { environmentOf, sshTo, probe, busyTasks };
}
