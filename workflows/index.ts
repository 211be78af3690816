/** Every workflow the worker runs; the API starts them by these exported names. */
export { inventorySnapshot } from './inventorySnapshot.js';
export { vmAction } from './vmAction.js';
