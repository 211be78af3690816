/**
 * What a rolling maintenance adds to every operation's plan, approval and status
 * (workflows/definitions.ts): its progress node by node, the optional per-node approval
 * gates, and the decisions a halted node waits for — resume, skip the node, or bring its
 * guests back and stop. One place for their names and their validation, shared by the
 * workflows, the API and the tests; the parent and node workflows talk through the two
 * signals at the end.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { AwayGuest, RebootOutcome, UpgradeOutcome } from '../lib/maintenance/node-outcomes.js';
import type { NodeStep } from '../lib/maintenance/plan.js';
import type { ApprovalDecision, ApprovalRequest, Risk, StepProgress } from '../lib/operations/plan.js';

export type NodeState =
  | 'pending'
  | 'awaiting-approval'
  | 'running'
  | 'halted'
  | 'maintained'
  | 'skipped'
  | 'aborted'
  /** Its rollout was cancelled: the step it was in ran to its end, no other started. */
  | 'cancelled'
  | 'not-started';

export type MaintenanceAction = 'resume' | 'skip-node' | 'abort-and-return';

/** Why a node stopped, and what each decision would do about it. */
export interface HaltReport {
  /** Numbers the node's halts: a decision names the one it answers. */
  id: number;
  step: NodeStep;
  error: string;
  at: string;
  options: Record<MaintenanceAction, string>;
}

/** One node's maintenance as it stands; the node workflow sends it to the rollout on every change. */
export interface NodeReport {
  node: string;
  state: NodeState;
  /** The step running (or halted). */
  step?: NodeStep;
  steps: StepProgress[];
  /** Guests moved off the node and not back (yet). */
  away: AwayGuest[];
  /** The previous group, whose guests were returning while this node was emptied. */
  overlapped?: string[];
  /** Guests that left the node, and those that came back. */
  moved: number;
  returned: number;
  /** Guests that could not come back, where they are, and why. */
  notReturned: { vmid: number; name: string; at: string; reason: string }[];
  upgrade?: UpgradeOutcome;
  /** The runbook run on the node, step by step. */
  runbook?: { name: string; steps: StepProgress[] };
  reboot?: RebootOutcome;
  halted?: HaltReport;
  decisions: MaintenanceDecision[];
  warnings: string[];
  startedAt?: string;
  endedAt?: string;
}

/** A node's report before anything has happened on it. */
export function newNodeReport(node: string, state: NodeState): NodeReport {
  return { node, state, steps: [], away: [], moved: 0, returned: 0, notReturned: [], decisions: [], warnings: [] };
}

export interface MaintenanceProgress {
  state: 'running' | 'awaiting-node-approval' | 'halted' | 'pausing' | 'finished';
  /** Where the rollout is, or why it waits, in one line. */
  summary: string;
  /** Nodes being maintained now. */
  current: string[];
  /** Every node of the rollout, in order. */
  nodes: NodeReport[];
  /** The per-node approval awaited, if any. */
  gate?: {
    node: string;
    planVersion: number;
    since: string;
    decided?: { decision: 'approved' | 'rejected'; by: string };
  };
  /** Decisions and approvals sent as signals that changed nothing, and why. */
  ignored: { by: string; node: string; what: string; why: string }[];
}

export interface MaintenanceResult {
  outcome: 'completed' | 'completed-with-skips' | 'aborted' | 'stopped';
  nodes: NodeReport[];
  durationMs: number;
  stoppedBecause?: string;
}

/** A decision about a halted node, naming the node so a late or misdirected request changes nothing. */
export interface MaintenanceDecisionRequest {
  by: string;
  node: string;
  reason?: string;
}

export interface MaintenanceDecision extends MaintenanceDecisionRequest {
  action: MaintenanceAction;
  at: string;
  /** The halt it answers: a decision never carries over to a later halt. */
  halt: number;
}

export interface NodeApprovalRequest extends ApprovalRequest {
  node: string;
}

export type NodeApprovalDecision = ApprovalDecision & { node: string };

