/**
 * Plan -> approve -> apply, the one mechanism every state-changing workflow goes through.
 *
 *   return runOperation('vm-action', input.meta, {
 *     plan: () => activities.planVmAction(input),
 *     apply: (plan, op) => ...,
 *   });
 *
 * The plan is computed once (in an activity, from one inventory snapshot) and recorded in
 * history; nothing is applied unless it is approved — by a person, or by the configured
 * policy for low-risk plans — before the deadline. Every decision and the final outcome go
 * to the audit log.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  isCancellation,
  patched,
  rootCause,
  setCurrentDetails,
  setHandler,
  upsertMemo,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import { notStarted, watchCancellation, type Cancellation } from './cancellation.js';
import type {
  ApprovalDecision,
  ApprovalRequest,
  ApprovalState,
  CancellationReport,
  OperationMeta,
  OperationOutcome,
  OperationPlan,
  OperationStatus,
  PlanDraft,
  PublishedStatus,
  StepProgress,
} from '../lib/operations/plan.js';
import { approveSignal, approveUpdate, rejectSignal, rejectUpdate, statusMemo, statusQuery } from './definitions.js';
import {
  PmApprovalState,
  PmEnvironment,
  PmNodes,
  PmOperationKind,
  PmRequester,
  PmRisk,
  PmVmids,
} from './search-attributes.js';
import { Failure } from '../lib/operations/failures.js';
import { reads, records } from './activity-presets.js';

const { recordAudit } = records({ startToCloseTimeout: '30 seconds' });

const { verifyApprovalSignature } = reads({ startToCloseTimeout: '30 seconds', maximumAttempts: 10 });

export interface OperationResult<D, R> {
  outcome: Exclude<OperationOutcome, 'failed' | 'cancelled'>;
  plan: OperationPlan<D>;
  approval?: ApprovalDecision;
  result?: R;
}

/** Handle given to `apply`: report progress per plan step. */
export interface OperationHandle {
  readonly status: OperationStatus;
  /** Runs `fn` as step `id`, recording when it started and how it ended. */
  step<T>(id: string, fn: () => Promise<T>, options?: StepOptions): Promise<T>;
  /**
   * Marks a step without running anything (skipped, or run elsewhere, e.g. by a child
   * workflow); `at` is when it started (state `running`) or ended.
   */
  mark(id: string, state: StepProgress['state'], detail?: string, at?: string): void;
  /** Set once the operation was asked to cancel: `step` starts nothing new from then on. */
  readonly cancelled: boolean;
  /**
   * Runs `fn` in a scope the operation's cancellation cancels: a child workflow (which stops
   * starting work and finishes what runs) or a pause. Everything else in `apply` runs to its
   * end when the operation is cancelled.
   */
  cancellable<T>(fn: () => Promise<T>): Promise<T>;
  /** Ends `apply` as cancelled, once what was running has ended. */
  throwIfCancelled(what: string): void;
}

/** Options of one `step`. */
export interface StepOptions {
  /** Undoes what the operation built (a saga's cleanup): runs even after a cancel request. */
  undo?: boolean;
}

