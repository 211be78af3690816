import { ApplicationFailure, CancellationScope, isCancellation, workflowInfo } from '@temporalio/workflow';
import type { DrillTarget } from '../activities/backup.js';
import type { DrillResult } from '../lib/backup/drills.js';
import { mapBounded } from '../lib/lifecycle/bounded.js';
import type { RestoreDrillInput } from '../lib/operations/catalog.js';
import type { PlanStep } from '../lib/operations/plan.js';
import { failureMessage } from './guest-step.js';
import { runOperation } from './operation.js';
import { Failure } from '../lib/operations/failures.js';
import { dispatches, reads, records, waits } from './activity-presets.js';

const planning = reads();

/** Restoring, waiting for the agent and removing the copy all heartbeat; a retry resumes each. */
const drilling = waits({ startToCloseTimeout: '12 hours', maximumAttempts: 10 });

const removing = dispatches();

const recording = records();

/**
 * Restore drills: each chosen guest's latest backup restored as a temporary guest on an
 * isolated bridge and started; the drill passes when a VM's guest agent answers, or a
 * container runs with an address. The temporary guest is destroyed whatever happened (even
 * when the operation is cancelled). Every guest's result is recorded in the drill history
 * (GET /v1/backups/proven, /v1/backups/findings); a failed drill also fails the operation
 * (`DrillFailed`), naming why.
 */
export async function restoreDrill(input: RestoreDrillInput) {
  return runOperation('restore-drill', input.meta, {
    plan: () => planning.planRestoreDrill(input),
    apply: async (plan, op) => {
      const { targets, maxParallel } = plan.details!;
      const markers = new Map(
        await Promise.all(
          plan.nodes.map(
            async (node) => [node, await planning.markTaskHistory({ environment: input.environment, node })] as const,
          ),
        ),
      );
      const drill = async (step: PlanStep, target: DrillTarget): Promise<void> => {
        const copy = { environment: input.environment, node: step.node!, vmid: step.vmid! };
        try {
          await drilling.restoreGuest({ environment: input.environment, step, marker: markers.get(step.node!)! });
          const check = { ...copy, timeoutMs: input.agentTimeoutSeconds * 1000 };
          await (target.type === 'lxc' ? drilling.awaitContainerUp(check) : drilling.awaitGuestAgent(check));
        } finally {
          const name = String(step.params![target.type === 'lxc' ? 'hostname' : 'name']);
          await CancellationScope.nonCancellable(() => removing.removeDrillGuest({ ...copy, name }));
        }
      };
      const measured = await mapBounded(
        plan.steps,
        maxParallel,
        async (step, i) => {
          const started = Date.now();
          const seconds = () => (Date.now() - started) / 1000;
          try {
            await op.step(step.id, () => drill(step, targets[i]!));
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
        const base = {
          vmid: t.vmid,
          name: t.name,
          type: t.type,
          volid: t.backup.volid,
          backupCtime: t.backup.ctime,
          seconds,
        };
        return error === undefined ? { ...base, outcome: 'proven' } : { ...base, outcome: 'failed', error };
      });
      await recording.recordDrill({
        environment: input.environment,
        operationId: workflowInfo().workflowId,
        at: new Date().toISOString(),
        results,
      });
      const failed = results.filter((r) => r.outcome === 'failed');
      if (failed.length > 0) {
        throw ApplicationFailure.create({
          type: Failure.DrillFailed,
          message: `restore drill failed for ${failed.map((f) => `${f.vmid} (${f.error?.split('\n')[0]})`).join('; ')}`,
          nonRetryable: true,
          details: [results],
        });
      }
      return results;
    },
  });
}
