/**
 * One guest (VM or container), one action: the plan with its pre-flight summary, the dispatch
 * of each step — once, after re-verifying the guest's vmid *and* name — and the check that the
 * world ended up where the step should have left it.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { setTimeout as sleep } from 'node:timers/promises';
import { backupBefore } from '../lib/backup/before.js';
import { parseTags } from '../lib/inventory.js';
import {
  ACTION_RISK,
  planGuestSteps,
  settledState,
  StepRefusal,
  type GuestActionRequest,
  type GuestPreflight,
  type GuestType,
} from '../lib/lifecycle/guest-steps.js';
import type { VmActionInput, VmResizeInput } from '../lib/operations/catalog.js';
import { formatDuration } from '../lib/planning/units.js';
import type { PveClient } from '../lib/pve/client.js';
import type { ClusterResource } from '../lib/pve/cluster/endpoints.js';
import { isTransient, PveApiError, PveUnavailableError } from '../lib/pve/errors.js';
import type { PlanDraft, PlanStep } from '../lib/operations/plan.js';
import type { WorkerDeps } from '../worker/deps.js';
import { classified, fail } from './failures.js';
import { Failure } from '../lib/operations/failures.js';

/** What the vmAction workflow runs: one of the single-guest operation kinds. */
export type GuestActionInput = VmActionInput | VmResizeInput;

export type VmStepOutcome =
  | { kind: 'already-done'; detail: string }
  /** A synchronous change PVE made while answering (config updates). */
  | { kind: 'applied'; detail: string }
  | { kind: 'dispatched'; upid: string };

export interface GuestRef {
  environment: string;
  vmid: number;
  name: string;
}

export interface LocatedGuest {
  vmid: number;
  type: GuestType;
  node: string;
  status: string;
  haState?: string;
}

/**
 * Of the config keys just written, those PVE keeps pending until the guest next starts (a
 * running VM cannot hot-plug them), as PVE reports them — not as the request hoped.
 */
export async function awaitingRestart(
  client: PveClient,
  guest: LocatedGuest,
  keys: readonly string[],
): Promise<string[]> {
  if (guest.type !== 'qemu' || guest.status !== 'running') return [];
  const pending = await client.qemu.pending({ node: guest.node, vmid: guest.vmid });
  return pending
    .filter((p) => keys.includes(p.key) && (p.pending !== undefined || Boolean(p.delete)))
    .map((p) => p.key);
}

/** `; cores, memory need a restart ...` for a step's detail, empty when nothing waits. */
export function restartNote(guest: LocatedGuest, keys: readonly string[]): string {
  if (keys.length === 0) return '';
  return `; ${keys.join(', ')} ${keys.length === 1 ? 'needs' : 'need'} a restart of ${describeGuest(guest)} to take effect (PVE keeps ${keys.length === 1 ? 'it' : 'them'} pending)`;
}

export function describeGuest(guest: Pick<LocatedGuest, 'type' | 'vmid'>): string {
  return `${guest.type === 'qemu' ? 'VM' : 'CT'} ${guest.vmid}`;
}

function located(r: ClusterResource): LocatedGuest {
  return {
    vmid: r.vmid!,
    type: r.type as GuestType,
    node: r.node!,
    status: r.status ?? 'unknown',
    ...(r.hastate ? { haState: r.hastate } : {}),
  };
}

export async function locateGuest(client: PveClient, vmid: number): Promise<LocatedGuest | undefined> {
  const guests = await client.cluster.resources({ type: 'vm' });
  const r = guests.find((g) => g.vmid === vmid && (g.type === 'qemu' || g.type === 'lxc') && g.node);
  return r ? located(r) : undefined;
}

/** The PVE API of a guest's type; both share the calls used here. */
export function guestApi(client: PveClient, type: GuestType) {
  return type === 'qemu' ? client.qemu : client.lxc;
}

export async function guestConfig(client: PveClient, guest: LocatedGuest) {
  return guestApi(client, guest.type).config({ node: guest.node, vmid: guest.vmid });
}

