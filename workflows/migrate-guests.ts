/**
 * Runs an approved evacuation's migrations: as many at once as the source link and each
 * target allow, longest first, each an activity that starts (or finds) the PVE migration and
 * follows it to the end. A failure is recorded with PVE's task log and, by policy, stops new
 * starts or lets the others carry on; it is never retried.
 *
 * Large nodes stay far from Temporal's history limits: when this run's history grows past its
 * budget it stops starting migrations, lets the running ones finish and continues as a new
 * run with what is left.
 *
 * Cancelled, it starts no migration, follows the running ones to their end and returns every
 * guest's outcome — the ones it did not start as not-started — because its caller has to say
 * where each guest is.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  getExternalWorkflowHandle,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { MigrationReport, TaskMarker } from '../activities/evacuation.js';
import type { EvacuationPlan, GuestMove } from '../lib/planning/evacuation.js';
import type { MigrationMode } from '../lib/planning/estimate.js';
import type { MemoryBasis } from '../lib/planning/placement.js';
import { watchCancellation, type Cancellation } from './cancellation.js';
import { waits } from './activity-presets.js';

export interface GuestOutcome {
  vmid: number;
  name: string;
  target: string;
  mode: MigrationMode;
  state: 'migrated' | 'already-there' | 'failed' | 'not-started';
  /** Workflow time the migration was started and ended (ISO 8601). */
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
  /** The migration task was already running when the activity (retried or resumed) looked. */
  attached?: boolean;
  upid?: string;
  haUpid?: string;
  /** Failure type and message, and PVE's task log when a task failed. */
  errorType?: string;
  error?: string;
  log?: string[];
}

export interface GuestProgress {
  vmid: number;
  state: 'running' | 'succeeded' | 'failed' | 'skipped';
  detail?: string;
  at: string;
}

export interface MigrateGuestsInput {
  environment: string;
  /** Moves not yet started, in start order. */
  pending: GuestMove[];
  limits: EvacuationPlan['limits'];
  memoryHeadroom: number;
  /** Absent in runs started before plans had a memory basis. */
  memoryBasis?: MemoryBasis;
  onFailure: EvacuationPlan['onFailure'];
  marker: TaskMarker;
  /** Workflow told of every guest's progress (the evacuation). */
  progressTo?: string;
  /** Outcomes of earlier runs. */
  done?: GuestOutcome[];
  /** Why no new migrations start (a failure under onFailure: 'stop'). */
  halted?: string;
  /** History events after which a run hands over to a new one. */
  historyBudget?: number;
}

export const migrationProgressSignal = defineSignal<[GuestProgress[]]>('migration-progress');
export const migrationsQuery = defineQuery<{
  running: number[];
  pending: number;
  done: GuestOutcome[];
  halted?: string;
}>('migrations');

/**
 * Events per run before handing over: a guest costs about 4 to 12 events (its activity, the
 * workflow tasks that react to it, its progress signal), so a run moves some 130-350 guests
 * and stays far below Temporal's 10,240-event warning. Each handover lets the running
 * migrations finish first, which costs about one migration's time — once per hundreds.
 */
const DEFAULT_HISTORY_BUDGET = 1_500;

// Copying large local disks can take hours; the heartbeat timeout notices a lost worker within seconds.
// Only reads and unanswered requests fail retryably: every attempt re-checks the world first.
const { migrateGuest } = waits({
  startToCloseTimeout: '24 hours',
  initialInterval: '1 second',
  maximumInterval: '20 seconds',
  maximumAttempts: 10,
});

export async function migrateGuests(input: MigrateGuestsInput): Promise<GuestOutcome[]> {
  const cancellation = watchCancellation();
  return CancellationScope.nonCancellable(() => migrate(input, cancellation));
}

