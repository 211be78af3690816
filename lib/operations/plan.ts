/**
 * The plan vocabulary every operation shares: what a plan states, the approval it waits for,
 * and the status an operation reports. Types only, so planners in lib/, activities, the API
 * and the workflows all speak it without importing one another.
 */
export type Risk = 'low' | 'medium' | 'high';

/** Who asked, where, and under which approval policy. Set by the API from the caller's token. */
export interface OperationMeta {
  requester: string;
  environment: string;
  dryRun: boolean;
  /** How long a plan waits for a decision before the operation ends as rejected. */
  approvalTimeoutMs: number;
  /** Risk levels the configured policy approves without a person. `high` never is. */
  autoApprove: Risk[];
}

/** One thing the operation will do, stated precisely enough to approve. */
export interface PlanStep {
  id: string;
  action: string;
  vmid?: number;
  name?: string;
  node?: string;
  target?: string;
  description: string;
  /** The exact parameters the step sends to PVE, so an approver sees what will happen. */
  params?: Record<string, string | number | boolean>;
  estimatedMs?: number;
}

export interface OperationPlan<Details = unknown> {
  /** Increases when the plan is recomputed; an approval names the version it approves. */
  version: number;
  summary: string;
  risk: Risk;
  /** Why the plan carries that risk. */
  reasons: string[];
  steps: PlanStep[];
  /** Things the plan will not do, and why (unplaceable VMs, skipped guests). */
  warnings: string[];
  nodes: string[];
  vmids: number[];
  estimatedDurationMs: number;
  details?: Details;
}

/** A plan as an activity proposes it; the workflow numbers its versions. */
export type PlanDraft<D> = Omit<OperationPlan<D>, 'version'>;

export interface ApprovalRequest {
  /** The actor, as authenticated by the API from its bearer token. */
  by: string;
  planVersion: number;
  reason?: string;
  /** When the API signed it (lib/approvals/signature.ts). */
  at?: string;
  /** The API's HMAC over the decision; a decision without a valid one changes nothing. */
  signature?: string;
}

export interface ApprovalDecision {
  decision: 'approved' | 'rejected';
  by: string;
  at: string;
  planVersion: number;
  reason?: string;
}

export type OperationPhase =
  'planning' | 'awaiting-approval' | 'applying' | 'completed' | 'rejected' | 'failed' | 'cancelled';

/**
 * Where the plan's approval stands, as the PmApprovalState search attribute and the status
 * query both say: `expired` when no decision came before the deadline, `cancelled` when the
 * operation was cancelled before one did.
 */
export type ApprovalState =
  | 'planning'
  | 'pending'
  | 'approved'
  | 'auto-approved'
  | 'not-required'
  | 'rejected'
  | 'expired'
  | 'cancelled'
  | 'dry-run';

/** What a cancelled operation did before it stopped, and what it left undone (step ids). */
export interface CancellationReport {
  requestedAt: string;
  /** Steps that ended as they should; `failed` ones ended otherwise. */
  done: string[];
  failed: string[];
  /** Steps never started. */
  notStarted: string[];
}

export interface StepProgress {
  id: string;
  state: 'pending' | 'running' | 'succeeded' | 'failed' | 'skipped';
  detail?: string;
  startedAt?: string;
  endedAt?: string;
}

export interface OperationStatus {
  phase: OperationPhase;
  requester: string;
  environment: string;
  dryRun: boolean;
  /** Read together with phase and plan, so an answer never mixes two moments. */
  approvalState: ApprovalState;
  plan?: OperationPlan;
  approval?: ApprovalDecision;
  steps: StepProgress[];
  /** Approval attempts that changed nothing (duplicates, stale plan versions, self-approval). */
  ignoredApprovals: { by: string; planVersion: number; why: string }[];
  error?: string;
  /** When the operation was asked to cancel; once it has ended cancelled, what it did and did not do. */
  cancelRequestedAt?: string;
  cancelled?: CancellationReport; /** How it ended, once it has. */
  outcome?: OperationOutcome;
}

/**
 * How an operation ended. `nothing-to-do`: the plan has no steps (nothing needed approving);
 * `refused`: a dry run whose plan was refused — its plan has no steps and its reasons say why.
 */
export type OperationOutcome =
  'completed' | 'nothing-to-do' | 'rejected' | 'dry-run' | 'refused' | 'failed' | 'cancelled';

/**
 * What `GET /v1/operations/{id}` shows, published by the workflow as its memo `status`
 * (`statusMemo` in workflows/definitions.ts) whenever it changes, so the API reads it with one
 * describe — no worker, no query — and every field comes from the same moment. Small and free
 * of secrets: the plan only as its headline and step count (the whole plan is the status
 * query's), progress as counts per step state.
 */
export interface PublishedStatus {
  phase: OperationPhase;
  approvalState: ApprovalState;
  plan?: { version: number; summary: string; risk: Risk; stepCount: number };
  progress: Record<StepProgress['state'], number>;
  approval?: ApprovalDecision;
  outcome?: OperationOutcome;
  error?: string;
  cancelRequestedAt?: string;
  cancelled?: CancellationReport;
}
