/**
 * Rolling node maintenance: every node in turn is emptied, upgraded, rebooted if it needs to
 * be, and given its guests back — then the next.
 *
 *   1. Plan, from one snapshot: the order (cheapest to empty first), the groups, and every
 *      node's evacuation; refused, with every reason, if any node cannot be emptied, quorum
 *      or minNodesUp would break, a node is offline or busy.    (activity planRollingMaintenance)
 *   2. One approval for the whole plan — a person's: it moves every guest and reboots nodes.
 *   3. Per group of nodes (one by default): optionally a person's go-ahead per node, then one
 *      child workflow per node.                                           (child maintainNode)
 *   4. A node whose step fails halts the rollout in a stated condition (nodes done, guests
 *      away and where, what each decision would do) until the operator decides: `resume`,
 *      `skip-node` or `abort-and-return`.
 *
 * One rolling maintenance per environment: the workflow ID is the environment's, so starting
 * a second while one runs is refused. Progress shows in the `maintenance` query, in the
 * operation's plan steps, and in the Temporal UI (current details and memo).
 */
import {
  CancellationScope,
  condition,
  getExternalWorkflowHandle,
  startChild,
  type ChildWorkflowHandle,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  workflowInfo,
} from '@temporalio/workflow';
import { nodeStepId } from '../lib/operations/step-ids.js';
import type { MaintenancePlan, NodeStep } from '../lib/maintenance/plan.js';
import type { RollingMaintenanceInput } from '../lib/operations/catalog.js';
import type { OperationMeta, OperationPlan } from '../lib/operations/plan.js';
import { maintainNode } from './maintain-node.js';
import {
  approveNodeSignal,
  approveNodeUpdate,
  decisionRefusal,
  maintenanceDecisions,
  maintenanceQuery,
  newNodeReport,
  nodeApprovalRefusal,
  nodeDecisionSignal,
  nodeReportSignal,
  previousGroupSignal,
  rejectNodeSignal,
  rejectNodeUpdate,
  type MaintenanceAction,
  type MaintenanceDecision,
  type MaintenanceDecisionRequest,
  type MaintenanceProgress,
  type MaintenanceResult,
  type NodeApprovalDecision,
  type NodeApprovalRequest,
  type NodeReport,
  type PreviousGroupEnd,
} from './maintenance-definitions.js';
import { runOperation, setApprovalState, type OperationHandle } from './operation.js';
import { reads, records } from './activity-presets.js';

const planning = reads({ startToCloseTimeout: '15 minutes' });

const { recordAudit } = records({ startToCloseTimeout: '30 seconds' });

export async function rollingMaintenance(input: RollingMaintenanceInput) {
  const { meta, ...request } = input;
  return runOperation<MaintenancePlan, MaintenanceResult>('rolling-maintenance', meta, {
    plan: () =>
      planning.planRollingMaintenance.executeWithOptions(
        { summary: `plan the rolling maintenance of ${input.environment}` },
        [request],
      ),
    apply: (plan, op) => rollOut(plan, op, meta),
  });
}