export async function runOperation<D, R>(
  kind: string,
  meta: OperationMeta,
  spec: {
    plan: () => Promise<PlanDraft<D>>;
    apply: (plan: OperationPlan<D>, op: OperationHandle) => Promise<R>;
  },
): Promise<OperationResult<D, R>> {
  const status: OperationStatus = {
    phase: 'planning',
    requester: meta.requester,
    environment: meta.environment,
    dryRun: meta.dryRun,
    approvalState: 'planning',
    steps: [],
    ignoredApprovals: [],
  };
  setHandler(statusQuery, () => status);
  registerApprovalHandlers(status);
  upsertSearchAttributes([
    { key: PmOperationKind, value: kind },
    { key: PmEnvironment, value: meta.environment },
    { key: PmRequester, value: meta.requester },
    { key: PmApprovalState, value: 'planning' },
  ]);
  setCurrentDetails('planning');
  const cancellation = watchCancellation(() => {
    status.cancelRequestedAt = new Date(Date.now()).toISOString();
    if (status.phase === 'applying') showApplying(status);
  });

  const audit = (event: string, detail: Record<string, unknown> = {}) =>
    CancellationScope.nonCancellable(() =>
      recordAudit.executeWithOptions({ summary: `audit operation.${event}` }, [
        {
          eventId: `${workflowInfo().workflowId}/${workflowInfo().runId}/${event}`,
          actor: event === 'approved' || event === 'rejected' ? (status.approval?.by ?? 'system') : meta.requester,
          action: `operation.${event}`,
          operationId: workflowInfo().workflowId,
          kind,
          environment: meta.environment,
          detail,
        },
      ]),
    );

  try {
    const { draft, refused } = await planOrRefusal(spec.plan, meta.dryRun);
    const plan: OperationPlan<D> = { ...draft, version: 1 };
    status.plan = plan;
    status.steps = plan.steps.map((s) => ({ id: s.id, state: 'pending' }));
    upsertSearchAttributes([
      { key: PmRisk, value: plan.risk },
      { key: PmNodes, value: plan.nodes },
      { key: PmVmids, value: vmidsThatFit(plan.vmids) },
    ]);
    upsertMemo({ summary: plan.summary });

    if (meta.dryRun) {
      status.phase = 'completed';
      status.outcome = refused ? 'refused' : 'dry-run';
      setApprovalState(status, 'dry-run');
      setCurrentDetails(`dry run${refused ? '' : ', planned'}: ${plan.summary}`);
      return { outcome: refused ? 'refused' : 'dry-run', plan };
    }

    // A plan without steps changes nothing, so there is nothing to approve: apply only reports.
    let approval: ApprovalDecision | undefined;
    if (plan.steps.length === 0) {
      setApprovalState(status, 'not-required');
    } else {
      approval = await awaitDecision(status, plan, meta);
      status.approval = approval;
      setApprovalState(status, decidedState(approval));
      await audit(approval.decision, { by: approval.by, planVersion: approval.planVersion, reason: approval.reason });
      if (approval.decision === 'rejected') {
        status.phase = 'rejected';
        status.outcome = 'rejected';
        publishStatus(status);
        setCurrentDetails(
          `${status.approvalState}: ${approval.reason ?? `rejected by ${approval.by}`} — ${plan.summary}`,
        );
        return { outcome: 'rejected', plan, approval };
      }
    }

    status.phase = 'applying';
    showApplying(status);
    // The PVE work `apply` sends is followed to its end even when the operation is cancelled.
    const result = await CancellationScope.nonCancellable(() => spec.apply(plan, handleFor(status, cancellation)));
    status.phase = 'completed';
    const outcome = plan.steps.length === 0 ? 'nothing-to-do' : 'completed';
    status.outcome = outcome;
    publishStatus(status);
    setCurrentDetails(`${outcome === 'nothing-to-do' ? 'nothing to do' : 'done'}: ${plan.summary}`);
    await audit('completed', { steps: summarizeSteps(status.steps) });
    return { outcome, plan, approval, result };
  } catch (err) {
    const cancelled = isCancellation(err) && cancellation.requested;
    status.phase = cancelled ? 'cancelled' : 'failed';
    status.outcome = status.phase;
    status.error = rootCause(err) ?? String(err);
    if (cancelled) {
      status.cancelled = cancellationReport(status);
      if (status.approvalState === 'planning' || status.approvalState === 'pending')
        setApprovalState(status, 'cancelled');
      publishStatus(status);
      setCurrentDetails(describeCancellation(status.cancelled));
      await audit('cancelled', { ...status.cancelled });
      throw err;
    }
    publishStatus(status);
    setCurrentDetails(`failed: ${status.error}`);
    await audit('failed', { error: status.error, steps: summarizeSteps(status.steps) });
    // Fail with what actually went wrong ("VM 101 is named ..."), not "Activity task failed".
    throw ApplicationFailure.create({
      type: Failure.OperationFailed,
      message: status.error,
      nonRetryable: true,
      cause: err as Error,
    });
  }
}

