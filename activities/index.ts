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
import { createClusterActivities } from './cluster.js';
import { createTalosActivities } from './talos.js';
import { createMaintenanceActivities } from './maintenance.js';
import { createMigrationActivities } from './migration.js';
import { createBackupActivities } from './backup.js';

export function createActivities(deps: WorkerDeps) {
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
    ...createClusterActivities(deps),
    ...createTalosActivities(deps),
    ...createMaintenanceActivities(deps),
    ...createMigrationActivities(deps),
    ...createBackupActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