async function rollOut(
  plan: OperationPlan<MaintenancePlan>,
  op: OperationHandle,
  meta: OperationMeta,
): Promise<MaintenanceResult> {
  const details = plan.details!;
  const began = Date.now();
  const { workflowId, runId } = workflowInfo();
  const now = () => new Date(Date.now()).toISOString();
  const childId = (node: string) => `${workflowId}/${node}`;

  const progress: MaintenanceProgress = {
    state: 'running',
    summary: '',
    current: [],
    nodes: details.turns.map((t) => newNodeReport(t.node, 'pending')),
    ignored: [],
  };
  const reportOf = (node: string) => progress.nodes.find((n) => n.node === node)!;
  /** Halts already decided (`node#id`): a report sent before the decision arrived must not reopen them. */
  const answered = new Set<string>();
  let pausing = false;
  let finished = false;
  let memo = '';

  const refresh = () => {
    const halted = progress.nodes.some((n) => n.state === 'halted');
    progress.state = finished
      ? 'finished'
      : progress.gate
        ? 'awaiting-node-approval'
        : halted
          ? 'halted'
          : pausing
            ? 'pausing'
            : 'running';
    progress.summary = summarize(progress, pausing);
    setCurrentDetails(progress.summary);
    // A memo update is a history event: only when a node's step or state changes, not per guest.
    const line = progress.nodes.map((n) => `${n.node}:${n.state}${n.step ? `/${n.step}` : ''}`).join(' ');
    if (line !== memo) {
      memo = line;
      upsertMemo({ progress: progress.summary });
    }
  };

  const accept = (incoming: NodeReport) => {
    const r =
      incoming.halted && answered.has(`${incoming.node}#${incoming.halted.id}`)
        ? { ...incoming, state: 'running' as const, halted: undefined }
        : incoming;
    progress.nodes[progress.nodes.findIndex((n) => n.node === r.node)] = r;
    for (const s of r.steps) {
      const id = nodeStepId(r.node, s.id as NodeStep);
      op.mark(id, s.state, s.detail);
      Object.assign(
        op.status.steps.find((e) => e.id === id)!,
        { startedAt: s.startedAt, endedAt: s.endedAt },
      );
    }
  };

  const audit = (event: string, actor: string, detail: Record<string, unknown>) =>
    CancellationScope.nonCancellable(() =>
      recordAudit({
        eventId: `${workflowId}/${runId}/${event}`,
        actor,
        action: `operation.${event.split('/')[1]}`,
        operationId: workflowId,
        kind: 'rolling-maintenance',
        environment: meta.environment,
        detail,
      }),
    );

  setHandler(maintenanceQuery, () => progress);
  setHandler(nodeReportSignal, (r) => {
    accept(r);
    refresh();
  });

  // Decisions about a halted node: forwarded to its workflow, which carries them out.
  const forward = async (
    action: MaintenanceAction,
    request: MaintenanceDecisionRequest,
  ): Promise<MaintenanceDecision> => {
    const r = reportOf(request.node);
    const decision: MaintenanceDecision = {
      by: request.by,
      node: request.node,
      ...(request.reason ? { reason: request.reason } : {}),
      action,
      at: now(),
      halt: r.halted!.id,
    };
    answered.add(`${r.node}#${decision.halt}`);
    Object.assign(r, { state: 'running', halted: undefined });
    refresh();
    await getExternalWorkflowHandle(childId(request.node)).signal(nodeDecisionSignal, decision);
    await audit(`${request.node}/${action}/${decision.halt}`, request.by, {
      node: request.node,
      ...(request.reason ? { reason: request.reason } : {}),
    });
    return decision;
  };
  for (const action of Object.keys(maintenanceDecisions) as MaintenanceAction[]) {
    const { update, signal } = maintenanceDecisions[action];
    setHandler(update, (request) => forward(action, request), {
      validator: (request) => {
        const why = decisionRefusal(progress, request);
        if (why) throw new Error(why);
      },
    });
    setHandler(signal, (request) => {
      const why = decisionRefusal(progress, request);
      if (why) progress.ignored.push({ by: request.by, node: request.node, what: action, why });
      else
        forward(action, request).catch((err: unknown) =>
          progress.ignored.push({ by: request.by, node: request.node, what: action, why: String(err) }),
        );
    });
  }

  // Per-node approval gates, validated like the plan's approval.
  let gateDecision: NodeApprovalDecision | undefined;
  const planFacts = { version: plan.version, risk: plan.risk, requester: meta.requester };
  const decideGate = (request: NodeApprovalRequest, decision: 'approved' | 'rejected'): NodeApprovalDecision => {
    gateDecision = {
      decision,
      by: request.by,
      at: now(),
      planVersion: request.planVersion,
      node: request.node,
      ...(request.reason ? { reason: request.reason } : {}),
    };
    progress.gate!.decided = { decision, by: request.by };
    return gateDecision;
  };
  for (const [update, signal, decision] of [
    [approveNodeUpdate, approveNodeSignal, 'approved'],
    [rejectNodeUpdate, rejectNodeSignal, 'rejected'],
  ] as const) {
    setHandler(update, (request) => decideGate(request, decision), {
      validator: (request) => {
        const why = nodeApprovalRefusal(progress, planFacts, request, decision);
        if (why) throw new Error(why);
      },
    });
    setHandler(signal, (request) => {
      const why = nodeApprovalRefusal(progress, planFacts, request, decision);
      if (why)
        progress.ignored.push({
          by: request.by,
          node: request.node,
          what: decision === 'approved' ? 'approve-node' : 'reject-node',
          why,
        });
      else decideGate(request, decision);
    });
  }

  /** The node's go-ahead; undefined when the operation was cancelled while waiting for it. */
  async function gate(node: string): Promise<NodeApprovalDecision | undefined> {
    reportOf(node).state = 'awaiting-approval';
    progress.gate = { node, planVersion: plan.version, since: now() };
    op.mark(nodeStepId(node, 'approval'), 'running');
    setApprovalState(op.status, 'pending');
    refresh();
    const expires = new Date(Date.now() + meta.approvalTimeoutMs).toISOString();
    const decided = await condition(() => gateDecision !== undefined || op.cancelled, meta.approvalTimeoutMs, {
      summary: `approval deadline for ${node}: rejected unless decided by ${expires}`,
    });
    delete progress.gate;
    reportOf(node).state = 'pending';
    if (gateDecision === undefined && op.cancelled) {
      setApprovalState(op.status, 'cancelled');
      op.mark(nodeStepId(node, 'approval'), 'skipped', 'the operation was cancelled before a decision');
      return undefined;
    }
    const d: NodeApprovalDecision = decided
      ? gateDecision!
      : {
          decision: 'rejected',
          by: 'system',
          at: now(),
          planVersion: plan.version,
          node,
          reason: `no decision within ${Math.round(meta.approvalTimeoutMs / 1000)} s`,
        };
    gateDecision = undefined;
    setApprovalState(op.status, d.decision === 'approved' ? 'approved' : d.by === 'system' ? 'expired' : 'rejected');
    op.mark(
      nodeStepId(node, 'approval'),
      d.decision === 'approved' ? 'succeeded' : 'failed',
      `${d.decision} by ${d.by}${d.reason ? `: ${d.reason}` : ''}`,
    );
    refresh();
    await audit(`${node}/node-${d.decision}`, d.by, {
      node,
      planVersion: d.planVersion,
      ...(d.reason ? { reason: d.reason } : {}),
    });
    return d;
  }

  let outcome: MaintenanceResult['outcome'] | undefined;
  let stoppedBecause: string | undefined;

  /** A group of nodes maintained together: their child workflows, and how the group ended. */
  interface Group {
    nodes: string[];
    done: Promise<void>;
    end?: PreviousGroupEnd;
    /** Nodes of the next group, emptied while this group's guests return: told when it ends. */
    followers: ChildWorkflowHandle<typeof maintainNode>[];
  }
  const tell = (followers: ChildWorkflowHandle<typeof maintainNode>[], end: PreviousGroupEnd) =>
    Promise.all(followers.map((h) => h.signal(previousGroupSignal, end)));

  /** Starts a group's nodes; when `previous` still returns its guests, they are emptied meanwhile. */
  function startGroup(batch: string[], previous: Group | undefined): Group {
    const overlaps =
      previous && !previous.end
        ? { nodes: previous.nodes, returning: previous.nodes.flatMap((n) => reportOf(n).away) }
        : undefined;
    const group: Group = { nodes: batch, followers: [], done: Promise.resolve() };
    progress.current = [...progress.current, ...batch];
    refresh();
    // Cancelled, each node finishes the step it is in and reports back (state `cancelled`).
    const reports = batch.map((node) =>
      op.cancellable(async () => {
        const child = await startChild(maintainNode, {
          workflowId: childId(node),
          staticSummary: `maintain ${node}`,
          args: [
            {
              environment: meta.environment,
              node,
              alongside: batch.filter((n) => n !== node),
              settings: details.settings,
              reportTo: workflowId,
              logKey: `${workflowId}/${runId}`,
              ...(details.runbook
                ? { runbook: { name: details.runbook.name, plan: details.runbook.plans[node]! } }
                : {}),
              ...(overlaps ? { overlaps } : {}),
            },
          ],
        });
        if (overlaps) {
          previous!.followers.push(child);
          if (previous!.end) await tell([child], previous!.end);
        }
        return child.result();
      }),
    );
    group.done = Promise.all(reports).then(async (ended) => {
      for (const r of ended) accept(r);
      progress.current = progress.current.filter((n) => !batch.includes(n));
      const aborted = ended.find((r) => r.state === 'aborted');
      const d = aborted?.decisions.at(-1);
      group.end = aborted
        ? {
            outcome: 'stopped',
            reason: `abort-and-return at ${aborted.node} by ${d?.by ?? 'unknown'}${d?.reason ? `: ${d.reason}` : ''}`,
          }
        : { outcome: 'finished' };
      refresh();
      await tell(group.followers, group.end);
    });
    return group;
  }

  /**
   * A node that is back and has its guests returning (or is done): the next group may be
   * emptied meanwhile. Not one told to abort-and-return: its rollout waits for it to end, and stops.
   */
  const returning = (node: string) => {
    const r = reportOf(node);
    if (r.decisions.some((d) => d.action === 'abort-and-return')) return false;
    return r.state === 'running' ? r.step === 'return' || r.step === 'verify' : ENDED.includes(r.state);
  };

  refresh();
  const cancelled = 'the operation was cancelled';
  const groups: Group[] = [];
  let previous: Group | undefined;
  rollout: for (const [index, batch] of details.batches.entries()) {
    if (previous) {
      const before = previous;
      if (details.turns.find((t) => t.node === batch[0])!.overlaps) {
        await condition(() => before.end !== undefined || before.nodes.every(returning) || op.cancelled);
      } else {
        await before.done;
      }
      if (before.end?.outcome === 'stopped') break;
    }
    if (op.cancelled) {
      stoppedBecause = cancelled;
      break;
    }
    if (index > 0 && details.pauseBetweenNodesMs > 0) {
      pausing = true;
      refresh();
      await condition(() => op.cancelled, details.pauseBetweenNodesMs, { summary: `pause before ${batch.join(', ')}` });
      pausing = false;
      if (op.cancelled) {
        stoppedBecause = cancelled;
        break;
      }
    }
    if (details.approveEachNode) {
      for (const node of batch) {
        const d = await gate(node);
        if (!d) {
          stoppedBecause = cancelled;
          break rollout;
        }
        if (d.decision === 'rejected') {
          outcome = 'stopped';
          stoppedBecause = `${node} was not approved by ${d.by}${d.reason ? `: ${d.reason}` : ''}`;
          break rollout;
        }
      }
    }
    previous = startGroup(batch, previous);
    groups.push(previous);
  }
  // The groups still running end on their own (a stopped one stops its followers).
  await Promise.all(groups.map((g) => g.done));
  const stopped = progress.nodes.find((r) => r.state === 'aborted');
  if (op.cancelled) stoppedBecause ??= cancelled;
  else if (stopped && !outcome) {
    const d =
      stopped.decisions.find((x) => x.action === 'abort-and-return' && x.by !== 'rollout') ?? stopped.decisions.at(-1);
    outcome = 'aborted';
    stoppedBecause = `abort-and-return at ${stopped.node} by ${d?.by ?? 'unknown'}${d?.reason ? `: ${d.reason}` : ''}`;
  }

  for (const r of progress.nodes) {
    if (r.state !== 'pending' && r.state !== 'awaiting-approval') continue;
    r.state = 'not-started';
    for (const s of plan.steps)
      if (s.node === r.node && s.id.startsWith(`${r.node}/`)) op.mark(s.id, 'skipped', stoppedBecause);
  }
  finished = true;
  refresh();
  op.throwIfCancelled('the rest of the rolling maintenance');
  outcome ??= progress.nodes.some((r) => r.state === 'skipped') ? 'completed-with-skips' : 'completed';
  return {
    outcome,
    nodes: progress.nodes,
    durationMs: Date.now() - began,
    ...(stoppedBecause ? { stoppedBecause } : {}),
  };
}

