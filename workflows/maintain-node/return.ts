/** Bringing the node's guests home once it is back — or, after skip-node or abort-and-return, if it is up. */
import { ApplicationFailure, isCancellation } from '@temporalio/workflow';
import { failureMessage } from '../guest-step.js';
import { Failure } from '../../lib/operations/failures.js';
import { acting, reading } from './activities.js';
import { arrived, failures, migrate } from './migrations.js';
import type { NodeRun } from './node-run.js';

export async function bringBack(run: NodeRun): Promise<void> {
  const { node, environment, away, report } = run;
  if (away.size === 0) return;
  const planned = await reading.planReturn({
    environment,
    node,
    guests: [...away.values()],
    drain: run.settings.drain,
  });
  for (const g of planned.gone) {
    report.notReturned.push({ vmid: g.vmid, name: g.name, at: 'nowhere', reason: g.reason });
    away.delete(g.vmid);
  }
  for (const vmid of planned.home) home(run, vmid);
  if (planned.moves.length === 0) return;
  const marker = await reading.markTasks({
    environment,
    nodes: [...new Set(planned.moves.map((m) => m.source))].sort(),
  });
  const outcomes = await migrate(run, 'return', planned.moves, planned.limits, marker, 'continue');
  for (const o of arrived(outcomes)) home(run, o.vmid, planned.moves.find((m) => m.vmid === o.vmid)!.priorStatus);
  if (outcomes.some((o) => o.state === 'not-started'))
    run.cancellation.throwIfRequested(`the rest of the return to ${node}`);
  const failed = failures(outcomes);
  if (failed) throw ApplicationFailure.create({ type: Failure.ReturnIncomplete, message: failed, nonRetryable: true });
}

function home(run: NodeRun, vmid: number, status?: 'running' | 'stopped'): void {
  const g = run.away.get(vmid);
  if (!g) return;
  run.away.delete(vmid);
  run.cameBack.push({ ...g, at: run.node, ...(status ? { priorStatus: status } : {}) });
  run.report.returned = run.cameBack.length;
}

/** After skip-node or abort-and-return: HA maintenance off and (unless told not to) guests home, if the node is up. */
export async function wrapUp(run: NodeRun): Promise<void> {
  const { node, environment, settings, report } = run;
  const returning = settings.returnGuests && run.away.size > 0;
  if (!returning && !run.haEnabled) return;
  run.deadline = Date.now() + settings.maxNodeMs;
  try {
    const state = await reading.readNodeState({ environment, node });
    if (!state.reachable || !state.online) throw new Error(`${node} is not up`);
    if (run.haEnabled)
      await run.attempt('ha-maintenance-off', () => acting.setHaMaintenance({ environment, node, enabled: false }));
    run.haEnabled = false;
    if (returning) await run.attempt('return', () => bringBack(run));
  } catch (err) {
    if (isCancellation(err)) throw err;
    const why = failureMessage(err);
    report.warnings.push(`could not finish the node: ${why}`);
    if (returning)
      for (const g of run.away.values()) report.notReturned.push({ vmid: g.vmid, name: g.name, at: g.at, reason: why });
  }
}
