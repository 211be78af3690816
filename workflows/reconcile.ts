/**
 * Make an environment match its fleet manifest.
 *
 *   1. Plan: read the manifest folder and the cluster, diff them — per guest: create, change in
 *      place (restarting it for what applies at boot), replace, or delete (claimed guests the
 *      manifest no longer lists) — every step with the exact PVE parameters it sends.
 *                                                                  (activity planReconcile)
 *   2. Approve: by policy when every change is low risk; replacements and deletes are high
 *      risk and need a second person.
 *   3. Apply, wave by wave in dependency order, at most `maxParallel` guests at a time; clones
 *      of one template one after the other. Config changes re-read the guest and carry the
 *      plan's config digest, so PVE refuses them if the guest changed meanwhile.
 *   4. Verify: plan again; an applied manifest plans zero changes.
 *
 * A guest that fails does not stop the others (only the guests that depend on it); the result
 * says what changed, what failed and why.
 */
import { isCancellation, setCurrentDetails } from '@temporalio/workflow';
import type { NewGuest } from '../activities/provision.js';
import { mapBounded } from '../lib/lifecycle/bounded.js';
import type { ChangeAction, GuestChange } from '../lib/manifest/diff/index.js';
import type { ReconcileDetails } from '../lib/manifest/plan.js';
import type { ReconcileInput } from '../lib/operations/catalog.js';
import type { PlanStep } from '../lib/operations/plan.js';
import { runGuestOrBackupStep } from './backup-step.js';
import { createSummary, failureMessage, taskSummary } from './guest-step.js';
import { runOperation, type OperationHandle } from './operation.js';
import { reads, dispatches, waits } from './activity-presets.js';

const planning = reads({ startToCloseTimeout: '5 minutes' });

/** A repeated attempt finds its values in place; a guest changed by someone else is never overwritten. */
const configuring = dispatches({ maximumAttempts: 5 });

/** A repeated attempt looks for the guest an earlier one created before creating anything. */
const creating = dispatches();

const waiting = waits();

/** Set by POST /v1/drift/{id}/apply: the drift report this operation closes. */
export interface DriftOrigin {
  reportId: string;
  checkedAt: string;
}

export interface GuestOutcome {
  key: string;
  action: ChangeAction;
  /** The guest acted on (a replacement's or a new guest's final VMID and name). */
  vmid: number;
  name: string;
  state: 'changed' | 'failed' | 'skipped';
  /** The step that failed and why, or why the guest was skipped. */
  failedStep?: string;
  error?: string;
}

export interface ReconcileResult {
  /** `applied` when every change succeeded and a new plan finds nothing left to do. */
  outcome: 'applied' | 'incomplete';
  guests: GuestOutcome[];
  changed: number;
  failed: number;
  skipped: number;
  /** What a plan made right after applying still finds (zero changes when applied). */
  remaining: { changes: number; summary: string } | { error: string };
  fromDrift?: DriftOrigin;
}

