/**
 * Every workflow the worker runs; the API starts them by these exported names. A kind's
 * workflow is the camelCase of its kind (`storage-cleanup` -> `storageCleanup`), in
 * workflows/<kind>.ts; child and scheduled workflows are named for what they do.
 */
export { inventory } from './inventory.js';
export { vmAction } from './vm-action.js';
export { evacuation } from './evacuation.js';
export { migrateGuests } from './migrate-guests.js';
export { vmCreate } from './vm-create.js';
export { bulkAction } from './bulk-action.js';
export { lxcPatch } from './lxc-patch.js';
export { isoImport } from './iso-import.js';
export { storageCleanup } from './storage-cleanup.js';
export { createStatefulVm } from './create-stateful-vm.js';
export { runbookRun } from './runbook-run.js';
export { runbookIngest } from './runbook-ingest.js';
export { templateBuild } from './template-build.js';
export { clusterUp } from './cluster-up.js';
export { clusterDown } from './cluster-down.js';
export { reconcile } from './reconcile.js';
export { detectDrift } from './detect-drift.js';
export { rollingMaintenance } from './rolling-maintenance.js';
export { maintainNode } from './maintain-node.js';
export { backup } from './backup.js';
export { restore } from './restore.js';
export { backupPrune } from './backup-prune.js';
export { restoreDrill } from './restore-drill.js';

/**
 * The workflow types these kinds had before the rename (docs/architecture.md). An execution
 * keeps the type it was started with, so a worker must still run the old names until no
 * execution of them is open (`temporal workflow count --query 'WorkflowType="evacuateNode"
 * AND ExecutionStatus="Running"'`); the code is the same function, so their histories replay.
 */
export { inventory as inventorySnapshot } from './inventory.js';
export { evacuation as evacuateNode } from './evacuation.js';
export { vmCreate as createGuest } from './vm-create.js';
export { lxcPatch as patchContainers } from './lxc-patch.js';
export { isoImport as importIso } from './iso-import.js';
export { storageCleanup as removeUnusedImages } from './storage-cleanup.js';
export { createStatefulVm as installStatefulVm } from './create-stateful-vm.js';
export { runbookRun as runRunbook } from './runbook-run.js';
export { runbookIngest as ingestRunbook } from './runbook-ingest.js';
export { templateBuild as buildTemplate } from './template-build.js';
