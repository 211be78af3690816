import { ApplicationFailure, isCancellation } from '@temporalio/workflow';
import { mapBounded } from '../lib/lifecycle/bounded.js';
import type { BulkActionInput } from '../lib/operations/catalog.js';
import { runGuestOrBackupStep } from './backup-step.js';
import { failureMessage } from './guest-step.js';
import { runOperation } from './operation.js';
import { Failure } from '../lib/operations/failures.js';
import { reads } from './activity-presets.js';

const planning = reads({ startToCloseTimeout: '5 minutes' });

export interface BulkGuestResult {
  vmid: number;
  name: string;
  node: string;
  outcome: 'succeeded' | 'failed';
  /** The step that failed and why. */
  failedStep?: string;
  error?: string;
}

/**
 * Every guest matching a tag expression, one action: plan each guest from its own pre-flight
 * summary, approve once, then work through them at most `maxParallel` at a time, each guest's
 * steps in order. A guest that fails does not stop the others; the operation reports every
 * guest's outcome and fails at the end if any did.
 */
export async function bulkAction(input: BulkActionInput) {
  return runOperation('bulk-action', input.meta, {
    plan: () => planning.planBulkAction(input),
    apply: async (plan, op) => {
      const { targets, maxParallel } = plan.details!;
      const settled = await mapBounded(
        targets,
        maxParallel,
        async (guest) => {
          for (const [i, step] of guest.steps.entries()) {
            try {
              await op.step(step.id, () => runGuestOrBackupStep(input.environment, guest, step));
            } catch (err) {
              if (isCancellation(err)) throw err;
              for (const later of guest.steps.slice(i + 1)) op.mark(later.id, 'skipped', `${step.id} failed`);
              throw Object.assign(new Error(failureMessage(err)), { step: step.id, cause: err });
            }
          }
        },
        { haltOn: isCancellation },
      );

      const results: BulkGuestResult[] = targets.map((guest, i) => {
        const outcome = settled[i]!;
        const base = { vmid: guest.vmid, name: guest.name, node: guest.node };
        if (outcome.ok) return { ...base, outcome: 'succeeded' };
        const error = outcome.error as Error & { step?: string };
        return { ...base, outcome: 'failed', error: error.message, ...(error.step ? { failedStep: error.step } : {}) };
      });
      const failed = results.filter((r) => r.outcome === 'failed');
      if (failed.length > 0) {
        throw ApplicationFailure.create({
          type: Failure.BulkActionIncomplete,
          message:
            `${input.action} failed for ${failed.length} of ${results.length} guests: ` +
            failed
              .slice(0, 5)
              .map((f) => `${f.vmid} (${f.error})`)
              .join('; ') +
            (failed.length > 5 ? `; and ${failed.length - 5} more` : ''),
          nonRetryable: true,
          details: [results],
        });
      }
      return results;
    },
  });
}