/**
 * The plan; for a dry run, a refusal is its answer too: a plan without steps whose reasons say
 * why, so the dry run completes with it instead of failing.
 */
async function planOrRefusal<D>(
  plan: () => Promise<PlanDraft<D>>,
  dryRun: boolean,
): Promise<{ draft: PlanDraft<D>; refused: boolean }> {
  try {
    return { draft: await plan(), refused: false };
  } catch (err) {
    const refusal =
      err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.nonRetryable
        ? err.cause
        : undefined;
    if (!dryRun || !refusal) throw err;
    const draft: PlanDraft<D> = {
      summary: `refused: ${refusal.message}`,
      risk: 'low',
      reasons: [refusal.message],
      steps: [],
      warnings: [],
      nodes: [],
      vmids: [],
      estimatedDurationMs: 0,
    };
    return { draft, refused: true };
  }
}

function decidedState(approval: ApprovalDecision): ApprovalState {
  if (approval.decision === 'approved') return approval.by === 'policy' ? 'auto-approved' : 'approved';
  return approval.by === 'system' ? 'expired' : 'rejected';
}

/** Every step that has not started ends skipped; the report lists what ran and what did not. */
function cancellationReport(status: OperationStatus): CancellationReport {
  for (const s of status.steps) {
    if (s.state === 'pending')
      Object.assign(s, { state: 'skipped', detail: 'not started: the operation was cancelled' });
  }
  const ids = (...states: StepProgress['state'][]) =>
    status.steps.filter((s) => states.includes(s.state)).map((s) => s.id);
  return {
    requestedAt: status.cancelRequestedAt ?? new Date(Date.now()).toISOString(),
    done: ids('succeeded'),
    failed: ids('failed', 'running'),
    notStarted: ids('skipped'),
  };
}

function describeCancellation(r: CancellationReport): string {
  return `cancelled: ${r.done.length} step(s) done, ${r.failed.length} failed, ${r.notStarted.length} not started`;
}

/** "applying 3/11 (2 running)", and whether a cancel is waiting for those to end. */
function showApplying(status: OperationStatus): void {
  const count = (state: StepProgress['state']) => status.steps.filter((s) => s.state === state).length;
  const ended = count('succeeded') + count('failed') + count('skipped');
  const running = count('running');
  const cancelling = status.cancelRequestedAt
    ? `; cancelling: ${running > 0 ? 'waiting for the running steps to end' : 'starting nothing new'}`
    : '';
  setCurrentDetails(
    `applying ${ended}/${status.steps.length} (${running} running${cancelling}) — ${status.plan?.summary ?? ''}`,
  );
  publishStatus(status);
}

/** The last memo each status published, so an unchanged status publishes nothing. */
const published = new WeakMap<OperationStatus, string>();

/**
 * Publishes what the API shows (`PublishedStatus`, memo `status`) when it changed. Behind a
 * patch: histories recorded before it have no memo commands at these points.
 */
export function publishStatus(status: OperationStatus): void {
  const view = publishedView(status);
  const json = JSON.stringify(view);
  if (published.get(status) === json || !patched('publish-status')) return;
  published.set(status, json);
  upsertMemo({ [statusMemo]: view });
}

/** An error message longer than this is cut in the memo (the status query has all of it). */
const maxPublishedError = 1000;

