/**
 * Evacuation activities: plan from one snapshot, move one guest, verify the node.
 *
 * Moving a guest is the one step that must never happen twice. Every attempt therefore
 * begins by looking at the world: is a migration of this guest already running or done since
 * the evacuation began (the source node's task list), where is the guest now and is it
 * locked? Only when nothing has happened does it send the migrate request — so a retried
 * attempt, or one resumed after a worker crash, attaches to the task that exists instead of
 * starting another, and a migration that failed is reported, never tried again.
 */
import { Context } from '@temporalio/activity';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  describeEvacuation,
  EvacuationRequestError,
  planEvacuation,
  type EvacuationPlan,
  type EvacuationRequest,
  type GuestMove,
} from '../lib/planning/evacuation.js';
import type { Verification } from '../lib/planning/evacuation-outcome.js';
import type { MemoryBasis } from '../lib/planning/placement.js';
import { formatBytes } from '../lib/planning/units.js';
import type { PveClient } from '../lib/pve/client.js';
import { isTransient, PveApiError, PveTaskFailedError } from '../lib/pve/errors.js';
import { waitForTask } from '../lib/pve/tasks/wait.js';
import { parseUpid } from '../lib/pve/upid.js';
import { runCommand } from '../lib/ssh/client.js';
import type { PlanDraft } from '../lib/operations/plan.js';
import { SshNotConfiguredError, type WorkerDeps } from '../worker/deps.js';
import { readClusterSnapshot } from './inventory-snapshot.js';
import { Failure } from '../lib/operations/failures.js';
import { classified, fail, toTemporalFailure } from './failures.js';

export interface EvacuationDeps extends Pick<WorkerDeps, 'pve' | 'config' | 'sshTarget'> {
  /** How often task status is polled. The benchmark shortens it along with its simulated clock. */
  taskPolling?: { pollMs: number; maxPollMs: number };
}

/**
 * Where the source node's task history stood when the evacuation began applying: a migration
 * task of a guest started after it belongs to this evacuation (or ran during it).
 */
export interface TaskMarker {
  node: string;
  /** Start time (PVE epoch seconds) of the newest task then. */
  since: number;
  /** Tasks that had started in that same second. */
  upids: string[];
}

/** A migration task being followed (also the heartbeat details a retried attempt resumes from). */
interface Followed {
  upid: string;
  /** The `hamigrate` request that led to it, for HA-managed guests. */
  haUpid?: string;
}

export interface MigrateGuestInput {
  environment: string;
  move: GuestMove;
  limits: EvacuationPlan['limits'];
  memoryHeadroom: number;
  /** The plan's memory basis; absent from plans made before it existed, which counted reported use. */
  memoryBasis?: MemoryBasis;
  marker: TaskMarker;
}

export interface MigrationReport {
  vmid: number;
  /** The migration task followed to its end: for HA-managed guests the one HA started (or, if HA finished before it could be seen, the request). */
  upid?: string;
  /** The `hamigrate` request task, for HA-managed guests. */
  haUpid?: string;
  /** The attempt found its task already started (a retry or a resumed worker) and followed it. */
  attached: boolean;
  /** The guest was on its target before this evacuation moved it. */
  alreadyThere: boolean;
  node: string;
  status: string;
}

export interface VerifyEvacuationInput {
  environment: string;
  source: string;
  /** Guests reported moved, with where and in which state they must be. */
  moved: { vmid: number; name: string; target: string; status: 'running' | 'stopped' }[];
  /** Guests the plan left on the source. */
  leftBehind: number[];
}

const MIGRATION_TASK_TYPES = new Set(['qmigrate', 'vzmigrate']);
const HA_MIGRATION_TASK = 'hamigrate';
/** How long HA may take to start the migration it queued. */
const HA_PICKUP_TIMEOUT_MS = 10 * 60_000;
/** Consecutive transient failures tolerated while waiting on a task, before the attempt gives up (and is retried). */
const WAIT_RETRIES = 5;

function label(move: Pick<GuestMove, 'type' | 'vmid' | 'name'>): string {
  return `${move.type === 'qemu' ? 'VM' : 'CT'} ${move.vmid} (${move.name})`;
}

/** The guest is where the plan found it, unlocked, in the same power state — or the plan no longer holds. */
function checkStillAsPlanned(move: GuestMove, at: { node: string; status: string; lock?: string } | undefined): void {
  if (!at) fail(Failure.GuestMoved, `${label(move)} no longer exists`);
  if (at.node !== move.source)
    fail(Failure.GuestMoved, `${label(move)} is on ${at.node}, not on ${move.source} as planned`);
  if (at.lock) fail(Failure.GuestLocked, `${label(move)} is locked (${at.lock}); another operation holds it`);
  if ((at.status === 'stopped') !== (move.priorStatus === 'stopped')) {
    fail(Failure.StateChanged, `${label(move)} is ${at.status} now, but was planned as ${move.priorStatus}`);
  }
}

