import type { IsoImportInput } from '../lib/operations/catalog.js';
import { taskSummary } from './guest-step.js';
import { runOperation } from './operation.js';
import { reads, dispatches, waits } from './activity-presets.js';

const reading = reads();

const downloading = dispatches();

/** A download can take long; following it only reads the task. */
const waiting = waits({ startToCloseTimeout: '6 hours' });

/**
 * Bring an ISO into a storage: plan (the storage holds ISOs, the name is free), approve, let
 * PVE download it and verify its checksum (a mismatch fails the task and keeps nothing), then
 * check it is listed.
 */
export async function isoImport(input: IsoImportInput) {
  return runOperation('iso-import', input.meta, {
    plan: () => reading.planIsoImport(input),
    apply: async (plan, op) => {
      await op.step('download', async () => {
        const started = await downloading.startIsoDownload(input);
        if (started.kind === 'dispatched')
          await waiting.awaitTask.executeWithOptions({ summary: taskSummary(started.upid) }, [
            { environment: input.environment, upid: started.upid },
          ]);
      });
      return op.step('verify', () =>
        reading.verifyVolume({
          environment: input.environment,
          node: input.node,
          storage: input.storage,
          volid: plan.details!.volid,
        }),
      );
    },
  });
}
