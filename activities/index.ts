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
import { createClusterVmActivities } from './cluster-vms.js';
import { createTalosActivities } from './talos.js';
import { createRollingMaintenanceActivities } from './rolling-maintenance.js';
import { createEvacuationActivities } from './evacuation.js';
import { createBackupActivities } from './backup.js';

export function createActivities(deps: WorkerDeps) {
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
    ...createClusterVmActivities(deps),
    ...createTalosActivities(deps),
    ...createRollingMaintenanceActivities(deps),
    ...createEvacuationActivities(deps),
    ...createBackupActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
