/**
 * `POST /v1/operations/{kind}`: one route per kind of lib/operations/catalog.ts, which starts
 * the kind's workflow (it plans first; nothing changes before approval). With `dryRun: true`
 * the answer is the plan, when the workflow makes it within the dry-run wait.
 */
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { z } from 'zod';
import { durationMs } from '../../../lib/config/duration.js';
import { operations, type OperationKind } from '../../../lib/operations/catalog.js';
import { renderPlanText } from '../../../lib/operations/plan-text.js';
import type { OperationMeta, OperationPlan } from '../../../lib/operations/plan.js';
import { statusMemo } from '../../../workflows/definitions.js';
import {
  PmApprovalState,
  PmEnvironment,
  PmNodes,
  PmOperationKind,
  PmRequester,
} from '../../../workflows/search-attributes.js';
import { requireEnvironment } from '../../access.js';
import { autoApprovable } from '../../auth.js';
import type { Services } from '../../deps.js';
import { ApiError } from '../../errors.js';
import { noteAudit, type ApiContext, type Route } from '../../route.js';
import { DryRunResult, ErrorResponse, OperationStarted } from '../../schemas.js';
import { compactIso, failureOf, links, resultWithin, startingStatus } from '../../temporal-operations.js';
import { parseBody } from '../../validation.js';
import { commonErrors } from './operation.js';

/** Fields every catalog body carries (lib/operations/catalog.ts `common`). */
interface CommonBody {
  environment: string;
  dryRun: boolean;
}

type Started = z.infer<typeof OperationStarted>;

export function startRoutes(s: Services): Route[] {
  return [...operations.map((op) => startRoute(s, op as OperationKind)), unknownKindRoute];
}

function startRoute(s: Services, op: OperationKind): Route {
  return {
    method: 'POST',
    path: `/v1/operations/${op.kind}`,
    tag: 'operations',
    summary: op.description,
    description:
      'Starts the operation’s workflow. It plans first; nothing changes until the plan is approved ' +
      '(by a second person for high risk, by policy for low risk). With `dryRun: true` the answer is the plan.',
    access: 'start',
    body: { schema: op.body, required: true },
    audit: 'api.operation.start',
    responses: {
      200: { description: 'dry run: the plan', schema: DryRunResult },
      202: { description: 'started; follow links.self', schema: OperationStarted },
      ...commonErrors,
      409: {
        description:
          'an operation with this id is already running (for example a rolling maintenance of the same cluster)',
        schema: ErrorResponse,
      },
      422: { description: 'dry run: the plan could not be made', schema: ErrorResponse },
    },
    handler: async (c) => {
      const body = (await parseBody(c, op.body)) as CommonBody;
      noteAudit(c, { kind: op.kind, environment: body.environment, detail: { request: body } });
      requireEnvironment(c, s.config, body.environment);
      const id = op.workflowId(body, compactIso(s.now()));
      noteAudit(c, { operationId: id });
      const handle = await startWorkflow(s, op, id, body, operationMeta(c, s, body));
      const started: Started = {
        id,
        runId: handle.firstExecutionRunId,
        kind: op.kind,
        state: 'running',
        links: links(s, id),
      };
      return body.dryRun ? dryRunAnswer(c, s, handle, started) : startedAnswer(c, started);
    },
  };
}

/** Who asked, and the approval policy that applies to them: the workflow decides with these. */
function operationMeta(c: ApiContext, s: Services, body: CommonBody): OperationMeta {
  return {
    requester: c.get('identity').actor,
    environment: body.environment,
    dryRun: body.dryRun,
    approvalTimeoutMs: durationMs(s.config.approvals.timeout),
    autoApprove: autoApprovable(c.get('identity'), s.config.approvals.auto_approve),
  };
}

function startWorkflow(
  s: Services,
  op: OperationKind,
  id: string,
  body: CommonBody,
  meta: OperationMeta,
): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const nodes = op.nodes?.(body) ?? [];
  return s.temporal.client.workflow.start(op.workflowType, {
    taskQueue: s.temporal.taskQueue,
    workflowId: id,
    args: [{ ...body, meta }],
    // Set at start so the operation is listed (and its environment checked) before its first task runs.
    typedSearchAttributes: [
      { key: PmOperationKind, value: op.kind },
      { key: PmEnvironment, value: body.environment },
      { key: PmRequester, value: meta.requester },
      { key: PmApprovalState, value: 'planning' },
      ...(nodes.length > 0 ? [{ key: PmNodes, value: nodes }] : []),
    ],
    memo: { [statusMemo]: startingStatus },
    staticSummary: `${op.kind} in ${body.environment}${body.dryRun ? ' (dry run)' : ''}, requested by ${meta.requester}`,
  });
}

function startedAnswer(c: ApiContext, started: Started): Response {
  noteAudit(c, { result: 'started' });
  return c.json(started, 202, { Location: started.links.self });
}

/** The plan when the dry run ends within the wait, else the same answer as a real start. */
async function dryRunAnswer(c: ApiContext, s: Services, handle: WorkflowHandle, started: Started): Promise<Response> {
  let outcome;
  try {
    outcome = await resultWithin(s, handle, s.timeouts.dryRunMs);
  } catch (err) {
    const failure = failureOf(err);
    if (!failure) throw err;
    throw new ApiError(422, 'plan_failed', `the plan could not be made: ${failure.message}`);
  }
  if (!outcome.done) return startedAnswer(c, started);
  // The workflow completed with the refusal as its plan; the caller asked for a plan and gets why there is none.
  const refused = refusalOf(outcome.value);
  if (refused) throw new ApiError(422, 'plan_failed', `the plan could not be made: ${refused}`);
  noteAudit(c, { result: 'dry-run' });
  const plan = (outcome.value as { plan?: OperationPlan } | undefined)?.plan;
  return c.json(
    {
      ...started,
      state: 'completed',
      result: outcome.value,
      ...(plan ? { planText: renderPlanText(plan) } : {}),
    } satisfies z.infer<typeof DryRunResult>,
    200,
  );
}

/** The message of a dry run's refused plan (`{ outcome: 'refused', plan: { reasons } }`). */
function refusalOf(result: unknown): string | undefined {
  const r = result as { outcome?: string; plan?: { reasons?: string[] } } | undefined;
  return r?.outcome === 'refused' ? (r.plan?.reasons ?? []).join('; ') : undefined;
}

const unknownKindRoute: Route = {
  method: 'POST',
  path: '/v1/operations/{kind}',
  tag: 'operations',
  summary: 'Unknown operation kinds',
  access: 'public',
  hidden: true,
  responses: { 404: { description: 'no such kind', schema: ErrorResponse } },
  handler: async (c) => {
    throw new ApiError(404, 'unknown_kind', `no operation kind '${c.req.param('kind')}'`, [
      { path: 'kind', message: `must be one of: ${operations.map((o) => o.kind).join(', ')}` },
    ]);
  },
};
