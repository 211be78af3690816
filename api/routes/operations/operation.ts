/**
 * What every route about one operation shares: the errors every route documents, and the
 * operation behind `{id}` — read with one describe (coalesced across callers), after checking
 * the caller may see its environment.
 */
import type { WorkflowExecutionDescription, WorkflowHandle } from '@temporalio/client';
import type { z } from 'zod';
import { requireScope } from '../../access.js';
import { coalesced } from '../../coalesce.js';
import type { Services } from '../../deps.js';
import { ApiError } from '../../errors.js';
import { noteAudit, type ApiContext } from '../../route.js';
import { ErrorResponse, type OperationDetail } from '../../schemas.js';
import { summarize } from '../../temporal-operations.js';

export type Summary = z.infer<typeof OperationDetail>;

export const commonErrors = {
  400: { description: 'invalid request; `details` names each field', schema: ErrorResponse },
  401: { description: 'no valid bearer token', schema: ErrorResponse },
  403: { description: 'the token’s roles or environments do not allow this', schema: ErrorResponse },
} as const;

export const notFound = { description: 'no such operation', schema: ErrorResponse } as const;

export interface LoadedOperation {
  handle: WorkflowHandle;
  summary: Summary;
  description: WorkflowExecutionDescription;
}

export type LoadOperation = (c: ApiContext, id: string) => Promise<LoadedOperation>;

export function operationLoader(s: Services): LoadOperation {
  const describe = coalesced<WorkflowExecutionDescription>();
  return async (c, id) => {
    const handle = s.temporal.client.workflow.getHandle(id);
    const description = await describe(id, () => handle.describe());
    const summary = summarize(s, description);
    if (!summary) throw new ApiError(404, 'not_found', `no operation '${id}'`);
    noteAudit(c, { kind: summary.kind, environment: summary.environment });
    requireScope(c, summary.environment ?? '');
    return { handle, summary, description };
  };
}

/** Steering an operation needs it running: 409 once it has ended. */
export function requireOpen(summary: Summary): void {
  if (summary.state !== 'running') {
    throw new ApiError(409, 'not_running', `operation '${summary.id}' has ended (${summary.state})`);
  }
}
