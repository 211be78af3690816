/**
 * The named activity proxies every workflow uses, one per role, each typed to the activities
 * of that role only: a `reads()` proxy has no method that changes anything.
 *
 * Every preset carries a heartbeat timeout (`HEARTBEAT_TIMEOUT`). The worker heartbeats each
 * running activity on its own (worker/keep-alive.ts), so an attempt held by a worker that
 * died is given up within seconds — not at its start-to-close timeout, which only bounds an
 * attempt that hangs while its worker lives — and a new worker takes the activity over at once.
 * What makes a retry safe differs per role; the retry itself never re-sends a write blindly.
 */
import type { Duration } from '@temporalio/common';
import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities/index.js';
import { NEVER_RETRIED } from '../lib/operations/failures.js';

/** How long after a worker's last heartbeat Temporal gives its attempt to another worker. */
export const HEARTBEAT_TIMEOUT = '10 seconds';

/** Only looks at the world (plans, checks, verifications): repeating is always safe. */
export type ReadActivity =
  | 'verifyApprovalSignature'
  | 'summarizeInventory'
  | 'planVmAction'
  | 'planCreateGuest'
  | 'planNewGuest'
  | 'verifyNewGuest'
  | 'planBulkAction'
  | 'planLxcPatch'
  | 'planIsoImport'
  | 'verifyVolume'
  | 'planStorageCleanup'
  | 'planStatefulVm'
  | 'discoverGuestAddress'
  | 'verifyDiskBoot'
  | 'planReconcile'
  | 'planRunbookRun'
  | 'planRunbookIngest'
  | 'planTemplateBuild'
  | 'verifyTemplate'
  | 'planClusterUp'
  | 'planClusterDown'
  | 'verifyClusterMember'
  | 'guestsWithTag'
  | 'planRollingMaintenance'
  | 'checkNodeTurn'
  | 'readNodeState'
  | 'checkRebootRequired'
  | 'planReturn'
  | 'markTasks'
  | 'verifyNode'
  | 'planEvacuation'
  | 'markTaskHistory'
  | 'verifyEvacuation'
  | 'planBackup'
  | 'listBackups'
  | 'planRestore'
  | 'planBackupPrune'
  | 'planRestoreDrill';

/** Writes to the orchestrator's own records (audit log, drift reports, runbooks, cluster secrets), not to PVE. */
export type RecordActivity =
  | 'recordAudit'
  | 'recordDrift'
  | 'saveIngestedRunbook'
  | 'generateMachineConfigs'
  | 'writeClusterAccess'
  | 'forgetClusterSecrets'
  | 'recordDrill';

/**
 * Sends one request that acts (a POST, a config change, a command) and returns: seconds of
 * work. A retry first finds what an earlier attempt did (the node's task list, the guest's
 * state) and never sends a destructive request again.
 */
export type DispatchActivity =
  | 'dispatchVmStep'
  | 'createGuest'
  | 'startIsoDownload'
  | 'removeVolume'
  | 'removeBackup'
  | 'removeDrillGuest'
  | 'applyGuestConfig'
  | 'enableHaMaintenance'
  | 'setHaMaintenance'
  | 'rebootNode'
  | 'applyMachineConfig'
  | 'bootstrapEtcd';

/**
 * Long: follows a task or a change to its end, or acts and follows in one (a migration, a
 * backup, an upgrade) keeping what it sent in its heartbeat details, so a retry resumes it.
 */
export type WaitActivity =
  | 'awaitTask'
  | 'awaitGuestSettled'
  | 'awaitClone'
  | 'awaitGuestAddress'
  | 'awaitGuestAgent'
  | 'awaitContainerUp'
  | 'awaitClusterHealthy'
  | 'waitForNodeBack'
  | 'configureClusterVm'
  | 'migrateGuest'
  | 'backupGuest'
  | 'restoreGuest'
  | 'upgradeNode'
  | 'installToDisk'
  | 'patchContainer'
  | 'runRunbookStep';

/** Every activity has exactly one role: adding one without choosing fails to compile here. */
type Unassigned = Exclude<keyof Activities, ReadActivity | RecordActivity | DispatchActivity | WaitActivity>;
const everyActivityHasARole: [Unassigned] extends [never] ? true : Unassigned = true;
void everyActivityHasARole;

/** What a workflow may tune per use: how long an attempt may take, and how many there are. */
export interface Tuning {
  startToCloseTimeout?: Duration;
  maximumAttempts?: number;
  initialInterval?: Duration;
  maximumInterval?: Duration;
}

interface Preset {
  startToCloseTimeout: Duration;
  maximumAttempts: number;
}

export const PRESETS = {
  read: { startToCloseTimeout: '2 minutes', maximumAttempts: 5 },
  record: { startToCloseTimeout: '1 minute', maximumAttempts: 10 },
  dispatch: { startToCloseTimeout: '2 minutes', maximumAttempts: 3 },
  wait: { startToCloseTimeout: '2 hours', maximumAttempts: 20 },
} satisfies Record<string, Preset>;

/** The activity options of a role, tuned: exported so a test can read the bounds every proxy carries. */
export function optionsFor(role: keyof typeof PRESETS, tuning: Tuning = {}): ActivityOptions {
  const preset: Preset = PRESETS[role];
  const {
    startToCloseTimeout = preset.startToCloseTimeout,
    maximumAttempts = preset.maximumAttempts,
    ...intervals
  } = tuning;
  return {
    startToCloseTimeout,
    heartbeatTimeout: HEARTBEAT_TIMEOUT,
    retry: { maximumAttempts, ...intervals, nonRetryableErrorTypes: [...NEVER_RETRIED] },
  };
}

export const reads = (tuning?: Tuning) => proxyActivities<Pick<Activities, ReadActivity>>(optionsFor('read', tuning));
export const records = (tuning?: Tuning) =>
  proxyActivities<Pick<Activities, RecordActivity>>(optionsFor('record', tuning));
export const dispatches = (tuning?: Tuning) =>
  proxyActivities<Pick<Activities, DispatchActivity>>(optionsFor('dispatch', tuning));
export const waits = (tuning?: Tuning) => proxyActivities<Pick<Activities, WaitActivity>>(optionsFor('wait', tuning));