async function migrate(input: MigrateGuestsInput, cancellation: Cancellation): Promise<GuestOutcome[]> {
  const { limits } = input;
  const pending = [...input.pending];
  const done = [...(input.done ?? [])];
  const running = new Map<number, GuestMove>();
  let halted = input.halted;
  let changed = false;
  const budget = input.historyBudget ?? DEFAULT_HISTORY_BUDGET;
  const overBudget = () => workflowInfo().continueAsNewSuggested || workflowInfo().historyLength >= budget;

  setHandler(migrationsQuery, () => ({
    running: [...running.keys()],
    pending: pending.length,
    done,
    ...(halted ? { halted } : {}),
  }));

  const progress = progressReporter(input.progressTo);
  const showDetails = () =>
    setCurrentDetails(
      `${done.filter((o) => o.state === 'migrated' || o.state === 'already-there').length} moved, ` +
        `${running.size} moving, ${done.filter((o) => o.state === 'failed').length} failed, ${pending.length} waiting` +
        (halted ? ` — halted: ${halted}` : ''),
    );

  const start = (move: GuestMove) => {
    running.set(move.vmid, move);
    const startedAt = Date.now();
    progress.add({ vmid: move.vmid, state: 'running', at: iso(startedAt) });
    // Started, not awaited: the loop below waits on `changed` and handles each outcome as it
    // lands, so several moves run at once. Both results are handled here; a throw in this
    // bookkeeping fails the workflow task (Temporal's sandbox reports unhandled rejections).
    void migrateGuest
      .executeWithOptions({ summary: `${label(move)}: ${move.source} -> ${move.target} (${move.mode})` }, [
        {
          environment: input.environment,
          move,
          limits,
          memoryHeadroom: input.memoryHeadroom,
          memoryBasis: input.memoryBasis,
          marker: input.marker,
        },
      ])
      .then(
        (report) => succeeded(move, startedAt, report),
        (err: unknown) => {
          const outcome = failed(move, startedAt, err);
          if (input.onFailure === 'stop') halted ??= `${label(move)} failed: ${outcome.error}`;
          return outcome;
        },
      )
      .then((outcome) => {
        running.delete(move.vmid);
        done.push(outcome);
        progress.add({
          vmid: move.vmid,
          state: outcome.state === 'failed' ? 'failed' : 'succeeded',
          detail: outcome.state === 'failed' ? outcome.error : describe(outcome),
          at: outcome.endedAt!,
        });
        changed = true;
      });
  };

  for (;;) {
    if (cancellation.requested) halted ??= 'the operation was cancelled';
    while (!halted && !overBudget() && running.size < limits.maxParallel) {
      const next = pending.findIndex((m) => onTarget(running, m.target) < limits.maxParallelPerTarget);
      if (next < 0) break;
      start(pending.splice(next, 1)[0]!);
    }
    showDetails();
    if (running.size === 0 && (halted || pending.length === 0)) break;
    if (running.size === 0) {
      await progress.flushed();
      await continueAsNew<typeof migrateGuests>({ ...input, pending, done, ...(halted ? { halted } : {}) });
    }
    await condition(() => changed || (cancellation.requested && halted === undefined));
    changed = false;
  }

  for (const move of pending.splice(0)) {
    done.push({ ...moveFields(move), state: 'not-started', error: halted });
    progress.add({ vmid: move.vmid, state: 'skipped', detail: `not started: ${halted}`, at: iso(Date.now()) });
  }
  showDetails();
  await progress.flushed();
  return done;
}

function onTarget(running: Map<number, GuestMove>, target: string): number {
  let n = 0;
  for (const m of running.values()) if (m.target === target) n++;
  return n;
}

/**
 * Tells the evacuation how each guest is doing. Updates are sent one signal at a time, in
 * order, batching whatever accumulated while the previous one was on its way.
 */
function progressReporter(workflowId: string | undefined) {
  const queued: GuestProgress[] = [];
  let chain: Promise<void> = Promise.resolve();
  let sending = false;
  const send = async (): Promise<void> => {
    if (!workflowId || sending || queued.length === 0) return;
    sending = true;
    const batch = queued.splice(0);
    try {
      await getExternalWorkflowHandle(workflowId).signal(migrationProgressSignal, batch);
    } finally {
      sending = false;
    }
    await send();
  };
  return {
    add(update: GuestProgress) {
      queued.push(update);
      if (!sending) chain = send();
    },
    async flushed() {
      await chain;
      await send();
    },
  };
}

function moveFields(move: GuestMove) {
  return { vmid: move.vmid, name: move.name, target: move.target, mode: move.mode };
}

function succeeded(move: GuestMove, startedAt: number, report: MigrationReport): GuestOutcome {
  const endedAt = Date.now();
  return {
    ...moveFields(move),
    state: report.alreadyThere ? 'already-there' : 'migrated',
    startedAt: iso(startedAt),
    endedAt: iso(endedAt),
    durationMs: endedAt - startedAt,
    attached: report.attached,
    ...(report.upid ? { upid: report.upid } : {}),
    ...(report.haUpid ? { haUpid: report.haUpid } : {}),
  };
}

function failed(move: GuestMove, startedAt: number, err: unknown): GuestOutcome {
  const endedAt = Date.now();
  const cause = err instanceof ActivityFailure ? err.cause : err;
  const details =
    cause instanceof ApplicationFailure
      ? (cause.details?.[0] as { upid?: string; log?: string[] } | undefined)
      : undefined;
  return {
    ...moveFields(move),
    state: 'failed',
    startedAt: iso(startedAt),
    endedAt: iso(endedAt),
    durationMs: endedAt - startedAt,
    errorType: cause instanceof ApplicationFailure ? (cause.type ?? 'Error') : 'Error',
    error: cause instanceof Error ? cause.message : String(cause),
    ...(details?.upid ? { upid: details.upid } : {}),
    ...(details?.log ? { log: details.log } : {}),
  };
}

function describe(o: GuestOutcome): string {
  if (o.state === 'already-there') return `already on ${o.target}`;
  return `on ${o.target} after ${Math.round((o.durationMs ?? 0) / 1000)} s${o.attached ? ' (resumed an already running migration)' : ''}`;
}

function label(move: Pick<GuestMove, 'type' | 'vmid' | 'name'>): string {
  return `${move.type === 'qemu' ? 'VM' : 'CT'} ${move.vmid} (${move.name})`;
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
