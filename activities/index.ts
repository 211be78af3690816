/**
 * All activities, created from explicit dependencies so tests can hand in the simulator.
 */
import type { WorkerDeps } from '../worker/deps.js';
import { createApprovalActivities } from './approvals.js';
import { createAuditActivities } from './audit.js';
import { createInventoryActivities } from './inventory.js';
import { createTaskActivities } from './tasks.js';
import { createVmActivities } from './vm.js';
import { createBulkActivities } from './bulk.js';
import { createContainerActivities } from './containers.js';
import { createProvisionActivities } from './provision.js';
import { createPxeActivities } from './pxe.js';
import { createStorageActivities } from './storage.js';
import { createReconcileActivities } from './reconcile.js';
import { createRunbookActivities } from './runbook.js';
import { createTemplateActivities } from './template.js';
import { createClusterActivities, type ClusterActivityOptions } from './cluster.js';
import { createTalosActivities } from './talos.js';
import { createMaintenanceActivities, type MaintenanceDeps } from './maintenance.js';
import { createMigrationActivities, type MigrationDeps } from './migration.js';
import { createBackupActivities } from './backup.js';

/**
 * What tests and benchmarks change for a PVE on a simulated clock (polling) or for files of
 * their own (runbooks); a worker process takes the defaults.
 */
export type ActivityTuning = Pick<MigrationDeps, 'taskPolling'> & Pick<MaintenanceDeps, 'pollMs' | 'runbooksDir'>;

export function createActivities(deps: WorkerDeps & ActivityTuning, clusters: ClusterActivityOptions = {}) {
  return {
    ...createAuditActivities(deps.audit),
    ...createApprovalActivities(deps),
    ...createInventoryActivities(deps),
    ...createTaskActivities(deps),
    ...createVmActivities(deps),
    ...createProvisionActivities(deps),
    ...createBulkActivities(deps),
    ...createContainerActivities(deps),
    ...createStorageActivities(deps),
    ...createPxeActivities(deps),
    ...createReconcileActivities(deps),
    ...createRunbookActivities(deps),
    ...createTemplateActivities(deps),
    ...createClusterActivities(deps, clusters),
    ...createTalosActivities(deps, clusters),
    ...createMaintenanceActivities(deps),
    ...createMigrationActivities(deps),
    ...createBackupActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
