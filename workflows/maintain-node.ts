/**
 * One node's maintenance, a child of the rolling maintenance (whose plan was approved):
 *
 *   1. check     the cluster is quorate, the other nodes are up, the node runs nothing else
 *   2. evacuate  plan its evacuation fresh, move its guests                (child migrateGuests)
 *   3. upgrade   the upgrade command over SSH, output to the node's log
 *   4. reboot    if required (or always), and wait until it is back: API, version, quorum
 *   5. return    its guests back home                                     (child migrateGuests)
 *   6. verify    the node runs the new version and holds its guests, each as it was
 *   (with HA maintenance on between 2 and 5, when asked)
 *
 * A step that fails halts the node — it waits, with everything it knows, for the operator:
 * resume (the failed step runs again), skip-node (its guests come back if it is up, and the
 * rollout goes on), or abort-and-return (the same, then the rollout stops). Steps that
 * finished never run again; a worker lost mid-step is picked up where it was.
 *
 * Cancelled (with its rollout), the node finishes the step it is in — an upgrade, a reboot,
 * the running migrations — and starts no other; its report says which guests are away where.
 */
import { CancellationScope, isCancellation } from '@temporalio/workflow';
import type { NodeSettings } from '../lib/maintenance/plan.js';
import type { RunbookPlan } from '../lib/runbooks/plan.js';
import { watchCancellation } from './cancellation.js';
import { failureMessage } from './guest-step.js';
import type { AwayGuest } from '../lib/maintenance/node-outcomes.js';
import type { NodeReport } from './maintenance-definitions.js';
import { acting, reading } from './maintain-node/activities.js';
import { evacuate } from './maintain-node/evacuate.js';
import { NodeRun, NodeStopped } from './maintain-node/node-run.js';
import { bringBack, wrapUp } from './maintain-node/return.js';
import { rebootIfRequired, runRunbook, runUpgrade } from './maintain-node/upgrade.js';

export interface MaintainNodeInput {
  environment: string;
  node: string;
  /** Nodes of the same group, maintained at the same time: they receive no guests and may be down. */
  alongside: string[];
  settings: NodeSettings;
  /** The rolling maintenance, told of every change. */
  reportTo: string;
  /** The node's log file is <log dir>/<logKey>/<node>.log. */
  logKey: string;
  /** A runbook planned for this node, run after the upgrade. */
  runbook?: { name: string; plan: RunbookPlan };
  /**
   * The previous group, still bringing its guests home (the plan's NodeTurn.overlaps): this
   * node is emptied meanwhile, leaves those guests to their return, and verifies itself empty
   * (then goes down) only once that group has ended (previousGroupSignal).
   */
  overlaps?: { nodes: string[]; returning: AwayGuest[] };
}

export async function maintainNode(input: MaintainNodeInput): Promise<NodeReport> {
  const cancellation = watchCancellation();
  return CancellationScope.nonCancellable(async () => {
    const run = new NodeRun(input, cancellation);
    run.tell();
    try {
      await steps(run);
      run.report.state = 'maintained';
    } catch (err) {
      await stopped(run, err);
    }
    delete run.report.step;
    run.report.endedAt = run.now();
    run.tell();
    await run.flushed();
    return { ...run.report };
  });
}

/** The node's steps, in order; each halts for the operator when it fails. */
async function steps(run: NodeRun): Promise<void> {
  const { input, settings, environment, node, report } = run;
  const returning = (input.overlaps?.returning ?? []).map((g) => g.vmid);
  await run.step('check', () =>
    reading.checkNodeTurn({
      environment,
      node,
      alongside: input.alongside,
      minNodesUp: settings.minNodesUp,
      returning,
    }),
  );
  await run.step('evacuate', () => evacuate(run));
  if (settings.haMaintenance) {
    await run.step('ha-maintenance-on', () => acting.setHaMaintenance({ environment, node, enabled: true }));
    run.haEnabled = true;
  }
  if (settings.upgrade) await run.step('upgrade', () => runUpgrade(run));
  if (input.runbook) await run.step('runbook', () => runRunbook(run, input.runbook!));
  if (settings.reboot !== 'never') {
    await run.step('reboot', () => rebootIfRequired(run));
    if (!report.reboot?.rebooted)
      Object.assign(run.entry('reboot'), { state: 'skipped', detail: 'no reboot required' });
  }
  if (run.haEnabled) {
    await run.step('ha-maintenance-off', () => acting.setHaMaintenance({ environment, node, enabled: false }));
    run.haEnabled = false;
  }
  if (settings.returnGuests) await run.step('return', () => bringBack(run));
  await run.step('verify', () =>
    reading.verifyNode({
      environment,
      node,
      ...(run.upgrade?.versionAfter ? { expectVersion: run.upgrade.versionAfter } : {}),
      guests: run.cameBack.map((g) => ({ vmid: g.vmid, name: g.name, type: g.type, status: g.priorStatus })),
    }),
  );
}

/** How the node ended early: cancelled with its rollout, or stopped by a decision (its guests brought home if it is up). */
async function stopped(run: NodeRun, err: unknown): Promise<void> {
  const { report } = run;
  if (run.cancellation.requested) {
    report.state = 'cancelled';
    if (!isCancellation(err))
      report.warnings.push(`cancelled while ${report.step ?? 'a step'} failed: ${failureMessage(err)}`);
  } else if (err instanceof NodeStopped) {
    await wrapUp(run);
    report.state = err.decision.action === 'skip-node' ? 'skipped' : 'aborted';
  } else {
    throw err;
  }
}
