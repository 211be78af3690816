import { proxyActivities } from '@temporalio/workflow';
import type { TaskActivities } from '../activities/tasks.js';
import type { VmActivities, VmStepOutcome } from '../activities/vm.js';
import type { VmActionInput } from '../lib/operations/catalog.js';
import { runOperation } from './operation.js';

const planning = proxyActivities<VmActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5 },
});

/**
 * Dispatching a step is never retried once PVE may have received it: the activity checks
 * the world first (is the VM already where the step would leave it?) and fails
 * non-retryably when the outcome of a sent request is unknown.
 */
const dispatch = proxyActivities<VmActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['VmIdentityMismatch'] },
});

/** Waiting on a PVE task is safe to repeat: it only reads the task's status. */
const waiting = proxyActivities<TaskActivities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '30 seconds',
  retry: { maximumAttempts: 20 },
});

/**
 * One VM, one action: read it and plan (pre-flight summary, risk, snapshot first where
 * policy asks), wait for approval, then for each step re-verify the VM's vmid *and* name,
 * send the step to PVE once and wait for its task.
 */
export async function vmAction(input: VmActionInput) {
  return runOperation('vm-action', input.meta, {
    plan: () => planning.planVmAction(input),
    apply: async (plan, op) => {
      const outcomes: Record<string, VmStepOutcome> = {};
      for (const step of plan.steps) {
        outcomes[step.id] = await op.step(step.id, async () => {
          const dispatched = await dispatch.dispatchVmStep({
            environment: input.environment,
            vmid: input.vmid,
            name: input.name,
            step,
          });
          if (dispatched.kind === 'already-done') return dispatched;
          await waiting.awaitTask({ environment: input.environment, upid: dispatched.upid });
          return dispatched;
        });
      }
      return outcomes;
    },
  });
}
