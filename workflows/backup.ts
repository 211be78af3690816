import { ApplicationFailure, isCancellation } from '@temporalio/workflow';
import type { BackupReport } from '../activities/backup.js';
import { mapWithLimits } from '../lib/backup/limits.js';
import type { BackupInput } from '../lib/operations/catalog.js';
import { failureMessage } from './guest-step.js';
import { runOperation } from './operation.js';
import { Failure } from '../lib/operations/failures.js';
import { reads, waits } from './activity-presets.js';

const planning = reads();

/**
 * A backup runs as long as its data takes to cross the storage link: the activity heartbeats
 * while it follows the task, and a retry (a dead worker) attaches to the same task.
 */
const backing = waits({ startToCloseTimeout: '12 hours', maximumAttempts: 10 });

export interface BackupGuestResult {
  vmid: number;
  outcome: 'succeeded' | 'failed';
  volid?: string;
  size?: number;
  error?: string;
}

/**
 * vzdump of one guest, a tag expression or a node: plan (which guests, the storage checked
 * on each node), approve, then back up each guest as its own task, at most
 * `maxParallelPerStorage` writing to the storage and `maxParallelPerNode` per node. A guest
 * that fails does not stop the others; the operation fails at the end, naming them.
 */
export async function backup(input: BackupInput) {
  return runOperation('backup', input.meta, {
    plan: () => planning.planBackup(input),
    apply: async (plan, op) => {
      const { maxParallelPerStorage, maxParallelPerNode, storage } = plan.details!;
      const markers = new Map(
        await Promise.all(
          plan.nodes.map(
            async (node) => [node, await planning.markTaskHistory({ environment: input.environment, node })] as const,
          ),
        ),
      );
      const settled = await mapWithLimits(
        plan.steps,
        (step) => [
          { key: `storage:${storage}`, limit: maxParallelPerStorage },
          { key: `node:${step.node}`, limit: maxParallelPerNode },
        ],
        (step) =>
          op.step(step.id, () =>
            backing.backupGuest({ environment: input.environment, step, marker: markers.get(step.node!)! }),
          ),
        { haltOn: isCancellation },
      );
      const results: BackupGuestResult[] = plan.steps.map((step, i) => {
        const outcome = settled[i]!;
        if (outcome.ok) {
          const report: BackupReport = outcome.value;
          return { vmid: report.vmid, outcome: 'succeeded', volid: report.volid, size: report.size };
        }
        return { vmid: step.vmid!, outcome: 'failed', error: failureMessage(outcome.error) };
      });
      const failed = results.filter((r) => r.outcome === 'failed');
      if (failed.length > 0) {
        throw ApplicationFailure.create({
          type: Failure.BackupIncomplete,
          message: `backup failed for ${failed.length} of ${results.length} guests: ${failed.map((f) => `${f.vmid} (${f.error?.split('\n')[0]})`).join('; ')}`,
          nonRetryable: true,
          details: [results],
        });
      }
      return results;
    },
  });
}
