import type { BackupPruneInput } from '../lib/operations/catalog.js';
import { runOperation } from './operation.js';
import { reads, dispatches } from './activity-presets.js';

const planning = reads();

/** Removing a volume may be repeated: a retry finds it gone. */
const removing = dispatches({ startToCloseTimeout: '10 minutes', maximumAttempts: 5 });

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
      for (const step of plan.steps)
        removed.push(await op.step(step.id, () => removing.removeBackup({ environment: input.environment, step })));
      return removed;
    },
  });
}