function isMissingConfig(err: unknown): boolean {
  return err instanceof PveApiError && /does not exist/.test(err.pveMessage);
}

export function createEvacuationActivities(deps: EvacuationDeps) {
  const polling = deps.taskPolling ?? { pollMs: 250, maxPollMs: 1_000 };

  function policyOf(environment: string) {
    const env = deps.config.environments[environment];
    if (!env) fail(Failure.InvalidRequest, `environment: unknown environment '${environment}'`);
    return env.policy;
  }

  /** Where the guest is: asked of the node it is most likely on first, then the other, then the whole cluster. */
  async function locate(
    client: PveClient,
    move: GuestMove,
    likely: 'source' | 'target' = 'source',
  ): Promise<{ node: string; status: string; lock?: string } | undefined> {
    const statusOf = move.type === 'qemu' ? client.qemu.status : client.lxc.status;
    const nodes = likely === 'source' ? [move.source, move.target] : [move.target, move.source];
    for (const node of nodes) {
      try {
        const s = await statusOf({ node, vmid: move.vmid });
        return { node, status: s.status, ...(s.lock ? { lock: s.lock } : {}) };
      } catch (err) {
        if (!isMissingConfig(err)) throw err;
      }
    }
    const found = (await client.cluster.resources({ type: 'vm' })).find((r) => r.vmid === move.vmid);
    return found?.node
      ? { node: found.node, status: found.status ?? 'unknown', ...(found.lock ? { lock: found.lock } : {}) }
      : undefined;
  }

  /** Migration tasks of the guest on its source since the marker, newest first; real migrations before HA requests. */
  async function migrationTasksSince(client: PveClient, move: GuestMove, marker: TaskMarker) {
    const tasks = await client.tasks.list({
      node: move.source,
      vmid: move.vmid,
      source: 'all',
      since: marker.since,
      limit: 100,
    });
    const ours = tasks
      .filter((t) => t.id === String(move.vmid) && t.starttime >= marker.since && !marker.upids.includes(t.upid))
      .sort((a, b) => b.starttime - a.starttime);
    return {
      real: ours.filter((t) => MIGRATION_TASK_TYPES.has(t.type)),
      ha: ours.filter((t) => t.type === HA_MIGRATION_TASK),
    };
  }

  /** What the target holds now on the plan's basis: its running guests' configured memory, or what it reports in use. */
  async function targetMemory(
    client: PveClient,
    input: MigrateGuestInput,
  ): Promise<{ total: number; held: number; what: string }> {
    const { memory } = await client.nodes.status({ node: input.move.target });
    if ((input.memoryBasis ?? 'used') === 'used') return { total: memory.total, held: memory.used, what: 'uses' };
    // The target's own guest lists: its guests, not the whole cluster's (15,000 entries on a large cluster).
    const node = { node: input.move.target };
    const lists = await Promise.all([client.qemu.list(node), client.lxc.list(node)]);
    const held = lists
      .flat()
      .filter((g) => g.status === 'running')
      .reduce((sum, g) => sum + (g.maxmem ?? 0), 0);
    return { total: memory.total, held, what: 'has running guests configured with' };
  }

  async function checkHeadroom(client: PveClient, input: MigrateGuestInput): Promise<void> {
    const { move, memoryHeadroom } = input;
    if (move.mode === 'offline') return;
    const memory = await targetMemory(client, input);
    const limit = memory.total * (1 - memoryHeadroom);
    if (memory.held + move.memoryBytes > limit) {
      fail(
        Failure.TargetHeadroom,
        `${label(move)} not started: ${move.target} ${memory.what} ${formatBytes(memory.held)} of ${formatBytes(memory.total)}, ` +
          `and ${formatBytes(move.memoryBytes)} more would leave less than ${Math.round(memoryHeadroom * 100)}% free`,
      );
    }
  }

  async function startMigration(client: PveClient, input: MigrateGuestInput): Promise<string> {
    const { move, limits } = input;
    const common = {
      node: move.source,
      vmid: move.vmid,
      target: move.target,
      ...(limits.bwlimitKiBps ? { bwlimit: limits.bwlimitKiBps } : {}),
    };
    try {
      if (move.type === 'qemu') {
        return await client.qemu.migrate({
          ...common,
          ...(move.mode === 'online' ? { online: true } : {}),
          ...(move.withLocalDisks ? { 'with-local-disks': true } : {}),
          ...(move.targetStorage ? { targetstorage: move.targetStorage } : {}),
        });
      }
      return await client.lxc.migrate({
        ...common,
        ...(move.mode === 'restart' ? { restart: true, timeout: limits.containerShutdownTimeoutSeconds } : {}),
        ...(move.targetStorage ? { 'target-storage': move.targetStorage } : {}),
      });
    } catch (err) {
      // No answer, or a bare server error: whether PVE acted is unknown, and the next attempt's
      // look at the task list will tell — so the attempt may fail retryably. A refusal with
      // PVE's reason would only be refused again.
      if (isTransient(err)) throw err;
      fail(
        Failure.MigrationRefused,
        `PVE refused to migrate ${label(move)}: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }

  /** Waits for a task to stop, heartbeating; reads that fail transiently do not end the wait. */
  async function awaitTask(client: PveClient, upid: string, heartbeat: Followed): Promise<void> {
    const ctx = Context.current();
    for (let failures = 0; ;) {
      try {
        await waitForTask(client, upid, {
          ...polling,
          tailLines: 50,
          signal: ctx.cancellationSignal,
          onProgress: (_status, tail) => {
            failures = 0;
            ctx.heartbeat({ ...heartbeat, log: tail.at(-1) });
          },
        });
        return;
      } catch (err) {
        if (!isTransient(err) || ++failures >= WAIT_RETRIES) throw err;
        ctx.heartbeat(heartbeat);
        await sleep(polling.pollMs * failures);
      }
    }
  }

  /**
   * PVE answers a migrate request for an HA-managed guest with an `hamigrate` task that only
   * queues it; HA's resource manager starts the real migration later, on the source node.
   */
  async function awaitHaMigration(
    client: PveClient,
    input: MigrateGuestInput,
    haUpid: string,
  ): Promise<string | undefined> {
    const ctx = Context.current();
    const requested = parseUpid(haUpid)!.starttime;
    const deadline = Date.now() + HA_PICKUP_TIMEOUT_MS;
    const marker = { ...input.marker, since: Math.max(input.marker.since, requested) };
    while (Date.now() < deadline) {
      const { real } = await migrationTasksSince(client, input.move, marker);
      if (real[0]) return real[0].upid;
      const at = await locate(client, input.move, 'target');
      if (at?.node === input.move.target && !at.lock) return undefined;
      ctx.heartbeat({ upid: haUpid, phase: 'waiting for HA to start the migration' });
      await sleep(polling.maxPollMs, undefined, { signal: ctx.cancellationSignal });
    }
    fail(
      Failure.MigrationFailed,
      `HA queued the migration of ${label(input.move)} (${haUpid}) but did not start it within 10 minutes`,
      {
        upid: haUpid,
      },
    );
  }

  /** The newest migration of the guest begun since the marker: the real one if HA already started it. */
  async function earlierMigration(client: PveClient, input: MigrateGuestInput): Promise<Followed | undefined> {
    const { real, ha } = await migrationTasksSince(client, input.move, input.marker);
    const upid = real[0]?.upid ?? ha[0]?.upid;
    return upid ? { upid } : undefined;
  }

  /** Follows the migration task to its end; an `hamigrate` request first, then the migration HA starts. */
  async function follow(client: PveClient, input: MigrateGuestInput, task: Followed): Promise<Followed> {
    const ctx = Context.current();
    try {
      if (parseUpid(task.upid)?.type !== HA_MIGRATION_TASK) {
        await awaitTask(client, task.upid, task);
        return task;
      }
      const haUpid = task.upid;
      await awaitTask(client, haUpid, task);
      const real = await awaitHaMigration(client, input, haUpid);
      if (!real) return { upid: haUpid, haUpid };
      const followed = { upid: real, haUpid };
      ctx.heartbeat(followed);
      await awaitTask(client, real, followed);
      return followed;
    } catch (err) {
      if (err instanceof PveTaskFailedError) {
        fail(
          Failure.MigrationFailed,
          `migration of ${label(input.move)} to ${input.move.target} failed: ${err.exitstatus}`,
          {
            upid: err.upid,
            exitstatus: err.exitstatus,
            log: err.logTail,
          },
        );
      }
      throw err;
    }
  }

  return {
    /** Reads the cluster once and plans the evacuation: the plan an approver sees. */
    async planEvacuation(input: {
      environment: string;
      request: EvacuationRequest;
    }): Promise<PlanDraft<EvacuationPlan>> {
      const policy = policyOf(input.environment);
      const client = await deps.pve(input.environment);
      const ctx = Context.current();
      const snapshot = await classified('read', () =>
        readClusterSnapshot(client, {
          detailsFor: [input.request.node],
          onProgress: (done, total) => ctx.heartbeat({ read: `${done}/${total} guests` }),
        }),
      );
      try {
        return describeEvacuation(planEvacuation(snapshot, input.request, policy));
      } catch (err) {
        if (err instanceof EvacuationRequestError) fail(Failure.InvalidRequest, err.message, { field: err.field });
        throw err;
      }
    },

    /** Notes where the source node's task history stands, before the first migration starts. */
    async markTaskHistory(input: { environment: string; node: string }): Promise<TaskMarker> {
      const client = await deps.pve(input.environment);
      const tasks = await classified('read', () => client.tasks.list({ node: input.node, source: 'all', limit: 50 }));
      const since = Math.max(0, ...tasks.map((t) => t.starttime));
      return { node: input.node, since, upids: tasks.filter((t) => t.starttime === since).map((t) => t.upid) };
    },

    /**
     * Moves one guest as planned and waits until it is there. Retryable until the migrate
     * request has been sent; after that every attempt attaches to the task that exists.
     */
    async migrateGuest(input: MigrateGuestInput): Promise<MigrationReport> {
      const { move } = input;
      const ctx = Context.current();
      const client = await deps.pve(input.environment);
      const resumed = ctx.info.heartbeatDetails as Followed | undefined;
      return classified('read', async () => {
        // 1. Has a migration of this guest begun already (an earlier attempt, a dead worker)?
        let task = resumed?.upid ? resumed : await earlierMigration(client, input);
        const attached = task !== undefined;
        if (!task) {
          // 2. Nothing has happened: check the guest and the target, then ask PVE to migrate it.
          const at = await locate(client, move);
          if (at?.node === move.target && !at.lock) {
            return { vmid: move.vmid, attached: false, alreadyThere: true, node: at.node, status: at.status };
          }
          checkStillAsPlanned(move, at);
          await checkHeadroom(client, input);
          task = { upid: await startMigration(client, input) };
          ctx.heartbeat(task);
        }
        // 3. Follow it to the end (through HA's request, for HA-managed guests).
        const done = await follow(client, input, task);
        // 4. PVE said OK: the guest must be on its target now.
        const at = await locate(client, move, 'target');
        if (at?.node !== move.target) {
          fail(
            Failure.GuestMoved,
            `${label(move)}: its migration ended OK, but it is on ${at?.node ?? 'no node'}, not ${move.target}`,
            done,
          );
        }
        return { vmid: move.vmid, ...done, attached, alreadyThere: false, node: at.node, status: at.status };
      });
    },

    /**
     * Puts the node into HA maintenance: HA moves nothing back to it and fences nothing while
     * it is down. PVE offers this only through `ha-manager`, so it runs over SSH. Enabling it
     * twice is harmless, so retries are safe.
     */
    async enableHaMaintenance(input: { environment: string; node: string }): Promise<void> {
      let target;
      try {
        target = await deps.sshTarget(input.environment, input.node);
      } catch (err) {
        if (err instanceof SshNotConfiguredError)
          fail(Failure.InvalidRequest, `HA maintenance runs ha-manager over SSH: ${err.message}`);
        throw err;
      }
      try {
        await runCommand(target, `ha-manager crm-command node-maintenance enable ${input.node}`, {
          timeoutMs: 60_000,
          label: 'ha-manager crm-command node-maintenance enable',
        });
      } catch (err) {
        throw toTemporalFailure(err, 'write');
      }
    },

    /** The node holds only what the plan left there; every moved guest runs where and as planned. */
    async verifyEvacuation(input: VerifyEvacuationInput): Promise<Verification> {
      const client = await deps.pve(input.environment);
      const vms = await classified('read', () => client.cluster.resources({ type: 'vm' }));
      const byVmid = new Map(vms.filter((r) => r.vmid !== undefined).map((r) => [r.vmid!, r]));
      const unexpectedOnSource = vms
        .filter((r) => r.node === input.source && r.vmid !== undefined && !input.leftBehind.includes(r.vmid))
        .map((r) => ({ vmid: r.vmid!, name: r.name ?? '' }))
        .sort((a, b) => a.vmid - b.vmid);
      const misplaced: Verification['misplaced'] = [];
      const wrongState: Verification['wrongState'] = [];
      for (const m of input.moved) {
        const r = byVmid.get(m.vmid);
        if (r?.node !== m.target)
          misplaced.push({ vmid: m.vmid, name: m.name, expected: m.target, actual: r?.node ?? 'missing' });
        else if ((r.status === 'running') !== (m.status === 'running')) {
          wrongState.push({ vmid: m.vmid, name: m.name, expected: m.status, actual: r.status ?? 'unknown' });
        }
      }
      return {
        ok: unexpectedOnSource.length === 0 && misplaced.length === 0 && wrongState.length === 0,
        unexpectedOnSource,
        misplaced,
        wrongState,
      };
    },
  };
}

export type EvacuationActivities = ReturnType<typeof createEvacuationActivities>;
