/**
 * Running one plan step on one guest, the way every lifecycle workflow does it: send it to
 * PVE once (after re-verifying the guest's vmid and name), wait for its task, then check the
 * guest really is where the step should leave it. Not a workflow; workflows call it.
 */
import type { CreateSpec } from '../lib/lifecycle/create-spec.js';
import type { VmStepOutcome } from '../activities/vm.js';
import { settledState } from '../lib/lifecycle/guest-steps.js';
import { parseUpid } from '../lib/pve/upid.js';
import type { PlanStep } from '../lib/operations/plan.js';
import { dispatches, waits } from './activity-presets.js';

/**
 * A retried dispatch never sends a step twice: it first follows any task an earlier attempt
 * started and checks the world (is the guest already where the step would leave it?); a
 * destructive step whose answer was lost fails non-retryably instead.
 */
const dispatch = dispatches();

/** Waiting on a PVE task, or on the guest's state, is safe to repeat: it only reads. */
const waiting = waits();

/** How long a guest may take to show a step's effect after its task ended (HA acts later). */
function settleTimeoutMs(step: PlanStep): number {
  if (step.action === 'migrate') return 60 * 60_000;
  const shutdownSeconds = step.action === 'shutdown' ? Number(step.params?.['timeout'] ?? 0) : 0;
  return 10 * 60_000 + shutdownSeconds * 1000;
}

export async function runGuestStep(
  environment: string,
  guest: { vmid: number; name: string },
  step: PlanStep,
): Promise<VmStepOutcome> {
  const what = `${step.action} ${guest.vmid} '${guest.name}'${step.target ? ` to ${step.target}` : ''}`;
  const outcome = await dispatch.dispatchVmStep.executeWithOptions({ summary: what }, [
    { environment, vmid: guest.vmid, name: guest.name, step },
  ]);
  if (outcome.kind === 'dispatched')
    await waiting.awaitTask.executeWithOptions({ summary: taskSummary(outcome.upid) }, [
      { environment, upid: outcome.upid },
    ]);
  if (settledState(step)) {
    await waiting.awaitGuestSettled.executeWithOptions(
      { summary: `wait until ${guest.vmid} '${guest.name}' shows the ${step.action}` },
      [{ environment, vmid: guest.vmid, step, timeoutMs: settleTimeoutMs(step) }],
    );
  }
  return outcome;
}

/** What an activity following a PVE task shows in the Temporal UI: `follow qmclone 3001 on pve01`. */
export function taskSummary(upid: string): string {
  const task = parseUpid(upid);
  return task ? `follow ${task.type}${task.id ? ` ${task.id}` : ''} on ${task.node}` : `follow ${upid}`;
}

/** What creating a guest shows in the Temporal UI; a clone names its source. */
export function createSummary(spec: CreateSpec): string {
  const name = 'fixed' in spec.name ? ` '${spec.name.fixed}'` : '';
  const from = spec.source ? ` from ${spec.source.vmid} '${spec.source.name}'` : '';
  return `${spec.kind} ${spec.type === 'qemu' ? 'VM' : 'CT'} ${spec.vmid}${name} on ${spec.node}${from}`;
}

/** The innermost message of a failure (an activity's own error rather than "Activity task failed"). */
export function failureMessage(err: unknown): string {
  let current: unknown = err;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}
