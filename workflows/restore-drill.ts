import { ApplicationFailure, CancellationScope, isCancellation, proxyActivities } from '@temporalio/workflow';
import type { BackupActivities } from '../activities/backup.js';
import type { EvacuationActivities } from '../activities/evacuation.js';
import { mapBounded } from '../lib/lifecycle/bounded.js';
import type { RestoreDrillInput } from '../lib/operations/catalog.js';
import type { PlanStep } from './definitions.js';
import { failureMessage } from './guest-step.js';
import { runOperation } from './operation.js';

const planning = proxyActivities<BackupActivities & Pick<EvacuationActivities, 'markTaskHistory'>>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: ['PlanRefused'] },
});

/** Restoring, waiting for the agent and removing the copy all heartbeat; a retry resumes each. */
const drilling = proxyActivities<BackupActivities>({
  startToCloseTimeout: '12 hours',
  heartbeatTimeout: '30 seconds',
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: ['RestoreFailed', 'RestoreRefused', 'AgentSilent', 'PlanRefused'] },
});

export interface DrillResult {
  vmid: number;
  volid: string;
  /** When the backup was taken (epoch seconds). */
  backupCtime: number;
  outcome: 'proven' | 'failed';
  /** From the restore request to the guest agent's answer (or the failure), workflow time. */
  seconds: number;
  error?: string;
}

/**
 * Restore drills: each chosen VM's latest backup restored as a temporary VM on an isolated
 * bridge and booted; the drill passes when its guest agent answers. The temporary VM is
 * destroyed whatever happened (even when the operation is cancelled). A failed drill fails
 * the operation (`DrillFailed`), so it is listed among failed operations with its reason.
 */
export async function restoreDrill(input: RestoreDrillInput) {
  return runOperation('restore-drill', input.meta, {
    plan: () => planning.planRestoreDrill(input),
    apply: async (plan, op) => {
      const { targets, maxParallel } = plan.details!;
      const markers = new Map(
        await Promise.all(plan.nodes.map(async (node) => [node, await planning.markTaskHistory({ environment: input.environment, node })] as const)),
      );
      const drill = async (step: PlanStep): Promise<void> => {
        const copy = { environment: input.environment, node: step.node!, vmid: step.vmid! };
        try {
          await drilling.restoreGuest({ environment: input.environment, step, marker: markers.get(step.node!)! });
          await drilling.awaitGuestAgent({ ...copy, timeoutMs: input.agentTimeoutSeconds * 1000 });
        } finally {
          await CancellationScope.nonCancellable(() => drilling.removeDrillGuest({ ...copy, name: String(step.params!['name']) }));
        }
      };
      const measured = await mapBounded(
        plan.steps,
        maxParallel,
        async (step) => {
          const started = Date.now();
          const seconds = () => (Date.now() - started) / 1000;
          try {
            await op.step(step.id, () => drill(step));
            return { seconds: seconds() };
          } catch (err) {
            if (isCancellation(err)) throw err;
            return { seconds: seconds(), error: failureMessage(err) };
          }
        },
        { haltOn: isCancellation },
      );
      const results: DrillResult[] = targets.map((t, i) => {
        const done = measured[i]!;
        // Each drill reports its own failure; only a cancellation (which halts) is thrown.
        if (!done.ok) throw done.error;
        const { seconds, error } = done.value;
        const base = { vmid: t.vmid, volid: t.backup.volid, backupCtime: t.backup.ctime, seconds };
        return error === undefined ? { ...base, outcome: 'proven' } : { ...base, outcome: 'failed', error };
      });
      const failed = results.filter((r) => r.outcome === 'failed');
      if (failed.length > 0) {
        throw ApplicationFailure.create({
          type: 'DrillFailed',
          message: `restore drill failed for ${failed.map((f) => `${f.vmid} (${f.error?.split('\n')[0]})`).join('; ')}`,
          nonRetryable: true,
          details: [results],
        });
      }
      return results;
    },
  });
}
