/**
 * Operations: start one (any kind in lib/operations/catalog.ts), list and read them, and
 * steer them — approve or reject a plan, cancel. Every change goes through its workflow;
 * the caller's identity comes from the token and travels as `meta.requester` or `by`.
 */
import {
  isGrpcDeadlineError,
  WorkflowNotFoundError,
  type WorkflowExecutionDescription,
  type WorkflowHandle,
} from '@temporalio/client';
import type { z } from 'zod';
import { durationMs } from '../../lib/config/duration.js';
import { operations, type OperationKind } from '../../lib/operations/catalog.js';
import { renderPlanText } from '../../lib/operations/plan-text.js';
import type { OperationMeta, OperationPlan } from '../../lib/operations/plan.js';
import { statusMemo, statusQuery } from '../../workflows/definitions.js';
import {
  approveNodeSignal,
  approveNodeUpdate,
  maintenanceDecisions,
  rejectNodeSignal,
  rejectNodeUpdate,
} from '../../workflows/maintenance-definitions.js';
import {
  PmApprovalState,
  PmEnvironment,
  PmNodes,
  PmOperationKind,
  PmRequester,
} from '../../workflows/search-attributes.js';
import { requireEnvironment, requireScope } from '../access.js';
import { autoApprovable } from '../auth.js';
import type { Services } from '../deps.js';
import { ApiError, redact } from '../errors.js';
import { coalesced } from '../coalesce.js';
import {
  approvalChannels,
  compactIso,
  decide,
  signedApproval,
  type DecisionOutcome,
  endedMeanwhile,
  failureOf,
  links,
  listPage,
  type OperationsPage,
  resultWithin,
  runningTransfers,
  startingStatus,
  summarize,
  visibilityQuery,
} from '../temporal-operations.js';
import { noteAudit, type ApiContext, type Route } from '../route.js';
import {
  ApproveBody,
  CancelAccepted,
  CancelBody,
  Decision,
  DryRunResult,
  ErrorResponse,
  MaintenanceDecisionBody,
  MaintenanceDecisionParams,
  NodeDecisionParams,
  OperationDetail,
  OperationDetailQuery,
  OperationIdParams,
  OperationList,
  OperationsQuery,
  OperationStarted,
  RejectBody,
} from '../schemas.js';
import { parseBody, parseParams, parseQuery } from '../validation.js';

type Summary = z.infer<typeof OperationDetail>;

/** Fields every catalog body carries (lib/operations/catalog.ts `common`). */
interface CommonBody {
  environment: string;
  dryRun: boolean;
}

const commonErrors = {
  400: { description: 'invalid request; `details` names each field', schema: ErrorResponse },
  401: { description: 'no valid bearer token', schema: ErrorResponse },
  403: { description: 'the token’s roles or environments do not allow this', schema: ErrorResponse },
} as const;

