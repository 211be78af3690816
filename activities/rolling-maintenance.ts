/**
 * Rolling maintenance activities: plan the rollout, check a node's turn, upgrade it over SSH
 * (output to a log file), reboot it, wait until it is back, bring its guests home, verify.
 *
 * Two steps must never happen twice by accident, and each looks at the world before acting:
 * the upgrade (a retried attempt whose predecessor had sent the command asks apt what is left
 * instead of running it again) and the reboot (sent only while the node still runs the boot
 * the workflow saw before it). Everything else only reads, and may be repeated freely.
 */
import { createNodeActivities } from './rolling-maintenance/node.js';
import { createRolloutPlanning } from './rolling-maintenance/plan.js';
import { createReturnActivities } from './rolling-maintenance/return.js';
import { createUpgradeActivities } from './rolling-maintenance/upgrade.js';
import type { RollingMaintenanceDeps } from './rolling-maintenance/common.js';

export {
  type NodeProbe,
  type RollingMaintenanceDeps,
  type RollingMaintenanceRequest,
} from './rolling-maintenance/common.js';

export function createRollingMaintenanceActivities(deps: RollingMaintenanceDeps) {
  return {
    ...createRolloutPlanning(deps),
    ...createNodeActivities(deps),
    ...createUpgradeActivities(deps),
    ...createReturnActivities(deps),
  };
}

export type RollingMaintenanceActivities = ReturnType<typeof createRollingMaintenanceActivities>;
