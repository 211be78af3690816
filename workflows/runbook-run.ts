/**
 * Any runbook, run as a saga: plan (parameters, facts, every step checked) -> approve ->
 * run the steps in order; when one fails, run the cleanup of every completed step in
 * reverse order (unless the operator asked to keep things for debugging), and fail naming
 * the step and why.
 */
import { ApplicationFailure, isCancellation } from '@temporalio/workflow';
import type { RunbookPlanDetails, RunStepRequest, StepOutcome } from '../activities/runbook.js';
import type { RunbookRunInput } from '../lib/operations/catalog.js';
import type { ResolvedCleanup, ResolvedStep, RunbookPlan } from '../lib/runbooks/plan.js';
import type { Value } from '../lib/runbooks/placeholders.js';
import { failureMessage, taskSummary } from './guest-step.js';
import { runOperation, type OperationHandle } from './operation.js';
import { Failure } from '../lib/operations/failures.js';
import { reads, waits } from './activity-presets.js';

const planning = reads();

/** Waiting on a PVE task only reads it: safe to repeat. */
const waiting = waits();

/**
 * How a step is dispatched. Reads may be retried; a call that changes something is retried
 * only when the activity says repeating it is safe (PVE was not reached, a lock was busy);
 * destructive calls, commands and playbooks are never sent twice by a retry.
 */
function stepActivities(step: ResolvedStep) {
  const once = step.kind !== 'api' || step.destructive;
  return waits({
    startToCloseTimeout: step.kind === 'api' ? '5 minutes' : step.timeoutMs + 60_000,
    maximumAttempts: once ? 1 : step.method === 'GET' ? 5 : 3,
  });
}

/** The variables a step added: an allocated VMID and what it captured from its output. */
type Learned = Record<string, Value>;

/**
 * Runs one resolved step and waits for its task. A creating step that allocates a VMID
 * moves on to the next free one when its task reports that the VMID was taken meanwhile.
 */
export async function runResolvedStep(
  environment: string,
  step: ResolvedStep,
  vars: Readonly<Record<string, Value>>,
  allocate?: RunbookPlan['allocate'],
): Promise<Learned> {
  const exclude: number[] = [];
  for (;;) {
    const request: RunStepRequest = {
      environment,
      step,
      vars: { ...vars },
      ...(allocate ? { allocate: { ...allocate, exclude } } : {}),
    };
    const outcome: StepOutcome = await stepActivities(step).runRunbookStep(request);
    if (outcome.kind === 'done') return { ...outcome.allocated, ...outcome.captured };
    try {
      await waiting.awaitTask.executeWithOptions({ summary: taskSummary(outcome.upid) }, [
        { environment, upid: outcome.upid },
      ]);
      return { ...outcome.allocated };
    } catch (err) {
      const taken = allocate ? outcome.allocated?.[allocate.name] : undefined;
      if (taken === undefined || !/already exists/.test(failureMessage(err))) throw err;
      exclude.push(taken);
    }
  }
}

export interface CleanupReport {
  id: string;
  state: 'succeeded' | 'failed';
  detail?: string;
}

export interface RunbookOutcome {
  /** Parameters, built-ins, allocated VMIDs and captures, as the steps saw them. */
  vars: Record<string, Value>;
  completed: string[];
  cleanup: CleanupReport[];
}

/** Something a workflow runs after the runbook's steps, inside the same saga (verification, say). */
export interface ExtraStep {
  id: string;
  run: (vars: Readonly<Record<string, Value>>) => Promise<Learned | void>;
}

/**
 * The cleanups that apply: those of completed steps, newest step first, for the given
 * outcome (`always` cleanups run either way, `failure` ones only after a failure).
 */
function cleanupsFor(
  plan: RunbookPlan,
  completed: readonly string[],
  outcome: 'failure' | 'success',
): ResolvedCleanup[] {
  return [...completed]
    .reverse()
    .flatMap((id) => plan.cleanup.filter((c) => c.after === id && (c.on === 'always' || outcome === 'failure')));
}

async function runCleanups(
  environment: string,
  cleanups: ResolvedCleanup[],
  vars: Readonly<Record<string, Value>>,
  op: OperationHandle,
): Promise<CleanupReport[]> {
  const reports: CleanupReport[] = [];
  for (const cleanup of cleanups) {
    try {
      await op.step(cleanup.id, () => runResolvedStep(environment, cleanup, vars), { undo: true });
      reports.push({ id: cleanup.id, state: 'succeeded' });
    } catch (err) {
      // One cleanup failing must not stop the others; the report says what is left behind.
      reports.push({ id: cleanup.id, state: 'failed', detail: failureMessage(err) });
    }
  }
  return reports;
}

function describeCleanup(reports: CleanupReport[], kept: boolean, pending: ResolvedCleanup[]): string {
  if (kept) {
    return pending.length > 0
      ? `Kept for debugging (cleanup not run: ${pending.map((c) => c.id).join(', ')}).`
      : 'Nothing needed cleaning up.';
  }
  if (reports.length === 0) return 'Nothing needed cleaning up.';
  const failed = reports.filter((r) => r.state === 'failed');
  return failed.length === 0
    ? `Cleaned up: ${reports.map((r) => r.id).join(', ')}.`
    : `Cleanup FAILED for ${failed.map((r) => `${r.id} (${r.detail})`).join('; ')}: remove what it left behind by hand.`;
}

/**
 * Applies a runbook plan as a saga. `extra` steps run after the runbook's own (still inside
 * the saga, so their failure cleans up too). Fails with RunbookStepFailed naming the step.
 */
export async function applyRunbookPlan(
  environment: string,
  plan: RunbookPlan,
  op: OperationHandle,
  options: { keepOnFailure: boolean; extra?: ExtraStep[] },
): Promise<RunbookOutcome> {
  const vars: Record<string, Value> = { ...plan.vars };
  const completed: string[] = [];
  let current = '';
  try {
    for (const step of plan.steps) {
      current = step.id;
      const allocate = plan.allocate?.step === step.id ? plan.allocate : undefined;
      Object.assign(vars, await op.step(step.id, () => runResolvedStep(environment, step, vars, allocate)));
      completed.push(step.id);
    }
    for (const extra of options.extra ?? []) {
      current = extra.id;
      Object.assign(vars, (await op.step(extra.id, () => extra.run(vars))) ?? {});
      completed.push(extra.id);
    }
  } catch (err) {
    const pending = cleanupsFor(plan, completed, 'failure');
    const reports = options.keepOnFailure ? [] : await runCleanups(environment, pending, vars, op);
    for (const c of options.keepOnFailure ? pending : []) op.mark(c.id, 'skipped', 'kept for debugging');
    if (isCancellation(err)) throw err;
    throw ApplicationFailure.create({
      type: Failure.RunbookStepFailed,
      nonRetryable: true,
      message: `step ${current} failed: ${failureMessage(err)}. ${describeCleanup(reports, options.keepOnFailure, pending)}`,
      details: [{ step: current, completed, cleanup: reports }],
    });
  }
  const cleanup = await runCleanups(environment, cleanupsFor(plan, completed, 'success'), vars, op);
  return { vars, completed, cleanup };
}

export async function runbookRun(input: RunbookRunInput) {
  return runOperation<RunbookPlanDetails, RunbookOutcome>('runbook-run', input.meta, {
    plan: () => planning.planRunbookRun(input),
    apply: (plan, op) =>
      applyRunbookPlan(input.environment, plan.details!.plan, op, { keepOnFailure: input.keepOnFailure }),
  });
}
