/** The activities a node's maintenance calls, by what a retry may do. */
import { proxyActivities } from '@temporalio/workflow';
import type { EvacuationActivities } from '../../activities/evacuation.js';
import type { RollingMaintenanceActivities } from '../../activities/rolling-maintenance.js';

/** Only reads: repeated freely. */
export const reading = proxyActivities<RollingMaintenanceActivities & EvacuationActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '20 seconds', maximumAttempts: 10 },
});

/** Acts on the node; each activity checks the world first, so a retry after a lost worker does not act twice. */
export const acting = proxyActivities<RollingMaintenanceActivities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '2 seconds', maximumAttempts: 3 },
});

/** Waits for a rebooting node; only reads. */
export const waiting = proxyActivities<RollingMaintenanceActivities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 20 },
});
