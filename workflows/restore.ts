import { proxyActivities } from '@temporalio/workflow';
import type { BackupActivities } from '../activities/backup.js';
import type { EvacuationActivities } from '../activities/evacuation.js';
import type { RestoreInput } from '../lib/operations/catalog.js';
import { runGuestStep } from './guest-step.js';
import { runOperation } from './operation.js';

const planning = proxyActivities<BackupActivities & Pick<EvacuationActivities, 'markTaskHistory'>>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['PlanRefused'] },
});

/** Follows the restore task while it reads the archive back; a retry attaches to the same task. */
const restoring = proxyActivities<BackupActivities>({
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: '30 seconds',
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: ['RestoreFailed', 'RestoreRefused'] },
});

/**
 * A guest back from a backup volume: the plan shows the backup's time, size and config and,
 * in place, what is lost; after approval a running original is stopped, then the archive is
 * restored (PVE's `force` over the original, or a new VMID beside it) as one task.
 */
export async function restore(input: RestoreInput) {
  return runOperation('restore', input.meta, {
    plan: () => planning.planRestore(input),
    apply: async (plan, op) => {
      const marker = await planning.markTaskHistory({ environment: input.environment, node: plan.details!.node });
      let restored: Awaited<ReturnType<BackupActivities['restoreGuest']>> | undefined;
      for (const step of plan.steps) {
        if (step.action === 'restore') {
          restored = await op.step(step.id, () => restoring.restoreGuest({ environment: input.environment, step, marker }));
        } else {
          await op.step(step.id, () => runGuestStep(input.environment, { vmid: step.vmid!, name: step.name! }, step));
        }
      }
      return restored;
    },
  });
}
