/**
 * Tear a cluster down, as one operation.
 *
 *   1. Plan: every VM carrying the cluster's tag, and only those.
 *   2. Approval — always a person: the cluster and its data are gone for good.
 *   3. Each VM: graceful shutdown, stopped after the timeout; then, once its vmid, name and
 *      tag are checked again, destroyed with its disks. A failed VM never stops the others,
 *      and no destroy is repeated blindly.
 *   4. Verify that nothing carries the tag any more; remove the cluster's secrets.
 */
import { ApplicationFailure, isCancellation } from '@temporalio/workflow';
import type { ClusterDownPlan, TeardownMember } from '../lib/clusters/down.js';
import { mapBounded } from '../lib/lifecycle/bounded.js';
import type { ClusterDownInput } from '../lib/operations/catalog.js';
import { failureMessage, runGuestStep } from './guest-step.js';
import { runOperation } from './operation.js';
import { Failure } from '../lib/operations/failures.js';
import { reads, records } from './activity-presets.js';

const checking = reads();

const recording = records();

export interface ClusterDownResult {
  cluster: string;
  destroyed: TeardownMember[];
  /** The secrets directory removed; absent when there was nothing to remove. */
  secretsRemoved?: string;
}

export async function clusterDown(input: ClusterDownInput) {
  const { environment } = input;
  return runOperation<ClusterDownPlan, ClusterDownResult>('cluster-down', input.meta, {
    plan: () =>
      checking.planClusterDown({
        environment,
        cluster: input.cluster,
        shutdownTimeoutSeconds: input.shutdownTimeoutSeconds,
        maxParallel: input.maxParallel,
      }),
    apply: async (plan, op) => {
      const down = plan.details!;
      if (plan.steps.length === 0) return { cluster: down.cluster, destroyed: [] };
      const stepOf = (id: string) => plan.steps.find((s) => s.id === id)!;
      const settled = await mapBounded(
        down.members,
        down.maxParallel,
        async (m) => {
          await op.step(`shutdown:${m.name}`, () => runGuestStep(environment, m, stepOf(`shutdown:${m.name}`)));
          await op.step(`destroy:${m.name}`, async () => {
            await checking.verifyClusterMember({ environment, vmid: m.vmid, name: m.name, tag: down.tag });
            return runGuestStep(environment, m, stepOf(`destroy:${m.name}`));
          });
        },
        { haltOn: isCancellation },
      );

      const remaining = await op.step('verify', () => checking.guestsWithTag({ environment, tag: down.tag }));
      const failed = settled.flatMap((s, i) => (s.ok ? [] : [`${down.members[i]!.name}: ${failureMessage(s.error)}`]));
      if (failed.length > 0 || remaining.length > 0) {
        op.mark('verify', 'failed', `${remaining.length} guests still carry ${down.tag}`);
        op.mark('forget-secrets', 'skipped', 'the cluster is not gone');
        throw ApplicationFailure.create({
          type: Failure.ClusterNotGone,
          message:
            `cluster ${down.cluster} is not gone: ` +
            [
              ...failed,
              ...remaining.map((g) => `VM ${g.vmid} '${g.name}' on ${g.node} still carries ${down.tag}`),
            ].join('; '),
          nonRetryable: true,
        });
      }
      const { removed } = await op.step('forget-secrets', () =>
        recording.forgetClusterSecrets({ environment, cluster: down.cluster }),
      );
      return { cluster: down.cluster, destroyed: down.members, secretsRemoved: removed };
    },
  });
}
