/**
 * What the lifecycle integration tests share: start an operation's workflow as the API would
 * (validated body + meta), follow it to a phase, approve it as a second person.
 */
import { signed } from '../../testkit/approvals.js';
import { CancelledFailure, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { z } from 'zod';
import { findOperation } from '../../lib/operations/catalog.js';
import type { OperationMeta, OperationStatus } from '../../lib/operations/plan.js';
import { approveUpdate, statusQuery } from '../../workflows/definitions.js';
import { PmApprovalState } from '../../workflows/search-attributes.js';
import type { TestWorker } from '../support/temporal.js';

export function meta(overrides: Partial<OperationMeta> = {}): OperationMeta {
  return {
    requester: 'alice',
    environment: 'home',
    dryRun: false,
    approvalTimeoutMs: 60_000,
    autoApprove: ['low', 'medium'],
    ...overrides,
  };
}

let seq = 0;

/** Starts an operation the way the API does: the body through the catalog's schema, then its workflow. */
export function startOperation(
  worker: TestWorker,
  kind: string,
  body: Record<string, unknown>,
  metaOverrides: Partial<OperationMeta> = {},
): Promise<WorkflowHandle> {
  const op = findOperation(kind);
  if (!op) throw new Error(`no operation kind '${kind}'`);
  const parsed = (op.body as z.ZodType).parse({ environment: 'home', ...body }) as Record<string, unknown>;
  return worker.client.workflow.start(op.workflowType, {
    taskQueue: worker.taskQueue,
    workflowId: `test/${kind}/${Date.now()}-${seq++}`,
    args: [{ ...parsed, meta: meta({ dryRun: Boolean(parsed['dryRun']), ...metaOverrides }) }],
  });
}

/**
 * Follows the status query until the operation is in `phase`. The deadline only turns a hang
 * into a message naming the last phase, just inside the test's own timeout: on a loaded machine
 * planning may take long, and how long is no part of what the tests check.
 */
export async function waitForPhase(
  handle: WorkflowHandle,
  phase: OperationStatus['phase'],
  timeoutMs = 100_000,
): Promise<OperationStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: OperationStatus | undefined;
  while (Date.now() < deadline) {
    try {
      last = await handle.query(statusQuery);
      if (last.phase === phase) return last;
      if (['completed', 'failed', 'rejected', 'cancelled'].includes(last.phase)) break;
    } catch {
      // the workflow has not registered its query handler yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`operation never reached phase ${phase} (last: ${last?.phase ?? 'none'} ${last?.error ?? ''})`);
}

export async function approve(handle: WorkflowHandle, by = 'bob'): Promise<OperationStatus> {
  const status = await waitForPhase(handle, 'awaiting-approval');
  await handle.executeUpdate(approveUpdate, {
    args: [signed(handle.workflowId, 'approved', { by, planVersion: status.plan!.version })],
  });
  return status;
}

export interface Failure {
  /** The innermost typed failure: the activity's own refusal or error. */
  type?: string;
  message: string;
  details?: unknown[];
  /** Every typed failure from the outside in (OperationFailed, the workflow's own, the activity's). */
  chain: { type: string; message: string; details?: unknown[] }[];
}

export async function failureOf(handle: WorkflowHandle): Promise<Failure> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof WorkflowFailedError))
    throw new Error(`expected the operation to fail, it ended ${err === undefined ? 'well' : String(err)}`);
  const chain: Failure['chain'] = [];
  for (
    let cause: Error | undefined = err.cause;
    cause;
    cause = cause.cause instanceof Error ? cause.cause : undefined
  ) {
    const { type, details } = cause as { type?: string; details?: unknown[] };
    if (type) chain.push({ type, message: cause.message, ...(details?.length ? { details } : {}) });
  }
  const innermost = chain.at(-1);
  return { type: innermost?.type, message: innermost?.message ?? err.message, details: innermost?.details, chain };
}

/** The failure of one type in the chain (e.g. the workflow's own InstallFailed around the activity's error). */
export function failureOfType(failure: Failure, type: string): { type: string; message: string; details?: unknown[] } {
  const found = failure.chain.find((f) => f.type === type);
  if (!found) throw new Error(`no ${type} among ${failure.chain.map((f) => f.type).join(' > ')}`);
  return found;
}

export interface Cancelled {
  /** The operation's status once it ended: phase `cancelled`, the report in `cancelled`. */
  status: OperationStatus;
  /** The steps that were running when the cancel was sent. */
  runningAtCancel: string[];
  /** PmApprovalState once it ended. */
  approvalState: string | undefined;
}

/**
 * Cancels an approved operation once `when` holds for its status (a step under way), and
 * returns how it ended. It must end as Temporal's `cancelled`, not fail and not hang.
 */
export async function cancelWhen(
  handle: WorkflowHandle,
  when: (status: OperationStatus) => boolean,
  timeoutMs = 100_000,
): Promise<Cancelled> {
  const deadline = Date.now() + timeoutMs;
  let status = await handle.query(statusQuery);
  while (!when(status)) {
    if (Date.now() > deadline || ['completed', 'failed', 'rejected', 'cancelled'].includes(status.phase)) {
      throw new Error(`never got to cancel (phase ${status.phase} ${status.error ?? ''})`);
    }
    await new Promise((r) => setTimeout(r, 50));
    status = await handle.query(statusQuery);
  }
  const runningAtCancel = status.steps.filter((s) => s.state === 'running').map((s) => s.id);
  await handle.cancel();
  const ended = await handle.result().then(
    () => 'completed',
    (err: unknown) =>
      err instanceof WorkflowFailedError && err.cause instanceof CancelledFailure ? 'cancelled' : String(err),
  );
  if (ended !== 'cancelled') throw new Error(`expected the operation to end cancelled, it ended ${ended}`);
  const description = await handle.describe();
  return {
    status: await handle.query(statusQuery),
    runningAtCancel,
    approvalState: description.typedSearchAttributes.get(PmApprovalState),
  };
}

/** A step of the plan is running (the cancel will find PVE work under way). */
export const stepRunning =
  (prefix = '') =>
  (status: OperationStatus) =>
    status.steps.some((s) => s.state === 'running' && s.id.startsWith(prefix));