function publishedView(status: OperationStatus): PublishedStatus {
  const { phase, approvalState, plan, approval, outcome, error, cancelRequestedAt, cancelled } = status;
  const progress: PublishedStatus['progress'] = { pending: 0, running: 0, succeeded: 0, failed: 0, skipped: 0 };
  for (const s of status.steps) progress[s.state]++;
  return {
    phase,
    approvalState,
    ...(plan
      ? { plan: { version: plan.version, summary: plan.summary, risk: plan.risk, stepCount: plan.steps.length } }
      : {}),
    progress,
    ...(approval ? { approval } : {}),
    ...(outcome ? { outcome } : {}),
    ...(error ? { error: error.length > maxPublishedError ? `${error.slice(0, maxPublishedError)}…` : error } : {}),
    ...(cancelRequestedAt ? { cancelRequestedAt } : {}),
    ...(cancelled ? { cancelled } : {}),
  };
}

/**
 * Temporal caps a search attribute value at 2 KiB: a 500-VM evacuation lists the VMIDs that
 * fit (the plan itself, readable by query, always has all of them).
 */
function vmidsThatFit(vmids: number[], budgetBytes = 2000): string[] {
  const kept: string[] = [];
  let used = 2;
  for (const vmid of vmids) {
    used += String(vmid).length + 3;
    if (used > budgetBytes) break;
    kept.push(String(vmid));
  }
  return kept;
}

/** One place sets the approval state: the search attribute, the published status and the status query agree. */
export function setApprovalState(status: OperationStatus, state: ApprovalState): void {
  status.approvalState = state;
  upsertSearchAttributes([{ key: PmApprovalState, value: state }]);
  publishStatus(status);
}

function summarizeSteps(steps: StepProgress[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const s of steps) counts[s.state] = (counts[s.state] ?? 0) + 1;
  return counts;
}

async function awaitDecision<D>(
  status: OperationStatus,
  plan: OperationPlan<D>,
  meta: OperationMeta,
): Promise<ApprovalDecision> {
  const now = () => new Date(Date.now()).toISOString();
  if (plan.risk !== 'high' && meta.autoApprove.includes(plan.risk)) {
    return { decision: 'approved', by: 'policy', at: now(), planVersion: plan.version, reason: `${plan.risk} risk` };
  }
  status.phase = 'awaiting-approval';
  setApprovalState(status, 'pending');
  const expires = new Date(Date.now() + meta.approvalTimeoutMs).toISOString();
  const who = plan.risk === 'high' ? `an approver other than ${meta.requester}` : 'an approver';
  setCurrentDetails(
    `awaiting approval by ${who} (plan v${plan.version}, ${plan.risk} risk, expires at ${expires}) — ${plan.summary}`,
  );
  const decided = await condition(() => status.approval !== undefined, meta.approvalTimeoutMs, {
    summary: `approval deadline for plan v${plan.version}: rejected unless decided by ${expires}`,
  });
  if (decided) return status.approval!;
  return {
    decision: 'rejected',
    by: 'system',
    at: now(),
    planVersion: plan.version,
    reason: `no decision within ${Math.round(meta.approvalTimeoutMs / 1000)} s`,
  };
}

/** Why an approval request changes nothing, or undefined when it may decide the plan. */
export function refusalReason(
  status: OperationStatus,
  request: ApprovalRequest,
  decision: 'approved' | 'rejected',
): string | undefined {
  if (status.approval) return `already ${status.approval.decision} by ${status.approval.by}`;
  if (status.phase !== 'awaiting-approval') return `no decision is pending (operation is ${status.phase})`;
  const plan = status.plan!;
  if (request.planVersion !== plan.version) {
    return `names plan version ${request.planVersion}, but the plan awaiting a decision is version ${plan.version}`;
  }
  if (decision === 'approved' && plan.risk === 'high' && request.by === status.requester) {
    return 'a high-risk operation cannot be approved by the actor who requested it';
  }
  if (decision === 'rejected' && !request.reason?.trim()) return 'a rejection needs a reason';
  return undefined;
}

/**
 * Updates answer a refusal at once; signals record it in the status. Either way a decision
 * counts only after the worker has checked the API's signature on it (an activity: the key
 * never enters the workflow), and the rules are checked again after that wait, in case
 * another decision landed meanwhile. A decision whose signature fails is audited as refused.
 */
