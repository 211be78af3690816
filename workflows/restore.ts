import type { BackupActivities } from '../activities/backup.js';
import type { RestoreInput } from '../lib/operations/catalog.js';
import { runGuestOrBackupStep } from './backup-step.js';
import { runOperation } from './operation.js';
import { reads, waits } from './activity-presets.js';

const planning = reads();

/** Follows the restore task while it reads the archive back; a retry attaches to the same task. */
const restoring = waits({ startToCloseTimeout: '12 hours', maximumAttempts: 10 });

/**
 * A guest back from a backup volume: the plan shows the backup's time, size and config and,
 * in place, what is lost; after approval the original is backed up (where `policy.backup_before`
 * asks) and stopped if running, then the archive is restored (PVE's `force` over the original, or a new VMID beside it) as one task.
 */
export async function restore(input: RestoreInput) {
  return runOperation('restore', input.meta, {
    plan: () => planning.planRestore(input),
    apply: async (plan, op) => {
      const marker = await planning.markTaskHistory({ environment: input.environment, node: plan.details!.node });
      let restored: Awaited<ReturnType<BackupActivities['restoreGuest']>> | undefined;
      for (const step of plan.steps) {
        if (step.action === 'restore') {
          restored = await op.step(step.id, () =>
            restoring.restoreGuest({ environment: input.environment, step, marker }),
          );
        } else {
          await op.step(step.id, () =>
            runGuestOrBackupStep(input.environment, { vmid: step.vmid!, name: step.name! }, step),
          );
        }
      }
      return restored;
    },
  });
}
