/**
 * The backup step `policy.backup_before` puts at the head of a guest's destructive steps, run
 * the way every guest step is run by the workflows that plan it (vm-action, bulk-action,
 * reconcile, restore). Not a workflow; workflows call it.
 */
import type { BackupReport } from '../activities/backup.js';
import type { VmStepOutcome } from '../activities/vm.js';
import type { PlanStep } from '../lib/operations/plan.js';
import { reads, waits } from './activity-presets.js';
import { runGuestStep } from './guest-step.js';

const marking = reads({ startToCloseTimeout: '1 minute' });

/** A backup step follows its vzdump with heartbeats; a retry attaches to the same task. */
const backing = waits({ startToCloseTimeout: '12 hours', maximumAttempts: 10 });

/** One vzdump of the step's guest, sent once: the node's task history is marked first, so a retry finds its task. */
export async function runBackupStep(environment: string, step: PlanStep): Promise<BackupReport> {
  const marker = await marking.markTaskHistory({ environment, node: step.node! });
  return backing.backupGuest({ environment, step, marker });
}

/** A guest's plan step: its backup (policy backup_before), or a step sent to PVE as every guest step is. */
export function runGuestOrBackupStep(
  environment: string,
  guest: { vmid: number; name: string },
  step: PlanStep,
): Promise<VmStepOutcome | BackupReport> {
  return step.action === 'backup' ? runBackupStep(environment, step) : runGuestStep(environment, guest, step);
}
