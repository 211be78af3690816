/**
 * What the lifecycle integration tests share: start an operation's workflow as the API would
 * (validated body + meta), follow it to a phase, approve it as a second person.
 */
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { z } from 'zod';
import { findOperation } from '../../lib/operations/catalog.js';
import { approveUpdate, statusQuery, type OperationMeta, type OperationStatus } from '../../workflows/definitions.js';
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

export async function waitForPhase(handle: WorkflowHandle, phase: OperationStatus['phase'], timeoutMs = 30_000): Promise<OperationStatus> {
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
  await handle.executeUpdate(approveUpdate, { args: [{ by, planVersion: status.plan!.version }] });
  return status;
}

/** The failure a workflow ended with: the innermost typed failure (the activity's own refusal) and its message. */
export async function failureOf(handle: WorkflowHandle): Promise<{ type?: string; message: string; details?: unknown[] }> {
  const err = await handle.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof WorkflowFailedError)) throw new Error(`expected the operation to fail, it ended ${err === undefined ? 'well' : String(err)}`);
  let innermost: (Error & { type?: string; details?: unknown[] }) | undefined;
  for (let cause: Error | undefined = err.cause; cause; cause = cause.cause instanceof Error ? cause.cause : undefined) {
    if ((cause as { type?: string }).type) innermost = cause;
  }
  return { type: innermost?.type, message: innermost?.message ?? err.message, details: innermost?.details };
}
