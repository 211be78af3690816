/**
 * Emptying the node: its evacuation planned fresh from the cluster as it is, its guests moved
 * off, the node checked empty. Overlapping the previous group, it leaves that group's guests
 * on it to their own return and checks itself empty only once that group has ended.
 */
import { ApplicationFailure, condition } from '@temporalio/workflow';
import { describeStuck, describeVerification, runningLeftBehind } from '../../lib/planning/evacuation-outcome.js';
import type { EvacuationPlan, EvacuationRequest, GuestMove } from '../../lib/planning/evacuation.js';
import type { AwayGuest } from '../../lib/maintenance/node-outcomes.js';
import { Failure } from '../../lib/operations/failures.js';
import { reading } from './activities.js';
import { arrived, failures, migrate } from './migrations.js';
import type { NodeRun } from './node-run.js';

export async function evacuate(run: NodeRun): Promise<void> {
  const { node, environment, away } = run;
  const plan = await planDrain(run);
  const stuck = runningLeftBehind(plan);
  if (stuck.length > 0) {
    throw ApplicationFailure.create({
      type: Failure.NodeNotDrainable,
      message: `${node} cannot be emptied now: ${stuck.map(describeStuck).join('; ')}`,
      nonRetryable: true,
    });
  }
  if (plan.moves.length > 0) {
    const marker = await reading.markTaskHistory({ environment, node });
    const outcomes = await migrate(run, 'evacuate', plan.moves, plan.limits, marker, 'stop');
    for (const o of arrived(outcomes)) away.set(o.vmid, awayGuest(plan.moves.find((m) => m.vmid === o.vmid)!));
    run.report.moved = away.size + run.cameBack.length;
    const notStarted = outcomes.filter((o) => o.state === 'not-started').length;
    if (notStarted > 0) run.cancellation.throwIfRequested(`the rest of ${node}'s evacuation`);
    const failed = failures(outcomes);
    if (failed) {
      throw ApplicationFailure.create({
        type: Failure.EvacuationIncomplete,
        message: failed + (notStarted ? `; ${notStarted} guest(s) not started` : ''),
        nonRetryable: true,
      });
    }
  }
  // The previous group's guests on this node leave it with their return.
  await previousGroupEnded(run);
  const verification = await reading.verifyEvacuation({
    environment,
    source: node,
    moved: [...away.values()].map((g) => ({ vmid: g.vmid, name: g.name, target: g.at, status: g.priorStatus })),
    leftBehind: plan.leftBehind.map((l) => l.vmid),
  });
  if (!verification.ok) {
    throw ApplicationFailure.create({
      type: Failure.EvacuationIncomplete,
      message: describeVerification(verification),
      nonRetryable: true,
    });
  }
}

/**
 * The evacuation, planned fresh. While the previous group's guests return it is planned with
 * them counted where they are and at home, and leaves those on this node to their return.
 * Should that not fit now, the node waits for the previous group and plans without them.
 */
async function planDrain(run: NodeRun): Promise<EvacuationPlan> {
  const { node, environment, input } = run;
  const plan = async (deny: string[], extra: Partial<EvacuationRequest> = {}) =>
    (
      await reading.planEvacuation({
        environment,
        request: {
          ...run.settings.drain,
          node,
          haMaintenance: false,
          ...(deny.length ? { denyTargets: deny } : {}),
          ...extra,
        },
      })
    ).details!;
  const returning = run.previousGroup ? [] : input.overlaps!.returning;
  if (returning.length > 0) {
    const overlapped = await plan(input.alongside, returnsAround(node, returning));
    if (runningLeftBehind(overlapped).length === 0) return overlapped;
    await previousGroupEnded(run);
  }
  return plan(input.alongside);
}

/** Until the previous group has ended; stops this node too when the rollout stops there. */
async function previousGroupEnded(run: NodeRun): Promise<void> {
  await condition(() => run.previousGroup !== undefined);
  const { outcome, reason } = run.previousGroup!;
  if (outcome === 'stopped')
    run.stop('rollout', `the rollout stopped at ${run.input.overlaps!.nodes.join(', ')}${reason ? `: ${reason}` : ''}`);
}

/** The previous group's guests on their way home: those on `node` leave it by themselves, all are counted at home too. */
function returnsAround(node: string, returning: readonly AwayGuest[]): Pick<EvacuationRequest, 'leaving' | 'arriving'> {
  return {
    leaving: returning.filter((g) => g.at === node).map((g) => g.vmid),
    arriving: returning.map((g) => ({ vmid: g.vmid, target: g.home })),
  };
}

function awayGuest(move: GuestMove): AwayGuest {
  return {
    vmid: move.vmid,
    name: move.name,
    type: move.type,
    home: move.source,
    at: move.target,
    priorStatus: move.priorStatus,
    withLocalDisks: move.withLocalDisks,
    haManaged: move.haManaged,
    memoryBytes: move.memoryBytes,
    localDiskBytes: move.localDiskBytes,
  };
}
