import { proxyActivities } from '@temporalio/workflow';
import type { BackupActivities } from '../activities/backup.js';
import type { BackupPruneInput } from '../lib/operations/catalog.js';
import { runOperation } from './operation.js';

const planning = proxyActivities<BackupActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['PlanRefused'] },
});

/** Removing a volume may be repeated: a retry finds it gone. */
const removing = proxyActivities<BackupActivities>({
  startToCloseTimeout: '10 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['BackupProtected'] },
});

/**
 * Old backups removed by PVE's prune-backups rules: the plan lists what goes and what stays
 * (protected backups always stay), a person approves it like any deletion, then each
 * archive is removed in turn.
 */
export async function backupPrune(input: BackupPruneInput) {
  return runOperation('backup-prune', input.meta, {
    plan: () => planning.planBackupPrune(input),
    apply: async (plan, op) => {
      const removed = [];
      for (const step of plan.steps) removed.push(await op.step(step.id, () => removing.removeBackup({ environment: input.environment, step })));
      return removed;
    },
  });
}
