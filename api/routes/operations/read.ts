/**
 * `GET /v1/operations` (a page of a visibility query) and `GET /v1/operations/{id}` (one
 * describe; the result of a closed run; the whole plan on request, from the status query).
 */
import { isGrpcDeadlineError, type WorkflowHandle } from '@temporalio/client';
import type { z } from 'zod';
import { renderPlanText } from '../../../lib/operations/plan-text.js';
import { statusQuery } from '../../../workflows/definitions.js';
import { requireEnvironment } from '../../access.js';
import { coalesced } from '../../coalesce.js';
import type { Services } from '../../deps.js';
import { redact } from '../../errors.js';
import type { Route } from '../../route.js';
import {
  OperationDetail,
  OperationDetailQuery,
  OperationIdParams,
  OperationList,
  OperationsQuery,
} from '../../schemas.js';
import {
  failureOf,
  listPage,
  type OperationsPage,
  resultWithin,
  runningTransfers,
  visibilityQuery,
} from '../../temporal-operations.js';
import { parseParams, parseQuery } from '../../validation.js';
import { commonErrors, notFound, type LoadOperation, type Summary } from './operation.js';

export function listRoute(s: Services): Route {
  const list = coalesced<OperationsPage>();
  return {
    method: 'GET',
    path: '/v1/operations',
    tag: 'operations',
    summary: 'List operations, newest first, a page at a time',
    description:
      'Filters combine with AND. `state` is an execution state (running, completed, failed, cancelled, ...) ' +
      'or an approval state (planning, pending, approved, auto-approved, not-required, rejected, expired, dry-run). ' +
      'Each row comes from Temporal’s visibility record (search attributes and the published `status`), which ' +
      'trails the operation by up to a second. A page holds at most `pageSize` operations; pass its ' +
      '`nextPageToken` as `pageToken` (with the same filters) for the next one.',
    access: 'read',
    query: OperationsQuery,
    responses: { 200: { description: 'operations', schema: OperationList }, ...commonErrors },
    handler: async (c) => {
      const { pageSize, pageToken, ...filter } = parseQuery(c, OperationsQuery);
      if (filter.environment !== undefined) requireEnvironment(c, s.config, filter.environment);
      const scope = filter.environment === undefined ? c.get('identity').environments : undefined;
      if (scope !== undefined && scope.length === 0)
        return c.json({ operations: [] } satisfies z.infer<typeof OperationList>);
      const query = visibilityQuery(filter, scope);
      // Keyed by the whole request, so callers share only identical pages. A caller joins the read
      // in flight: visibility already trails the operations by up to a second, so waiting for a
      // read begun after it arrived would buy no read-your-writes, only latency.
      const page = await list(
        JSON.stringify([query, pageSize, pageToken]),
        () => listPage(s, query, pageSize, pageToken),
        {
          joinRunning: true,
        },
      );
      return c.json(page satisfies z.infer<typeof OperationList>);
    },
  };
}

export function detailRoute(s: Services, loadOperation: LoadOperation): Route {
  const outcomes = closedOutcomes(s);
  return {
    method: 'GET',
    path: '/v1/operations/{id}',
    tag: 'operations',
    summary: 'One operation: state, approval, plan headline, progress, and the result once it ends',
    description:
      'The id is the workflow id, URL-encoded (its slashes as %2F), as in links.self. `status` is what the workflow ' +
      'published as it last changed (phase, approval state, plan version and summary, progress counts, outcome), ' +
      'read with one describe: no worker is asked, and every field is from the same moment. ' +
      '`include=plan` adds the whole plan, each step and `planText` from the workflow’s status query, which needs a ' +
      'worker: when none answers in time, `planUnavailable` says so and the rest of the answer is unchanged.',
    access: 'read',
    params: OperationIdParams,
    query: OperationDetailQuery,
    responses: {
      200: { description: 'the operation', schema: OperationDetail },
      ...commonErrors,
      404: notFound,
    },
    handler: async (c) => {
      const { id } = parseParams(c, OperationIdParams);
      const { include } = parseQuery(c, OperationDetailQuery);
      const { handle, summary, description } = await loadOperation(c, id);
      const detail: Summary = { ...summary };
      const cancelled = summary.status?.cancelled;
      if (summary.state === 'cancelled' && cancelled) detail.result = { outcome: 'cancelled', ...cancelled };
      const transfers = runningTransfers(description);
      if (transfers.length > 0) detail.transfers = transfers;
      if (summary.state !== 'running') Object.assign(detail, await outcomes(summary.runId, handle));
      if (include === 'plan') Object.assign(detail, await planOf(s, handle));
      return c.json(detail);
    },
  };
}

type Outcome = Pick<Summary, 'result' | 'failure'>;

/**
 * The result (or failure) of a closed run, fetched once: a closed run never changes, so
 * polling a finished operation does not read its history again. The newest runs are kept.
 */
function closedOutcomes(s: Services, capacity = 1000) {
  const known = new Map<string, Outcome>();
  return async (runId: string, handle: WorkflowHandle): Promise<Outcome> => {
    const cached = known.get(runId);
    if (cached) return cached;
    let outcome: Outcome;
    try {
      const ended = await resultWithin(s, handle, s.timeouts.queryMs);
      if (!ended.done) return {};
      outcome = { result: ended.value };
    } catch (err) {
      const failure = failureOf(err);
      if (!failure) throw err;
      outcome = { failure };
    }
    if (known.size >= capacity) known.delete(known.keys().next().value!);
    known.set(runId, outcome);
    return outcome;
  };
}

/** The whole plan and each step, from the workflow's status query, or why it could not be answered (it needs a worker). */
async function planOf(
  s: Services,
  handle: WorkflowHandle,
): Promise<Pick<Summary, 'plan' | 'steps' | 'planText' | 'planUnavailable'>> {
  const deadline = Date.now() + s.timeouts.queryMs;
  try {
    const { plan, steps } = await s.temporal.client.withDeadline(deadline, () => handle.query(statusQuery));
    return { ...(plan ? { plan: { ...plan }, planText: renderPlanText(plan) } : {}), steps };
  } catch (err) {
    // Past its deadline grpc-js reports the call as DEADLINE_EXCEEDED or, when the deadline
    // cancels it mid-flight, as CANCELLED ("Call cancelled"): both mean no worker answered.
    const timedOut =
      isGrpcDeadlineError(err) || isGrpcDeadlineError((err as { cause?: unknown }).cause) || Date.now() >= deadline;
    return {
      planUnavailable: timedOut
        ? `no worker answered the status query within ${s.timeouts.queryMs} ms (is the worker running?)`
        : `status query failed: ${redact(describeError(err))}`,
    };
  }
}

/** The client's message and the gRPC answer under it ("Failed to query Workflow: 14 UNAVAILABLE: ..."). */
function describeError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  return err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message;
}
