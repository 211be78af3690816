import { ApplicationFailure, isCancellation, proxyActivities } from '@temporalio/workflow';
import type { StorageCleanupActivities } from '../activities/storage-cleanup.js';
import type { TaskActivities } from '../activities/tasks.js';
import { mapBounded } from '../lib/lifecycle/bounded.js';
import type { StorageCleanupInput } from '../lib/operations/catalog.js';
import { failureMessage, taskSummary } from './guest-step.js';
import { runOperation } from './operation.js';

const planning = proxyActivities<StorageCleanupActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['PlanRefused'] },
});

/** Removing is never repeated once sent; the activity re-checks the volume before sending. */
const removing = proxyActivities<StorageCleanupActivities>({
  startToCloseTimeout: '5 minutes',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: ['VolumeInUse', 'OutcomeUnknown'] },
});

const waiting = proxyActivities<TaskActivities>({
  startToCloseTimeout: '1 hour',
  heartbeatTimeout: '30 seconds',
  retry: { maximumAttempts: 20 },
});

/**
 * Remove images no guest uses: plan from every guest's configuration and snapshots, approve
 * (high risk: data goes for good), then remove each volume after checking once more that it
 * is unused. One volume failing does not stop the others.
 */
export async function storageCleanup(input: StorageCleanupInput) {
  return runOperation('storage-cleanup', input.meta, {
    plan: () => planning.planStorageCleanup(input),
    apply: async (plan, op) => {
      const { volumes } = plan.details!;
      const settled = await mapBounded(
        volumes,
        4,
        (volume) =>
          op.step(`delete/${volume.volid}`, async () => {
            const sent = await removing.removeVolume({ environment: input.environment, volume });
            if (sent.kind === 'dispatched') await waiting.awaitTask.executeWithOptions({ summary: taskSummary(sent.upid) }, [{ environment: input.environment, upid: sent.upid }]);
            return sent;
          }),
        { haltOn: isCancellation },
      );
      const results = volumes.map((v, i) => {
        const s = settled[i]!;
        return { volid: v.volid, node: v.node, size: v.size, removed: s.ok, ...(s.ok ? {} : { error: failureMessage(s.error) }) };
      });
      const failed = results.filter((r) => !r.removed);
      if (failed.length > 0) {
        throw ApplicationFailure.create({
          type: 'CleanupIncomplete',
          message: `${failed.length} of ${results.length} volumes not removed: ${failed.map((f) => `${f.volid} (${f.error})`).join('; ')}`,
          nonRetryable: true,
          details: [results],
        });
      }
      return results;
    },
  });
}