/** A node in one of these states runs no more steps, and its rollout goes on (an aborted one stops it). */
const ENDED: readonly NodeReport['state'][] = ['maintained', 'skipped', 'cancelled'];

/** Where the rollout stands, in one line: done, current (or halted, with the guests away and the choices), next. */
function summarize(p: MaintenanceProgress, pausing: boolean): string {
  const names = (state: NodeReport['state']) => p.nodes.filter((n) => n.state === state).map((n) => n.node);
  const done = [...names('maintained'), ...names('skipped').map((n) => `${n} (skipped)`)];
  const next = names('pending');
  const parts: string[] = [];
  const halted = p.nodes.find((n) => n.state === 'halted');
  if (halted?.halted) {
    const away = halted.away.map((g) => `${g.vmid} ${g.name} on ${g.at}`);
    parts.push(
      `HALTED at ${halted.node} (${halted.halted.step}): ${halted.halted.error}`,
      away.length
        ? `${away.length} guest(s) away from ${halted.node}: ${away.join(', ')}`
        : `no guest away from ${halted.node}`,
      `decide: resume | skip-node | abort-and-return`,
    );
  } else if (p.gate) {
    parts.push(`waiting for approval to start on ${p.gate.node}`);
  } else if (pausing) {
    parts.push(`pausing before ${next[0] ?? 'the next node'}`);
  } else {
    for (const n of p.nodes.filter((x) => x.state === 'running')) {
      parts.push(`${n.node}: ${n.step ?? 'starting'} (${n.moved} moved off, ${n.returned} back)`);
    }
  }
  if (done.length) parts.push(`done: ${done.join(', ')}`);
  if (next.length) parts.push(`next: ${next.join(', ')}`);
  const aborted = names('aborted');
  if (aborted.length) parts.push(`aborted at ${aborted.join(', ')}`);
  return parts.join(' — ') || 'finished';
}
