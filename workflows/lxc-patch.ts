import { ApplicationFailure, isCancellation } from '@temporalio/workflow';
import type { PatchLog } from '../activities/lxc-patch.js';
import { mapBounded } from '../lib/lifecycle/bounded.js';
import type { LxcPatchInput } from '../lib/operations/catalog.js';
import { failureMessage, runGuestStep } from './guest-step.js';
import { runOperation } from './operation.js';
import { Failure } from '../lib/operations/failures.js';
import { reads, waits } from './activity-presets.js';

const planning = reads();

/** Retried only when SSH could not connect; an upgrade that ran is never run again by itself. */
const patching = waits({ maximumAttempts: 3 });

export interface ContainerPatchResult {
  vmid: number;
  name: string;
  node: string;
  outcome: 'patched' | 'failed' | 'rolled-back' | 'rollback-failed';
  snapshot?: string;
  upgraded?: number;
  /** The end of the upgrade's output. */
  log?: string[];
  error?: string;
}

/**
 * Patch every running container (002's maintenance workflow): per container, snapshot first,
 * then `apt-get update && apt-get -y upgrade` inside it over SSH — a few containers at a time,
 * each with its own log and result. An upgrade that fails is rolled back to the snapshot when
 * the operator asked; the operation fails at the end if any container is not patched.
 */
export async function lxcPatch(input: LxcPatchInput) {
  return runOperation('lxc-patch', input.meta, {
    plan: () => planning.planLxcPatch(input),
    apply: async (plan, op) => {
      const { containers, maxParallel, commandTimeoutSeconds } = plan.details!;
      const settled = await mapBounded(
        containers,
        maxParallel,
        async (ct): Promise<ContainerPatchResult> => {
          const base = {
            vmid: ct.vmid,
            name: ct.name,
            node: ct.node,
            ...(ct.snapshot ? { snapshot: ct.snapshot } : {}),
          };
          const { snapshot, patch, rollback } = ct.steps;
          if (snapshot) await op.step(snapshot.id, () => runGuestStep(input.environment, ct, snapshot));
          let patched: PatchLog;
          try {
            patched = await op.step(patch.id, () =>
              patching.patchContainer({
                environment: input.environment,
                vmid: ct.vmid,
                name: ct.name,
                timeoutSeconds: commandTimeoutSeconds,
              }),
            );
          } catch (err) {
            if (isCancellation(err)) throw err;
            const failed = { ...base, error: failureMessage(err), log: logOf(err) };
            if (!rollback) return { ...failed, outcome: 'failed' };
            try {
              await op.step(rollback.id, () => runGuestStep(input.environment, ct, rollback), { undo: true });
              return { ...failed, outcome: 'rolled-back' };
            } catch (rollbackErr) {
              if (isCancellation(rollbackErr)) throw rollbackErr;
              return {
                ...failed,
                outcome: 'rollback-failed',
                error: `${failed.error}; rollback failed: ${failureMessage(rollbackErr)}`,
              };
            }
          }
          if (rollback) op.mark(rollback.id, 'skipped', 'the upgrade succeeded');
          op.mark(patch.id, 'succeeded', `${patched.upgraded} package${patched.upgraded === 1 ? '' : 's'} upgraded`);
          return { ...base, outcome: 'patched', upgraded: patched.upgraded, log: patched.log };
        },
        { haltOn: isCancellation },
      );

      const results = settled.map((s, i): ContainerPatchResult => {
        if (s.ok) return s.value;
        const ct = containers[i]!;
        return { vmid: ct.vmid, name: ct.name, node: ct.node, outcome: 'failed', error: failureMessage(s.error) };
      });
      const unpatched = results.filter((r) => r.outcome !== 'patched');
      if (unpatched.length > 0) {
        throw ApplicationFailure.create({
          type: Failure.PatchIncomplete,
          message:
            `${unpatched.length} of ${results.length} containers not patched: ` +
            unpatched
              .slice(0, 5)
              .map((r) => `${r.vmid} ${r.outcome} (${r.error})`)
              .join('; ') +
            (unpatched.length > 5 ? `; and ${unpatched.length - 5} more` : ''),
          nonRetryable: true,
          details: [results],
        });
      }
      return results;
    },
  });
}

/** The command's log carried by a PatchFailed failure. */
function logOf(err: unknown): string[] | undefined {
  let current: unknown = err;
  while (current instanceof Error) {
    const details = (current as { details?: unknown[] }).details;
    const log = (details?.[0] as { log?: string[] } | undefined)?.log;
    if (log) return log;
    current = current.cause;
  }
  return undefined;
}
