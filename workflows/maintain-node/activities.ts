/** The activities a node's maintenance calls, by what a retry may do (workflows/activity-presets.ts). */
import { dispatches, reads, waits } from '../activity-presets.js';

/** Only reads: repeated freely. */
export const reading = reads({
  startToCloseTimeout: '10 minutes',
  initialInterval: '1 second',
  maximumInterval: '20 seconds',
  maximumAttempts: 10,
});

/** Acts on the node; each activity checks the world first, so a retry after a lost worker does not act twice. */
export const acting = dispatches({ initialInterval: '2 seconds' });

/** The upgrade command runs once per attempt, its output followed by heartbeats; an attempt resumes from them. */
export const upgrading = waits({ initialInterval: '2 seconds', maximumAttempts: 3 });

/** Waits for a rebooting node; only reads. */
export const waiting = waits({ initialInterval: '1 second', maximumInterval: '10 seconds' });