export function operationRoutes(s: Services): Route[] {
  const { client, taskQueue } = s.temporal;
  const describe = coalesced<WorkflowExecutionDescription>();
  const list = coalesced<OperationsPage>();
  const outcomes = closedOutcomes();

  /** The operation behind `:id`, after checking the caller may see its environment. */
  const loadOperation = async (c: ApiContext, id: string) => {
    const handle = client.workflow.getHandle(id);
    const description = await describe(id, () => handle.describe());
    const summary = summarize(s, description);
    if (!summary) throw new ApiError(404, 'not_found', `no operation '${id}'`);
    noteAudit(c, { kind: summary.kind, environment: summary.environment });
    requireScope(c, summary.environment ?? '');
    return { handle, summary, description };
  };

  const requireOpen = (summary: Summary) => {
    if (summary.state !== 'running') {
      throw new ApiError(409, 'not_running', `operation '${summary.id}' has ended (${summary.state})`);
    }
  };

  const startRoute = (op: OperationKind): Route => ({
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
      const requester = c.get('identity').actor;
      const id = op.workflowId(body, compactIso(s.now()));
      noteAudit(c, { operationId: id });
      const meta: OperationMeta = {
        requester,
        environment: body.environment,
        dryRun: body.dryRun,
        approvalTimeoutMs: durationMs(s.config.approvals.timeout),
        autoApprove: autoApprovable(c.get('identity'), s.config.approvals.auto_approve),
      };
      const nodes = op.nodes?.(body) ?? [];
      const handle = await client.workflow.start(op.workflowType, {
        taskQueue,
        workflowId: id,
        args: [{ ...body, meta }],
        // Set at start so the operation is listed (and its environment checked) before its first task runs.
        typedSearchAttributes: [
          { key: PmOperationKind, value: op.kind },
          { key: PmEnvironment, value: body.environment },
          { key: PmRequester, value: requester },
          { key: PmApprovalState, value: 'planning' },
          ...(nodes.length > 0 ? [{ key: PmNodes, value: nodes }] : []),
        ],
        memo: { [statusMemo]: startingStatus },
        staticSummary: `${op.kind} in ${body.environment}${body.dryRun ? ' (dry run)' : ''}, requested by ${requester}`,
      });
      const started: z.infer<typeof OperationStarted> = {
        id,
        runId: handle.firstExecutionRunId,
        kind: op.kind,
        state: 'running',
        links: links(s, id),
      };
      if (!body.dryRun) {
        noteAudit(c, { result: 'started' });
        return c.json(started, 202, { Location: started.links.self });
      }

      let outcome;
      try {
        outcome = await resultWithin(s, handle, s.timeouts.dryRunMs);
      } catch (err) {
        const failure = failureOf(err);
        if (!failure) throw err;
        throw new ApiError(422, 'plan_failed', `the plan could not be made: ${failure.message}`);
      }
      if (!outcome.done) {
        noteAudit(c, { result: 'started' });
        return c.json(started, 202, { Location: started.links.self });
      }
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
    },
  });

  const decisionRoute = (decision: 'approve' | 'reject'): Route => ({
    method: 'POST',
    path: `/v1/operations/{id}/${decision}`,
    tag: 'operations',
    summary:
      decision === 'approve'
        ? 'Approve the plan awaiting a decision'
        : 'Reject the plan awaiting a decision (with a reason)',
    description:
      'Name the plan version you reviewed. Refusals — your own high-risk request, a stale plan version, a plan already ' +
      'decided or not awaiting a decision — are answered at once with 409. When no worker can answer within a few ' +
      'seconds the decision is sent as a signal (202) and validated the same way when a worker runs.',
    access: 'decide',
    params: OperationIdParams,
    body: { schema: decision === 'approve' ? ApproveBody : RejectBody, required: true },
    audit: `api.operation.${decision}`,
    responses: {
      200: { description: 'decided', schema: Decision },
      202: { description: 'accepted as a signal; the workflow validates it when a worker runs', schema: Decision },
      ...commonErrors,
      404: { description: 'no such operation', schema: ErrorResponse },
      409: { description: 'refused: the message says why', schema: ErrorResponse },
    },
    handler: async (c) => {
      const { id } = parseParams(c, OperationIdParams);
      const body = await parseBody(c, decision === 'approve' ? ApproveBody : RejectBody);
      noteAudit(c, { detail: { planVersion: body.planVersion, ...(body.reason ? { reason: body.reason } : {}) } });
      const { handle, summary } = await loadOperation(c, id);
      requireOpen(summary);
      const request = await signedApproval(s, summary.id, decision === 'approve' ? 'approved' : 'rejected', {
        by: c.get('identity').actor,
        planVersion: body.planVersion,
        ...(body.reason ? { reason: body.reason } : {}),
      });
      const outcome = await decide(s, handle, approvalChannels[decision], request);
      if (outcome.state === 'accepted') {
        noteAudit(c, { result: 'signalled' });
        return c.json(
          {
            id: summary.id,
            state: 'accepted',
            message: 'accepted; no worker answered in time, so the workflow will validate it when one runs',
          } satisfies z.infer<typeof Decision>,
          202,
        );
      }
      noteAudit(c, { result: outcome.decision.decision });
      return c.json({ id: summary.id, state: 'decided', decision: { ...outcome.decision } } satisfies z.infer<
        typeof Decision
      >);
    },
  });

  /** A decision is answered like an approval: 200 decided, 202 sent as a signal, 409 refused. */
  const decisionResponse = (c: ApiContext, id: string, outcome: DecisionOutcome<object>) => {
    if (outcome.state === 'accepted') {
      noteAudit(c, { result: 'signalled' });
      return c.json(
        {
          id,
          state: 'accepted',
          message: 'accepted; no worker answered in time, so the workflow will validate it when one runs',
        } satisfies z.infer<typeof Decision>,
        202,
      );
    }
    noteAudit(c, { result: 'decided' });
    return c.json({ id, state: 'decided', decision: { ...outcome.decision } } satisfies z.infer<typeof Decision>);
  };

  const decisionResponses = {
    200: { description: 'decided', schema: Decision },
    202: { description: 'accepted as a signal; the workflow validates it when a worker runs', schema: Decision },
    ...commonErrors,
    404: { description: 'no such operation', schema: ErrorResponse },
    409: { description: 'refused: the message says why', schema: ErrorResponse },
  };

  const maintenanceDecisionRoute: Route = {
    method: 'POST',
    path: '/v1/operations/{id}/maintenance/{action}',
    tag: 'operations',
    summary: 'Decide what a halted rolling maintenance does next',
    description:
      'When a rolling maintenance halts on a node it says which nodes are done and which node holds which guests. ' +
      '`resume` retries the halted node, `skip-node` leaves it and goes on, `abort-and-return` brings its guests ' +
      'home and stops. The request names the node, so a late or misdirected decision changes nothing (409).',
    access: 'decide',
    params: MaintenanceDecisionParams,
    body: { schema: MaintenanceDecisionBody, required: true },
    audit: 'api.operation.maintenance',
    responses: decisionResponses,
    handler: async (c) => {
      const { id, action } = parseParams(c, MaintenanceDecisionParams);
      const body = await parseBody(c, MaintenanceDecisionBody);
      noteAudit(c, { detail: { action, node: body.node, ...(body.reason ? { reason: body.reason } : {}) } });
      const { handle, summary } = await loadOperation(c, id);
      requireOpen(summary);
      const outcome = await decide(s, handle, maintenanceDecisions[action], { by: c.get('identity').actor, ...body });
      return decisionResponse(c, summary.id, outcome);
    },
  };

  const nodeDecisionRoute: Route = {
    method: 'POST',
    path: '/v1/operations/{id}/nodes/{node}/{decision}',
    tag: 'operations',
    summary: 'Approve or reject one node of a rolling maintenance (per-node gates)',
    description:
      'The same rules as the plan’s approval: name the plan version; no self-approval of high risk; a rejection needs a reason.',
    access: 'decide',
    params: NodeDecisionParams,
    body: { schema: ApproveBody, required: true },
    audit: 'api.operation.node-decision',
    responses: decisionResponses,
    handler: async (c) => {
      const { id, node, decision } = parseParams(c, NodeDecisionParams);
      // One documented body for both decisions: a rejection without a reason is refused by the workflow's rule (409).
      const body = await parseBody(c, ApproveBody);
      noteAudit(c, { detail: { node, decision, planVersion: body.planVersion } });
      const { handle, summary } = await loadOperation(c, id);
      requireOpen(summary);
      const channel =
        decision === 'approve'
          ? { update: approveNodeUpdate, signal: approveNodeSignal }
          : { update: rejectNodeUpdate, signal: rejectNodeSignal };
      const outcome = await decide(s, handle, channel, { by: c.get('identity').actor, node, ...body });
      return decisionResponse(c, summary.id, outcome);
    },
  };

  return [
    ...operations.map((op) => startRoute(op as OperationKind)),
    {
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
    },
    {
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
        // Keyed by the whole request, so callers share only identical pages.
        const page = await list(JSON.stringify([query, pageSize, pageToken]), () =>
          listPage(s, query, pageSize, pageToken),
        );
        return c.json(page satisfies z.infer<typeof OperationList>);
      },
    },
    {
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
        404: { description: 'no such operation', schema: ErrorResponse },
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
        if (include === 'plan') Object.assign(detail, await planOf(handle));
        return c.json(detail);
      },
    },
    decisionRoute('approve'),
    decisionRoute('reject'),
    maintenanceDecisionRoute,
    nodeDecisionRoute,
    {
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
        404: { description: 'no such operation', schema: ErrorResponse },
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
    },
  ];

  /** The client's message and the gRPC answer under it ("Failed to query Workflow: 14 UNAVAILABLE: ..."). */
  function describeError(err: unknown): string {
    if (!(err instanceof Error)) return String(err);
    return err.cause instanceof Error ? `${err.message}: ${err.cause.message}` : err.message;
  }

  /**
   * The result (or failure) of a closed run, fetched once: a closed run never changes, so
   * polling a finished operation does not read its history again. The newest runs are kept.
   */
  function closedOutcomes(capacity = 1000) {
    const known = new Map<string, Pick<Summary, 'result' | 'failure'>>();
    return async (runId: string, handle: WorkflowHandle): Promise<Pick<Summary, 'result' | 'failure'>> => {
      const cached = known.get(runId);
      if (cached) return cached;
      let outcome: Pick<Summary, 'result' | 'failure'>;
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

  /** The message of a dry run's refused plan (`{ outcome: 'refused', plan: { reasons } }`). */
  function refusalOf(result: unknown): string | undefined {
    const r = result as { outcome?: string; plan?: { reasons?: string[] } } | undefined;
    return r?.outcome === 'refused' ? (r.plan?.reasons ?? []).join('; ') : undefined;
  }

  /** The whole plan and each step, from the workflow's status query, or why it could not be answered (it needs a worker). */
  async function planOf(
    handle: WorkflowHandle,
  ): Promise<Pick<Summary, 'plan' | 'steps' | 'planText' | 'planUnavailable'>> {
    const deadline = Date.now() + s.timeouts.queryMs;
    try {
      const { plan, steps } = await client.withDeadline(deadline, () => handle.query(statusQuery));
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
}
