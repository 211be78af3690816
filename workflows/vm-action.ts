import { proxyActivities } from '@temporalio/workflow';
import type { BackupActivities, BackupReport } from '../activities/backup.js';
import type { EvacuationActivities } from '../activities/evacuation.js';
import type { GuestActionInput, VmActivities, VmStepOutcome } from '../activities/vm.js';
import type { PlanStep } from './definitions.js';
import { runGuestStep } from './guest-step.js';
import { runOperation } from './operation.js';

const planning = proxyActivities<VmActivities>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['VmIdentityMismatch', 'PlanRefused'] },
});

const marking = proxyActivities<Pick<EvacuationActivities, 'markTaskHistory'>>({
  startToCloseTimeout: '1 minute',
  retry: { maximumAttempts: 5 },
});

/** A backup step (policy backup_before) follows its vzdump with heartbeats; a retry attaches to the same task. */
const backing = proxyActivities<BackupActivities>({
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: '30 seconds',
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: ['BackupFailed', 'BackupRefused', 'BackupMissing'] },
});

async function backupStep(environment: string, step: PlanStep): Promise<BackupReport> {
  const marker = await marking.markTaskHistory({ environment, node: step.node! });
  return backing.backupGuest({ environment, step, marker });
}

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
          step.action === 'backup' ? backupStep(input.environment, step) : runGuestStep(input.environment, input, step),
        );
      }
      return outcomes;
    },
  });
}
