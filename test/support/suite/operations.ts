/**
 * Starting and following operations the way the API does — the body through the catalog's
 * schema, the requester in `meta` — on any Temporal client and task queue (the suite's workers
 * are child processes, some on their own dev server).
 */
import { signed } from '../../../testkit/approvals.js';
import { ActivityFailure, WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import type { z } from 'zod';
import { findOperation } from '../../../lib/operations/catalog.js';
import type { OperationMeta, OperationStatus } from '../../../lib/operations/plan.js';
import { approveUpdate, statusQuery } from '../../../workflows/definitions.js';

export interface Target {
  client: Client;
  taskQueue: string;
}

let seq = 0;

export function operationMeta(overrides: Partial<OperationMeta> = {}): OperationMeta {
  return {
    requester: 'alice',
    environment: 'home',
    dryRun: false,
    approvalTimeoutMs: 10 * 60_000,
    autoApprove: ['low'],
    ...overrides,
  };
}

export function startOperation(
  target: Target,
  kind: string,
  body: Record<string, unknown>,
  meta: Partial<OperationMeta> = {},
): Promise<WorkflowHandle> {
  const op = findOperation(kind);
  if (!op) throw new Error(`no operation kind '${kind}'`);
  const parsed = (op.body as z.ZodType).parse({ environment: 'home', ...body }) as Record<string, unknown>;
  return target.client.workflow.start(op.workflowType, {
    taskQueue: target.taskQueue,
    workflowId: `suite/${kind}/${Date.now()}-${seq++}`,
    args: [{ ...parsed, meta: operationMeta({ dryRun: Boolean(parsed['dryRun']), ...meta }) }],
  });
}

/** The status query's answer once `done` holds; the query fails until a worker runs the workflow. */
export async function waitForStatus(
  handle: WorkflowHandle,
  done: (s: OperationStatus) => boolean,
  timeoutMs = 120_000,
): Promise<OperationStatus> {
  const deadline = Date.now() + timeoutMs;
  let last: OperationStatus | undefined;
  while (Date.now() < deadline) {
    try {
      last = await handle.query(statusQuery);
      if (done(last)) return last;
      if (['completed', 'rejected', 'failed', 'cancelled'].includes(last.phase)) break;
    } catch {
      // no worker yet, or the first workflow task has not run
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `${handle.workflowId}: expected state not reached (last phase: ${last?.phase ?? 'none'}${last?.error ? `: ${last.error}` : ''})`,
  );
}

/** Waits for the plan and approves it as a second person. */
export async function approveWhenPlanned(handle: WorkflowHandle, by = 'bob'): Promise<OperationStatus> {
  const status = await waitForStatus(handle, (s) => s.phase !== 'planning');
  if (status.phase !== 'awaiting-approval') return status;
  await handle.executeUpdate(approveUpdate, {
    args: [signed(handle.workflowId, 'approved', { by, planVersion: status.plan!.version })],
  });
  return status;
}

export type Outcome =
  | { state: 'completed'; value: { outcome?: string; result?: unknown; [k: string]: unknown } }
  | {
      state: 'failed';
      type: string;
      message: string;
      /** The activity that failed, and why Temporal stopped retrying it. */
      activity?: { type: string; retryState: string };
    };

/** How the operation ended: its result, or its innermost failure's type and message. */
export async function outcomeOf(handle: WorkflowHandle): Promise<Outcome> {
  try {
    return { state: 'completed', value: await handle.result() };
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    let cause: Error | undefined = err.cause;
    let activity: { type: string; retryState: string } | undefined;
    for (;;) {
      if (cause instanceof ActivityFailure)
        activity = { type: cause.activityType, retryState: String(cause.retryState) };
      if (!(cause?.cause instanceof Error)) break;
      cause = cause.cause;
    }
    return {
      state: 'failed',
      type: (cause as { type?: string } | undefined)?.type ?? cause?.name ?? 'Error',
      message: cause?.message ?? err.message,
      ...(activity ? { activity } : {}),
    };
  }
}

/** What a completed operation returned; anything else fails the test with how it ended. */
export function completedValue<T>(outcome: Outcome | undefined): T {
  if (outcome?.state !== 'completed') throw new Error(`expected a completed operation, got ${JSON.stringify(outcome)}`);
  return outcome.value as T;
}
