/**
 * All activities, created from explicit dependencies so tests can hand in the simulator.
 */
import type { WorkerDeps } from '../worker/deps.js';
import { createApprovalActivities } from './approvals.js';
import { createAuditActivities } from './audit.js';
import { createInventoryActivities } from './inventory.js';
import { createTaskActivities } from './tasks.js';
import { createVmActivities } from './vm.js';
import { createBulkActionActivities } from './bulk-action.js';
import { createLxcPatchActivities } from './lxc-patch.js';
import { createProvisionActivities } from './provision.js';
import { createStatefulVmActivities } from './create-stateful-vm.js';
import { createIsoImportActivities } from './iso-import.js';
import { createStorageCleanupActivities } from './storage-cleanup.js';
import { createReconcileActivities } from './reconcile.js';
import { createRunbookActivities } from './runbook.js';
import { createTemplateBuildActivities } from './template-build.js';
import { createClusterVmActivities, type ClusterVmActivityOptions } from './cluster-vms.js';
import { createTalosActivities } from './talos.js';
import { createRollingMaintenanceActivities, type RollingMaintenanceDeps } from './rolling-maintenance.js';
import { createEvacuationActivities, type EvacuationDeps } from './evacuation.js';
import { createBackupActivities } from './backup.js';

/**
 * What tests and benchmarks change for a PVE on a simulated clock (polling) or for files of
 * their own (runbooks); a worker process takes the defaults.
 */
export type ActivityTuning = Pick<EvacuationDeps, 'taskPolling'> &
  Pick<RollingMaintenanceDeps, 'pollMs' | 'runbooksDir'>;

export function createActivities(deps: WorkerDeps & ActivityTuning, clusters: ClusterVmActivityOptions = {}) {
  return {
    ...createAuditActivities(deps.audit),
    ...createApprovalActivities(deps),
    ...createInventoryActivities(deps),
    ...createTaskActivities(deps),
    ...createVmActivities(deps),
    ...createProvisionActivities(deps),
    ...createBulkActionActivities(deps),
    ...createLxcPatchActivities(deps),
    ...createIsoImportActivities(deps),
    ...createStorageCleanupActivities(deps),
    ...createStatefulVmActivities(deps),
    ...createReconcileActivities(deps),
    ...createRunbookActivities(deps),
    ...createTemplateBuildActivities(deps),
    ...createClusterVmActivities(deps, clusters),
    ...createTalosActivities(deps, clusters),
    ...createRollingMaintenanceActivities(deps),
    ...createEvacuationActivities(deps),
    ...createBackupActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
