import type { BackupReport } from '../activities/backup.js';
import type { GuestActionInput, VmStepOutcome } from '../activities/vm.js';
import { runGuestOrBackupStep } from './backup-step.js';
import { runOperation } from './operation.js';
import { reads } from './activity-presets.js';

const planning = reads({ startToCloseTimeout: '1 minute' });

/**
 * One guest (VM or container), one action — start, stop, shutdown, reboot, snapshot,
 * rollback, migrate, delete, or resize: read it and plan (pre-flight summary, risk, snapshot
 * first where policy asks), wait for approval, then run each step: re-verify the guest's vmid
 * *and* name, send the step to PVE once, wait for its task and for the guest to get there.
 */
export async function vmAction(input: GuestActionInput) {
  return runOperation(input.action === 'resize' ? 'vm-resize' : 'vm-action', input.meta, {
    plan: () => planning.planVmAction(input),
    apply: async (plan, op) => {
      const outcomes: Record<string, VmStepOutcome | BackupReport> = {};
      // Steps run in order: a destructive step only after the backup before it succeeded.
      for (const step of plan.steps) {
        outcomes[step.id] = await op.step<VmStepOutcome | BackupReport>(step.id, () =>
          runGuestOrBackupStep(input.environment, input, step),
        );
      }
      return outcomes;
    },
  });
}