/**
 * Like the plan's approval, each decision is an Update (answered at once, refusals included)
 * and a Signal (for when no worker runs), validated the same way.
 */
export const maintenanceDecisions = {
  resume: {
    update: defineUpdate<MaintenanceDecision, [MaintenanceDecisionRequest]>('resume'),
    signal: defineSignal<[MaintenanceDecisionRequest]>('resume-signal'),
  },
  'skip-node': {
    update: defineUpdate<MaintenanceDecision, [MaintenanceDecisionRequest]>('skip-node'),
    signal: defineSignal<[MaintenanceDecisionRequest]>('skip-node-signal'),
  },
  'abort-and-return': {
    update: defineUpdate<MaintenanceDecision, [MaintenanceDecisionRequest]>('abort-and-return'),
    signal: defineSignal<[MaintenanceDecisionRequest]>('abort-and-return-signal'),
  },
} as const satisfies Record<MaintenanceAction, unknown>;

export const approveNodeUpdate = defineUpdate<NodeApprovalDecision, [NodeApprovalRequest]>('approve-node');
export const rejectNodeUpdate = defineUpdate<NodeApprovalDecision, [NodeApprovalRequest]>('reject-node');
export const approveNodeSignal = defineSignal<[NodeApprovalRequest]>('approve-node-signal');
export const rejectNodeSignal = defineSignal<[NodeApprovalRequest]>('reject-node-signal');

export const maintenanceQuery = defineQuery<MaintenanceProgress>('maintenance');

/** Node workflow -> rollout: the node's report, whole, after every change. */
export const nodeReportSignal = defineSignal<[NodeReport]>('maintenance-node-report');
/** Rollout -> node workflow: the operator's decision about the halted node. */
export const nodeDecisionSignal = defineSignal<[MaintenanceDecision]>('maintenance-node-decision');

/** How the previous group of nodes ended, for a node emptied while its guests returned. */
export interface PreviousGroupEnd {
  /** `stopped`: the rollout stops there (abort-and-return), and so does this node. */
  outcome: 'finished' | 'stopped';
  reason?: string;
}

/** Rollout -> node workflow that overlaps the previous group: that group has ended. */
export const previousGroupSignal = defineSignal<[PreviousGroupEnd]>('maintenance-previous-group');

/** Why a decision request changes nothing, or undefined when it may be carried out. */
export function decisionRefusal(
  progress: MaintenanceProgress,
  request: MaintenanceDecisionRequest,
): string | undefined {
  const node = progress.nodes.find((n) => n.node === request.node);
  if (!node)
    return `${request.node} is not a node of this rolling maintenance (${progress.nodes.map((n) => n.node).join(', ')})`;
  if (node.state !== 'halted')
    return `${request.node} is not halted (it is ${node.state}); only a halted node takes a decision`;
  return undefined;
}

/**
 * Why a per-node approval changes nothing: the same rules as the plan's approval — the plan
 * version it names, no self-approval of a high-risk plan, a reason for a rejection — and it
 * must name the node whose gate is open.
 */
export function nodeApprovalRefusal(
  progress: MaintenanceProgress,
  plan: { version: number; risk: Risk; requester: string },
  request: NodeApprovalRequest,
  decision: 'approved' | 'rejected',
): string | undefined {
  const gate = progress.gate;
  if (!gate) return 'no node is waiting for approval';
  if (request.node !== gate.node) return `names ${request.node}, but the node waiting for approval is ${gate.node}`;
  if (gate.decided) return `already ${gate.decided.decision} by ${gate.decided.by}`;
  if (request.planVersion !== plan.version) {
    return `names plan version ${request.planVersion}, but the approved plan is version ${plan.version}`;
  }
  if (decision === 'approved' && plan.risk === 'high' && request.by === plan.requester) {
    return 'a high-risk operation cannot be approved by the actor who requested it';
  }
  if (decision === 'rejected' && !request.reason?.trim()) return 'a rejection needs a reason';
  return undefined;
}
