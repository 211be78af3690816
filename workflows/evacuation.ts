/**
 * Evacuate a node before maintenance.
 *
 *   1. Plan, from one snapshot of the cluster: every guest's target, mode and reason, or why
 *      it stays.                                                    (activity planEvacuation)
 *   2. Wait for approval — always a person: moving every guest off a node is high risk.
 *   3. Migrate, in parallel within the plan's limits.               (child workflow migrateGuests)
 *   4. Verify: the node holds only what the plan left there, and each moved guest runs on
 *      its target in its prior state.                               (activity verifyEvacuation)
 *   5. Optionally put the node into HA maintenance — only when it is verifiably empty.
 *
 * Each guest's progress shows in the status query (one plan step per guest) and in the
 * Temporal UI (one activity per migration, summarised).
 */
import { executeChild, setCurrentDetails, setHandler, workflowInfo } from '@temporalio/workflow';
import {
  describeVerification,
  evacuationOutcome,
  haMaintenanceBlocker,
  type Stayed,
  type Verification,
} from '../lib/planning/evacuation-outcome.js';
import type { EvacuationInput } from '../lib/operations/catalog.js';
import { migrationStepId } from '../lib/operations/step-ids.js';
import type { EvacuationPlan, EvacuationRequest, LeftBehind } from '../lib/planning/evacuation.js';
import type { OperationHandle } from './operation.js';
import { runOperation } from './operation.js';
import { migrateGuests, migrationProgressSignal, type GuestOutcome, type GuestProgress } from './migrate-guests.js';
import { reads, dispatches } from './activity-presets.js';

const planning = reads({ startToCloseTimeout: '10 minutes' });

const reading = reads({ maximumAttempts: 10 });

const acting = dispatches({ maximumAttempts: 10 });

export type GuestResult = GuestOutcome | (Pick<LeftBehind, 'vmid' | 'name' | 'reason'> & { state: 'left-behind' });

export interface EvacuationResult {
  /** `evacuated` only when the node holds nothing the request covered; otherwise `incomplete`, with what stayed. */
  outcome: 'evacuated' | 'incomplete';
  /** Guests the request covered that are still on the node, and why (empty when evacuated). */
  stayed: Stayed[];
  /** Every guest that was on the node: how its move went, or why it stayed. */
  guests: GuestResult[];
  verification: Verification;
  haMaintenance: 'enabled' | 'skipped' | 'not-requested';
  /** Why HA maintenance was skipped. */
  haMaintenanceSkipped?: string;
  durationMs: number;
}

export async function evacuation(input: EvacuationInput) {
  const { meta, environment, dryRun: _dryRun, ...request } = input;
  return runOperation<EvacuationPlan, EvacuationResult>('evacuation', meta, {
    plan: () =>
      planning.planEvacuation.executeWithOptions({ summary: `plan evacuation of ${input.node}` }, [
        { environment, request: request satisfies EvacuationRequest },
      ]),
    apply: async (plan, op) => {
      const evacuation = plan.details!;
      const began = Date.now();
      setHandler(migrationProgressSignal, (updates) => {
        for (const u of updates) recordProgress(op, u);
        showDetails(op, evacuation);
      });

      const marker = await reading.markTaskHistory({ environment, node: evacuation.source });
      // Cancelled, the child starts no migration and follows the running ones to their end.
      const outcomes = await op.cancellable(() =>
        executeChild(migrateGuests, {
          workflowId: `${workflowInfo().workflowId}/migrations`,
          staticSummary: `migrate ${evacuation.moves.length} guests off ${evacuation.source}`,
          args: [
            {
              environment,
              pending: evacuation.moves,
              limits: evacuation.limits,
              memoryHeadroom: evacuation.policy.memoryHeadroom,
              memoryBasis: evacuation.policy.memoryBasis,
              onFailure: evacuation.onFailure,
              marker,
              progressTo: workflowInfo().workflowId,
            },
          ],
        }),
      );

      const moved = outcomes.filter((o) => o.state === 'migrated' || o.state === 'already-there');
      const verification = await op.step('verify', () =>
        reading.verifyEvacuation({
          environment,
          source: evacuation.source,
          moved: moved.map((o) => {
            const move = evacuation.moves.find((m) => m.vmid === o.vmid)!;
            return { vmid: o.vmid, name: o.name, target: o.target, status: move.priorStatus };
          }),
          leftBehind: evacuation.leftBehind.map((l) => l.vmid),
        }),
      );
      if (!verification.ok) op.mark('verify', 'failed', describeVerification(verification));

      const { outcome, stayed } = evacuationOutcome(evacuation, outcomes, verification);
      let haMaintenance: EvacuationResult['haMaintenance'] = 'not-requested';
      const haBlocker = evacuation.haMaintenance ? haMaintenanceBlocker(evacuation, verification, stayed) : undefined;
      if (evacuation.haMaintenance) {
        if (!haBlocker) {
          await op.step('ha-maintenance', () => acting.enableHaMaintenance({ environment, node: evacuation.source }));
          haMaintenance = 'enabled';
        } else {
          op.mark('ha-maintenance', 'skipped', haBlocker);
          haMaintenance = 'skipped';
        }
      }

      const guests: GuestResult[] = [
        ...outcomes,
        ...evacuation.leftBehind.map((l) => ({
          vmid: l.vmid,
          name: l.name,
          reason: l.reason,
          state: 'left-behind' as const,
        })),
      ].sort((a, b) => a.vmid - b.vmid);
      const result: EvacuationResult = {
        outcome,
        stayed,
        guests,
        verification,
        haMaintenance,
        ...(haBlocker ? { haMaintenanceSkipped: haBlocker } : {}),
        durationMs: Date.now() - began,
      };
      setCurrentDetails(
        `${result.outcome}: ${moved.length} of ${evacuation.moves.length} guests moved off ${evacuation.source}` +
          (stayed.length ? `; ${stayed.length} stay that should have moved` : ''),
      );
      return result;
    },
  });
}

const RANK: Record<string, number> = { pending: 0, running: 1, succeeded: 2, failed: 2, skipped: 2 };

/** Progress arrives in order, but a late duplicate must never move a step backwards. */
function recordProgress(op: OperationHandle, update: GuestProgress): void {
  const id = migrationStepId(update.vmid);
  const entry = op.status.steps.find((s) => s.id === id);
  if (entry && RANK[entry.state]! > RANK[update.state]!) return;
  op.mark(id, update.state, update.detail, update.at);
}

function showDetails(op: OperationHandle, plan: EvacuationPlan): void {
  const count = (state: string) =>
    op.status.steps.filter((s) => s.id.startsWith('migrate-') && s.state === state).length;
  setCurrentDetails(
    `${plan.source}: ${count('succeeded')}/${plan.moves.length} moved, ${count('running')} moving, ${count('failed')} failed`,
  );
}