/** The vmid *and* the name must match what the operator asked for, right before acting. */
export async function verifyIdentity(client: PveClient, vmid: number, name: string): Promise<LocatedGuest> {
  const guest = await locateGuest(client, vmid);
  if (!guest) fail(Failure.VmIdentityMismatch, `guest ${vmid} does not exist in this cluster`);
  const config = await guestConfig(client, guest);
  const actual = (guest.type === 'qemu' ? config.name : config.hostname) ?? '';
  if (actual !== name) {
    fail(
      Failure.VmIdentityMismatch,
      `${describeGuest(guest)} is named '${actual}', not '${name}': refusing to act on it`,
    );
  }
  return guest;
}

const SIZE_UNITS: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** Disk keys and their sizes from a guest config (`size=32G` in each drive's property string). */
function diskSizes(type: GuestType, config: Record<string, unknown>): Record<string, number> {
  const key = type === 'qemu' ? /^(scsi|virtio|sata|ide)\d+$/ : /^(rootfs|mp\d+)$/;
  const disks: Record<string, number> = {};
  for (const [k, v] of Object.entries(config)) {
    if (!key.test(k) || typeof v !== 'string' || /media=cdrom/.test(v)) continue;
    const m = /(?:^|,)size=(\d+(?:\.\d+)?)([KMGT])?/.exec(v);
    if (m) disks[k] = Math.round(Number(m[1]) * (SIZE_UNITS[m[2] ?? ''] ?? 1));
  }
  return disks;
}

/** The pre-flight summary: status, uptime, node, tags, snapshots, locks, HA, size. */
export async function readPreflight(client: PveClient, guest: LocatedGuest): Promise<GuestPreflight> {
  const api = guestApi(client, guest.type);
  const ref = { node: guest.node, vmid: guest.vmid };
  const [status, config, snapshots] = await Promise.all([api.status(ref), api.config(ref), api.snapshots(ref)]);
  const memory = Number(/(\d+)/.exec(String(config['memory'] ?? '512'))?.[1] ?? 512);
  return {
    type: guest.type,
    node: guest.node,
    status: status.status,
    uptimeSeconds: status.uptime ?? 0,
    tags: parseTags(config.tags),
    snapshots: snapshots.map((s) => s.name).filter((n) => n !== 'current'),
    protection: Boolean(config.protection),
    cores: Number(config['cores'] ?? 1),
    memoryMb: memory,
    disks: diskSizes(guest.type, config),
    ...(config.lock ? { lock: config.lock } : {}),
    ...(guest.haState ? { haState: guest.haState } : {}),
  };
}

export function preflightLine(guest: Pick<LocatedGuest, 'type' | 'vmid'>, name: string, p: GuestPreflight): string {
  const snapshots = p.snapshots.length ? `, snapshots: ${p.snapshots.join(', ')}` : '';
  const tags = p.tags.length ? `, tags: ${p.tags.join(', ')}` : '';
  const uptime = p.status === 'running' ? `, up ${formatDuration(p.uptimeSeconds * 1000)}` : '';
  return `${describeGuest(guest)} '${name}' on ${p.node}: ${p.status}${uptime}${tags}${snapshots}`;
}

function requestOf(input: GuestActionInput): GuestActionRequest {
  if (input.action === 'resize') {
    return {
      action: 'resize',
      vmid: input.vmid,
      name: input.name,
      shutdownTimeoutSeconds: 0,
      forceStopAfterTimeout: false,
      resize: {
        ...(input.cores !== undefined ? { cores: input.cores } : {}),
        ...(input.memoryMb !== undefined ? { memoryMb: input.memoryMb } : {}),
        ...(input.disk ? { disk: input.disk } : {}),
      },
    };
  }
  return {
    action: input.action,
    vmid: input.vmid,
    name: input.name,
    shutdownTimeoutSeconds: input.shutdownTimeoutSeconds,
    forceStopAfterTimeout: input.forceStopAfterTimeout,
    ...(input.snapshot ? { snapshot: input.snapshot } : {}),
    ...(input.target ? { target: input.target } : {}),
  };
}

/** The workflow an activity runs for: marks what this operation made, so a retry recognises it. */
export function operationId(): string {
  const info = Context.current().info;
  return info.workflowExecution?.workflowId ?? `activity ${info.activityId}`;
}

/**
 * The task types a step's request starts (VM, container, and the HA request PVE answers with
 * for an HA-managed guest): how a retry finds the task an earlier attempt already started.
 */
const STEP_TASKS: Record<string, string[]> = {
  start: ['qmstart', 'vzstart', 'hastart'],
  stop: ['qmstop', 'vzstop', 'hastop'],
  shutdown: ['qmshutdown', 'vzshutdown', 'hastop'],
  reboot: ['qmreboot', 'vzreboot'],
  snapshot: ['qmsnapshot', 'vzsnapshot'],
  migrate: ['qmigrate', 'vzmigrate', 'hamigrate'],
  rollback: ['qmrollback', 'vzrollback'],
  'resize-disk': ['resize'],
  destroy: ['qmdestroy', 'vzdestroy'],
};

/** Steps never sent a second time when their first request went unanswered: what they destroy cannot be had back. */
const DESTRUCTIVE = new Set(['rollback', 'destroy']);

/** What a dispatch keeps across attempts (heartbeat details): its node's clock before anything was sent. */
interface DispatchMark {
  nodeTime: number;
}

/**
 * On a retry, the task an earlier attempt of this activity started for the step, if any: a
 * task of the step's type for the guest, on the node the plan names, started since the first
 * attempt was about to send. That moment is kept in the node's own clock (every attempt
 * heartbeats it before sending), never compared with the worker's: node clocks are minutes
 * off. Should no heartbeat have reached Temporal, it is the node's time now less the time
 * since the first attempt was scheduled, so any constant offset between the clocks cancels.
 */
async function taskOfEarlierAttempt(client: PveClient, vmid: number, step: PlanStep): Promise<string | undefined> {
  const ctx = Context.current();
  const types = STEP_TASKS[step.action];
  if (!types || !step.node) return undefined;
  const { attempt, heartbeatDetails, scheduledTimestampMs } = ctx.info;
  const { time } = await client.nodes.time({ node: step.node });
  const mark = heartbeatDetails as DispatchMark | undefined;
  const firstSend =
    mark?.nodeTime ?? (attempt <= 1 ? time : time - Math.ceil((Date.now() - scheduledTimestampMs) / 1000));
  ctx.heartbeat({ nodeTime: firstSend } satisfies DispatchMark);
  if (attempt <= 1) return undefined;
  const tasks = await client.tasks.list({ node: step.node, vmid, source: 'all', since: firstSend - 1 });
  return tasks.find((t) => types.includes(t.type) && t.id === String(vmid))?.upid;
}

/**
 * Sends a step's request once. When PVE may have acted without answering (no answer, a bare
 * server error), a step that starts a task fails retryably: the next attempt finds that task
 * in the node's task list (taskOfEarlierAttempt) and follows it, or sends only when there is
 * none. A destructive step, or one without a task to look for, is never sent again: the
 * operation stops and says what to check.
 */
async function sendOnce<T>(what: string, step: PlanStep, request: () => Promise<T>): Promise<T> {
  try {
    return await request();
  } catch (err) {
    const unanswered =
      (err instanceof PveUnavailableError && err.requestMayHaveBeenSent) ||
      (err instanceof PveApiError && isTransient(err));
    if (!unanswered) throw err;
    if (STEP_TASKS[step.action] && !DESTRUCTIVE.has(step.action)) {
      throw ApplicationFailure.create({
        type: Failure.TaskUnanswered,
        message: `${what} was sent but PVE did not answer; the next attempt follows its task if it started one (${(err as Error).message})`,
      });
    }
    throw ApplicationFailure.create({
      type: Failure.OutcomeUnknown,
      message: `${what} was sent but PVE did not answer; check its task list before retrying (${(err as Error).message})`,
      nonRetryable: true,
    });
  }
}

export function createVmActivities(deps: Pick<WorkerDeps, 'pve' | 'config'>) {
  return {
    async planVmAction(input: GuestActionInput): Promise<PlanDraft<{ preflight: GuestPreflight }>> {
      const client = await deps.pve(input.environment);
      const policy = deps.config.environments[input.environment]!.policy;
      return classified('write', async () => {
        const guest = await verifyIdentity(client, input.vmid, input.name);
        const preflight = await readPreflight(client, guest);
        let steps: PlanStep[];
        try {
          steps = planGuestSteps(requestOf(input), preflight, {
            snapshotBeforeChange: policy.snapshot_before_change,
            now: new Date(),
          });
        } catch (err) {
          if (err instanceof StepRefusal) fail(Failure.PlanRefused, err.message);
          throw err;
        }
        if (input.action === 'delete')
          steps = [...backupBefore(policy, 'delete', { ...guest, name: input.name }), ...steps];
        const { risk, why } = ACTION_RISK[input.action];
        return {
          summary: `${input.action} ${preflightLine(guest, input.name, preflight)}`,
          risk,
          reasons: [
            why,
            ...(preflight.haState ? [`${describeGuest(guest)} is HA-managed (${preflight.haState})`] : []),
          ],
          steps,
          warnings: preflight.lock
            ? [`${describeGuest(guest)} is locked (${preflight.lock}); PVE will refuse until the lock clears`]
            : [],
          nodes: [...new Set([guest.node, ...steps.flatMap((s) => (s.target ? [s.target] : []))])],
          vmids: [input.vmid],
          estimatedDurationMs: steps.length * 10_000,
          details: { preflight },
        };
      });
    },

    /**
     * Sends one plan step to PVE — once. First the guest's identity is re-verified and the world
     * checked, so a repeated attempt finds the step done instead of doing it twice.
     */
    async dispatchVmStep(args: GuestRef & { step: PlanStep }): Promise<VmStepOutcome> {
      const client = await deps.pve(args.environment);
      const { vmid, step } = args;
      return classified('write', async () => {
        // An earlier attempt may have sent the step and crashed, or lost PVE's answer: follow
        // the task it started instead of sending again.
        const earlier = await taskOfEarlierAttempt(client, vmid, step);
        if (earlier) return { kind: 'dispatched', upid: earlier };
        const guest = await verifyIdentity(client, vmid, args.name);
        const { node, type } = guest;
        const api = guestApi(client, type);
        const p = step.params ?? {};
        const what = `${step.action} of ${describeGuest(guest)}`;
        const done = (detail: string): VmStepOutcome => ({ kind: 'already-done', detail });
        const send = async (request: () => Promise<string>): Promise<VmStepOutcome> => ({
          kind: 'dispatched',
          upid: await sendOnce(what, step, request),
        });
        switch (step.action) {
          case 'start':
            if (guest.status === 'running') return done(`${describeGuest(guest)} is already running`);
            return send(() => api.start({ node, vmid }));
          case 'stop':
            if (guest.status === 'stopped') return done(`${describeGuest(guest)} is already stopped`);
            return send(() => api.stop({ node, vmid }));
          case 'shutdown':
            if (guest.status === 'stopped') return done(`${describeGuest(guest)} is already stopped`);
            return send(() =>
              api.shutdown({ node, vmid, timeout: Number(p['timeout']), forceStop: Boolean(p['forceStop']) }),
            );
          case 'reboot':
            return send(() => api.reboot({ node, vmid }));
          case 'snapshot': {
            const snapname = String(p['snapname']);
            const description = `taken by proxmox-manager operation ${operationId()}`;
            const existing = (await api.snapshots({ node, vmid })).find((s) => s.name === snapname);
            if (existing?.description?.trim() === description) return done(`snapshot '${snapname}' already taken`);
            if (existing)
              fail(
                Failure.PlanRefused,
                `snapshot: ${describeGuest(guest)} already has a snapshot '${snapname}' this operation did not take`,
              );
            return send(() => api.snapshot({ node, vmid, snapname, description }));
          }
          case 'rollback':
            return send(() =>
              api.rollback({ node, vmid, snapname: String(p['snapname']), ...(p['start'] ? { start: true } : {}) }),
            );
          case 'migrate': {
            const target = String(p['target']);
            if (node === target) return done(`${describeGuest(guest)} already runs on ${target}`);
            const active = await client.tasks.list({ node, vmid, source: 'active' });
            const running = active.find(
              (t) => t.type === 'qmigrate' || t.type === 'vzmigrate' || t.type === 'hamigrate',
            );
            if (running) return { kind: 'dispatched', upid: running.upid };
            const live = guest.status === 'running';
            return send(() =>
              type === 'qemu'
                ? client.qemu.migrate({ node, vmid, target, online: live })
                : client.lxc.migrate({ node, vmid, target, restart: live }),
            );
          }
          case 'config': {
            const changes = {
              ...(p['cores'] !== undefined ? { cores: Number(p['cores']) } : {}),
              ...(p['tags'] !== undefined ? { tags: String(p['tags']) } : {}),
            };
            const memory = p['memory'] === undefined ? undefined : Number(p['memory']);
            if (type === 'qemu') {
              await sendOnce(what, step, () =>
                client.qemu.updateConfig({
                  node,
                  vmid,
                  ...changes,
                  ...(memory !== undefined ? { memory: String(memory) } : {}),
                  ...(p['boot'] !== undefined ? { boot: String(p['boot']) } : {}),
                }),
              );
            } else {
              await sendOnce(what, step, () =>
                client.lxc.updateConfig({ node, vmid, ...changes, ...(memory !== undefined ? { memory } : {}) }),
              );
            }
            const waiting = await awaitingRestart(client, guest, Object.keys(p));
            return {
              kind: 'applied',
              detail: `set ${Object.keys(p).join(', ')} of ${describeGuest(guest)}${restartNote(guest, waiting)}`,
            };
          }
          case 'resize-disk':
            if (type !== 'qemu') fail(Failure.PlanRefused, `${describeGuest(guest)}: only VM disks can be grown`);
            return send(() => client.qemu.resize({ node, vmid, disk: String(p['disk']), size: String(p['size']) }));
          case 'destroy':
            if (guest.status === 'running')
              fail(
                Failure.PlanRefused,
                `${describeGuest(guest)} is running; it must be stopped before it is destroyed`,
              );
            return send(() => api.destroy({ node, vmid, purge: true, 'destroy-unreferenced-disks': true }));
          default:
            fail(Failure.PlanRefused, `unknown step action '${step.action}'`);
        }
      });
    },

    /**
     * Waits until the guest is where the step should have left it: running, stopped, or on the
     * migration target. PVE answers requests for HA-managed guests with a task that only queues
     * them, so the task's success alone proves nothing. Safe to retry: it only reads.
     */
    async awaitGuestSettled(args: {
      environment: string;
      vmid: number;
      step: PlanStep;
      timeoutMs: number;
    }): Promise<LocatedGuest> {
      const client = await deps.pve(args.environment);
      const expected = settledState(args.step);
      const ctx = Context.current();
      return classified('write', async () => {
        const deadline = Date.now() + args.timeoutMs;
        let pauseMs = 200;
        for (;;) {
          const guest = await locateGuest(client, args.vmid);
          if (!guest)
            throw ApplicationFailure.create({
              type: Failure.GuestVanished,
              message: `guest ${args.vmid} no longer exists`,
              nonRetryable: true,
            });
          const there =
            (!expected?.node || guest.node === expected.node) &&
            (!expected?.status || guest.status === expected.status);
          if (there) return guest;
          ctx.heartbeat({ node: guest.node, status: guest.status });
          if (Date.now() >= deadline) {
            const want = [expected?.status, expected?.node && `on ${expected.node}`].filter(Boolean).join(' ');
            throw ApplicationFailure.create({
              type: Failure.NotSettled,
              message:
                `${describeGuest(guest)} is ${guest.status} on ${guest.node}, not ${want}, ` +
                `${Math.round(args.timeoutMs / 1000)} s after its ${args.step.action} task ended` +
                (guest.haState ? ` (HA state: ${guest.haState})` : ''),
              nonRetryable: true,
            });
          }
          await sleep(pauseMs, undefined, { signal: ctx.cancellationSignal });
          pauseMs = Math.min(pauseMs * 2, 2_000);
        }
      });
    },
  };
}

export type VmActivities = ReturnType<typeof createVmActivities>;
