/**
 * Running one plan step on one guest, the way every lifecycle workflow does it: send it to
 * PVE once (after re-verifying the guest's vmid and name), wait for its task, then check the
 * guest really is where the step should leave it. Not a workflow; workflows call it.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { TaskActivities } from '../activities/tasks.js';
import type { VmActivities, VmStepOutcome } from '../activities/vm.js';
import { settledState } from '../lib/lifecycle/guest-steps.js';
import type { PlanStep } from './definitions.js';

/**
 * Dispatching a step is never retried once PVE may have received it: the activity checks
 * the world first (is the guest already where the step would leave it?) and fails
 * non-retryably when the outcome of a sent request is unknown.
 */
const dispatch = proxyActivities<VmActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['VmIdentityMismatch', 'PlanRefused', 'OutcomeUnknown'] },
});

/** Waiting on a PVE task, or on the guest's state, is safe to repeat: it only reads. */
const waiting = proxyActivities<TaskActivities & VmActivities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '30 seconds',
  retry: { maximumAttempts: 20 },
});

/** How long a guest may take to show a step's effect after its task ended (HA acts later). */
function settleTimeoutMs(step: PlanStep): number {
  if (step.action === 'migrate') return 60 * 60_000;
  const shutdownSeconds = step.action === 'shutdown' ? Number(step.params?.['timeout'] ?? 0) : 0;
  return 10 * 60_000 + shutdownSeconds * 1000;
}

export async function runGuestStep(environment: string, guest: { vmid: number; name: string }, step: PlanStep): Promise<VmStepOutcome> {
  const outcome = await dispatch.dispatchVmStep({ environment, vmid: guest.vmid, name: guest.name, step });
  if (outcome.kind === 'dispatched') await waiting.awaitTask({ environment, upid: outcome.upid });
  if (settledState(step)) {
    await waiting.awaitGuestSettled({ environment, vmid: guest.vmid, step, timeoutMs: settleTimeoutMs(step) });
  }
  return outcome;
}

/** The innermost message of a failure (an activity's own error rather than "Activity task failed"). */
export function failureMessage(err: unknown): string {
  let current: unknown = err;
  while (current instanceof Error && current.cause instanceof Error) current = current.cause;
  return current instanceof Error ? current.message : String(current);
}
