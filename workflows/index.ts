/** Every workflow the worker runs; the API starts them by these exported names. */
export { inventorySnapshot } from './inventorySnapshot.js';
export { vmAction } from './vmAction.js';
export { evacuateNode } from './evacuateNode.js';
export { migrateGuests } from './migrateGuests.js';
export { createGuest } from './createGuest.js';
export { bulkAction } from './bulkAction.js';
export { patchContainers } from './patchContainers.js';
export { importIso } from './importIso.js';
export { removeUnusedImages } from './removeUnusedImages.js';
export { installStatefulVm } from './installStatefulVm.js';
export { runRunbook } from './runRunbook.js';
export { ingestRunbook } from './ingestRunbook.js';
export { buildTemplate } from './buildTemplate.js';
export { clusterUp } from './clusterUp.js';
export { clusterDown } from './clusterDown.js';
export { reconcile } from './reconcile.js';
export { detectDrift } from './detectDrift.js';