function registerApprovalHandlers(status: OperationStatus): void {
  let refusals = 0;
  const decide = async (request: ApprovalRequest, decision: 'approved' | 'rejected'): Promise<ApprovalDecision> => {
    const { workflowId, runId } = workflowInfo();
    const fields = {
      operationId: workflowId,
      decision,
      by: request.by,
      planVersion: request.planVersion,
      at: request.at ?? '',
      reason: request.reason,
    };
    const verdict = await verifyApprovalSignature({
      fields,
      ...(request.signature ? { signature: request.signature } : {}),
    });
    const why = verdict.ok ? refusalReason(status, request, decision) : `refused: ${verdict.why}`;
    if (why) {
      if (!verdict.ok) {
        await recordAudit({
          eventId: `${workflowId}/${runId}/approval-refused/${++refusals}`,
          actor: request.by,
          action: 'operation.approval-refused',
          operationId: workflowId,
          environment: status.environment,
          detail: { decision, planVersion: request.planVersion, why: verdict.why },
        });
      }
      throw ApplicationFailure.create({ type: Failure.DecisionRefused, message: why, nonRetryable: true });
    }
    status.approval = {
      decision,
      by: request.by,
      at: new Date(Date.now()).toISOString(),
      planVersion: request.planVersion,
      reason: request.reason,
    };
    return status.approval;
  };
  const validator = (decision: 'approved' | 'rejected') => (request: ApprovalRequest) => {
    const why = refusalReason(status, request, decision);
    if (why) throw new Error(why);
  };
  const fromSignal = (decision: 'approved' | 'rejected') => async (request: ApprovalRequest) => {
    const why = refusalReason(status, request, decision);
    if (why) {
      status.ignoredApprovals.push({ by: request.by, planVersion: request.planVersion, why });
      return;
    }
    await decide(request, decision).catch((err: unknown) => {
      status.ignoredApprovals.push({ by: request.by, planVersion: request.planVersion, why: (err as Error).message });
    });
  };
  setHandler(approveUpdate, (r) => decide(r, 'approved'), { validator: validator('approved') });
  setHandler(rejectUpdate, (r) => decide(r, 'rejected'), { validator: validator('rejected') });
  setHandler(approveSignal, fromSignal('approved'));
  setHandler(rejectSignal, fromSignal('rejected'));
}

function handleFor(status: OperationStatus, cancellation: Cancellation): OperationHandle {
  const progress = (id: string): StepProgress => {
    let entry = status.steps.find((s) => s.id === id);
    if (!entry) {
      entry = { id, state: 'pending' };
      status.steps.push(entry);
    }
    return entry;
  };
  const now = () => new Date(Date.now()).toISOString();
  return {
    status,
    async step(id, fn, options = {}) {
      const entry = progress(id);
      if (cancellation.requested && !options.undo) {
        Object.assign(entry, { state: 'skipped', detail: 'not started: the operation was cancelled' });
        throw notStarted(id);
      }
      entry.state = 'running';
      entry.startedAt = now();
      showApplying(status);
      try {
        const value = await fn();
        entry.state = 'succeeded';
        return value;
      } catch (err) {
        entry.state = 'failed';
        entry.detail = err instanceof Error ? err.message : String(err);
        throw err;
      } finally {
        entry.endedAt = now();
        showApplying(status);
      }
    },
    mark(id, state, detail, at) {
      const entry = progress(id);
      entry.state = state;
      if (detail !== undefined) entry.detail = detail;
      if (at !== undefined) entry[state === 'running' ? 'startedAt' : 'endedAt'] = at;
      showApplying(status);
    },
    get cancelled() {
      return cancellation.requested;
    },
    cancellable: (fn) => cancellation.cancellable(fn),
    throwIfCancelled: (what) => cancellation.throwIfRequested(what),
  };
}
