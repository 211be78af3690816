/**
 * `POST /v1/operations/{id}/cancel`: the workflow starts no new step, follows the PVE tasks
 * already running to their end, and ends cancelled.
 */
import { WorkflowNotFoundError } from '@temporalio/client';
import type { z } from 'zod';
import { noteAudit, type Route } from '../../route.js';
import { CancelAccepted, CancelBody, ErrorResponse, OperationIdParams } from '../../schemas.js';
import { endedMeanwhile } from '../../temporal-operations.js';
import { parseBody, parseParams } from '../../validation.js';
import { commonErrors, notFound, requireOpen, type LoadOperation } from './operation.js';

export function cancelRoute(loadOperation: LoadOperation): Route {
  return {
    method: 'POST',
    path: '/v1/operations/{id}/cancel',
    tag: 'operations',
    summary: 'Cancel an operation',
    description:
      'The operation starts no new step, follows the PVE tasks already running to their end, and ends cancelled; ' +
      'GET it for what it did and did not do (`result`). Asking again changes nothing.',
    access: 'cancel',
    params: OperationIdParams,
    body: { schema: CancelBody, required: false },
    audit: 'api.operation.cancel',
    responses: {
      202: { description: 'cancellation requested', schema: CancelAccepted },
      ...commonErrors,
      404: notFound,
      409: { description: 'the operation has already ended', schema: ErrorResponse },
    },
    handler: async (c) => {
      const { id } = parseParams(c, OperationIdParams);
      const body = await parseBody(c, CancelBody, { optional: true });
      if (body.reason) noteAudit(c, { detail: { reason: body.reason } });
      const { handle, summary } = await loadOperation(c, id);
      requireOpen(summary);
      await handle.cancel().catch((err: unknown) => {
        throw err instanceof WorkflowNotFoundError ? endedMeanwhile(summary.id) : err;
      });
      noteAudit(c, { result: 'cancel-requested' });
      return c.json({ id: summary.id, state: 'cancel-requested' } satisfies z.infer<typeof CancelAccepted>, 202);
    },
  };
}
