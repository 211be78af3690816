import { proxyActivities } from '@temporalio/workflow';
import type { IsoImportActivities } from '../activities/iso-import.js';
import type { TaskActivities } from '../activities/tasks.js';
import type { IsoImportInput } from '../lib/operations/catalog.js';
import { taskSummary } from './guest-step.js';
import { runOperation } from './operation.js';

const storage = proxyActivities<IsoImportActivities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['PlanRefused', 'NotAsPlanned'] },
});

/** A download can take long; following it only reads the task. */
const waiting = proxyActivities<TaskActivities>({
  startToCloseTimeout: '6 hours',
  heartbeatTimeout: '1 minute',
  retry: { maximumAttempts: 20 },
});

/**
 * Bring an ISO into a storage: plan (the storage holds ISOs, the name is free), approve, let
 * PVE download it and verify its checksum (a mismatch fails the task and keeps nothing), then
 * check it is listed.
 */
export async function isoImport(input: IsoImportInput) {
  return runOperation('iso-import', input.meta, {
    plan: () => storage.planIsoImport(input),
    apply: async (plan, op) => {
      await op.step('download', async () => {
        const started = await storage.startIsoDownload(input);
        if (started.kind === 'dispatched') await waiting.awaitTask.executeWithOptions({ summary: taskSummary(started.upid) }, [{ environment: input.environment, upid: started.upid }]);
      });
      return op.step('verify', () =>
        storage.verifyVolume({ environment: input.environment, node: input.node, storage: input.storage, volid: plan.details!.volid }),
      );
    },
  });
}
