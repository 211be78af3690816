import { ApplicationFailure, isCancellation } from '@temporalio/workflow';
import { mapBounded } from '../lib/lifecycle/bounded.js';
import type { StorageCleanupInput } from '../lib/operations/catalog.js';
import { failureMessage, taskSummary } from './guest-step.js';
import { runOperation } from './operation.js';
import { Failure } from '../lib/operations/failures.js';
import { reads, dispatches, waits } from './activity-presets.js';

const planning = reads({ startToCloseTimeout: '5 minutes' });

/** Removing is never repeated once sent; the activity re-checks the volume before sending. */
const removing = dispatches({ startToCloseTimeout: '5 minutes' });

const waiting = waits({ startToCloseTimeout: '1 hour' });

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
            if (sent.kind === 'dispatched')
              await waiting.awaitTask.executeWithOptions({ summary: taskSummary(sent.upid) }, [
                { environment: input.environment, upid: sent.upid },
              ]);
            return sent;
          }),
        { haltOn: isCancellation },
      );
      const results = volumes.map((v, i) => {
        const s = settled[i]!;
        return {
          volid: v.volid,
          node: v.node,
          size: v.size,
          removed: s.ok,
          ...(s.ok ? {} : { error: failureMessage(s.error) }),
        };
      });
      const failed = results.filter((r) => !r.removed);
      if (failed.length > 0) {
        throw ApplicationFailure.create({
          type: Failure.CleanupIncomplete,
          message: `${failed.length} of ${results.length} volumes not removed: ${failed.map((f) => `${f.volid} (${f.error})`).join('; ')}`,
          nonRetryable: true,
          details: [results],
        });
      }
      return results;
    },
  });
}