export async function reconcile(input: ReconcileInput & { fromDrift?: DriftOrigin }) {
  const { environment } = input;
  const request = {
    environment,
    maxParallel: input.maxParallel,
    ...(input.manifests ? { manifests: input.manifests } : {}),
  };
  return runOperation<ReconcileDetails, ReconcileResult>('reconcile', input.meta, {
    plan: () => planning.planReconcile(request),
    apply: async (plan, op) => {
      const { changes, maxParallel } = plan.details!;
      const outcomes = new Map<string, GuestOutcome>();
      const lanes = new Map<string, Promise<unknown>>();

      for (const wave of [...new Set(changes.map((c) => c.wave))].sort((a, b) => a - b)) {
        await mapBounded(
          changes.filter((c) => c.wave === wave),
          maxParallel,
          async (change) => outcomes.set(change.key, await applyChange(environment, change, op, outcomes, lanes)),
          { haltOn: isCancellation },
        );
      }

      const guests = changes.map((c) => outcomes.get(c.key)!);
      const count = (state: GuestOutcome['state']) => guests.filter((g) => g.state === state).length;
      const remaining = await planning.planReconcile(request).then(
        (after) => ({ changes: after.details!.changes.length, summary: after.summary }),
        (err: unknown) => ({ error: `could not plan again to verify: ${failureMessage(err)}` }),
      );
      const result: ReconcileResult = {
        outcome:
          count('failed') + count('skipped') === 0 && 'changes' in remaining && remaining.changes === 0
            ? 'applied'
            : 'incomplete',
        guests,
        changed: count('changed'),
        failed: count('failed'),
        skipped: count('skipped'),
        remaining,
        ...(input.fromDrift ? { fromDrift: input.fromDrift } : {}),
      };
      setCurrentDetails(
        `${result.outcome}: ${result.changed} changed, ${result.failed} failed, ${result.skipped} skipped`,
      );
      return result;
    },
  });
}

/** One guest's steps, in order; the first failure ends them. */
async function applyChange(
  environment: string,
  change: GuestChange,
  op: OperationHandle,
  outcomes: Map<string, GuestOutcome>,
  lanes: Map<string, Promise<unknown>>,
): Promise<GuestOutcome> {
  const outcome: GuestOutcome = {
    key: change.key,
    action: change.action,
    vmid: change.replacement?.vmid ?? change.vmid,
    name: change.replacement?.name ?? change.name,
    state: 'changed',
  };
  const blocker = change.dependsOn.find(
    (key) => outcomes.get(key)?.state !== undefined && outcomes.get(key)!.state !== 'changed',
  );
  if (blocker) {
    const why = `${blocker}, which it depends on, was not changed`;
    for (const s of change.steps) op.mark(s.id, 'skipped', why);
    return { ...outcome, state: 'skipped', error: why };
  }

  let created: NewGuest | undefined;
  const target = (step: PlanStep) =>
    created && step.vmid === change.create?.vmid ? created : { vmid: step.vmid!, name: step.name! };
  for (const [i, step] of change.steps.entries()) {
    try {
      await op.step(step.id, async () => {
        if (step.action === 'clone' || step.action === 'create') {
          const create = async () => {
            const spec = change.create!;
            const guest = await creating.createGuest.executeWithOptions({ summary: createSummary(spec) }, [
              { environment, spec },
            ]);
            if (guest.upid)
              await waiting.awaitTask.executeWithOptions({ summary: taskSummary(guest.upid) }, [
                { environment, upid: guest.upid },
              ]);
            return guest;
          };
          created = change.lane ? await oneAtATime(lanes, change.lane, create) : await create();
          outcome.vmid = created.vmid;
          outcome.name = created.name;
          return created;
        }
        const guest = target(step);
        if (step.action === 'config') {
          const before = step.vmid === change.vmid && change.action === 'update' ? change.before : undefined;
          return configuring.applyGuestConfig({
            environment,
            ...guest,
            params: step.params ?? {},
            ...(before ? { before } : {}),
          });
        }
        return runGuestOrBackupStep(environment, guest, { ...step, ...guest });
      });
    } catch (err) {
      if (isCancellation(err)) throw err;
      for (const later of change.steps.slice(i + 1)) op.mark(later.id, 'skipped', `${step.id} failed`);
      return { ...outcome, state: 'failed', failedStep: step.id, error: failureMessage(err) };
    }
  }
  return outcome;
}

/** Runs `work` after everything queued on `lane` before it has finished, however that ended. */
function oneAtATime<T>(lanes: Map<string, Promise<unknown>>, lane: string, work: () => Promise<T>): Promise<T> {
  const mine = (lanes.get(lane) ?? Promise.resolve()).then(work, work);
  lanes.set(
    lane,
    mine.catch(() => undefined),
  );
  return mine;
}
