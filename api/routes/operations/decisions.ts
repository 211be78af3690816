/**
 * Deciding for a running operation: approve or reject its plan, decide what a halted rolling
 * maintenance does next, approve or reject one node of it. Each decision goes to the workflow
 * as an Update (refusals answered at once, 409) or, when no worker answers in time, as a Signal
 * the workflow validates the same way (202).
 */
import type { z } from 'zod';
import {
  approveNodeSignal,
  approveNodeUpdate,
  maintenanceDecisions,
  rejectNodeSignal,
  rejectNodeUpdate,
} from '../../../workflows/maintenance-definitions.js';
import type { Services } from '../../deps.js';
import { noteAudit, type ApiContext, type Route } from '../../route.js';
import {
  ApproveBody,
  Decision,
  ErrorResponse,
  MaintenanceDecisionBody,
  MaintenanceDecisionParams,
  NodeDecisionParams,
  OperationIdParams,
  RejectBody,
} from '../../schemas.js';
import {
  approvalChannels,
  decide,
  signedApproval,
  type DecisionChannel,
  type DecisionOutcome,
} from '../../temporal-operations.js';
import { parseBody, parseParams } from '../../validation.js';
import { commonErrors, notFound, requireOpen, type LoadOperation } from './operation.js';

const decisionResponses = {
  200: { description: 'decided', schema: Decision },
  202: { description: 'accepted as a signal; the workflow validates it when a worker runs', schema: Decision },
  ...commonErrors,
  404: notFound,
  409: { description: 'refused: the message says why', schema: ErrorResponse },
};

export function decisionRoutes(s: Services, loadOperation: LoadOperation): Route[] {
  return [
    planDecisionRoute(s, loadOperation, 'approve'),
    planDecisionRoute(s, loadOperation, 'reject'),
    maintenanceDecisionRoute(s, loadOperation),
    nodeDecisionRoute(s, loadOperation),
  ];
}

function planDecisionRoute(s: Services, loadOperation: LoadOperation, decision: 'approve' | 'reject'): Route {
  const schema = decision === 'approve' ? ApproveBody : RejectBody;
  return {
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
    body: { schema, required: true },
    audit: `api.operation.${decision}`,
    responses: decisionResponses,
    handler: async (c) => {
      const { id } = parseParams(c, OperationIdParams);
      const body = await parseBody(c, schema);
      noteAudit(c, { detail: { planVersion: body.planVersion, ...(body.reason ? { reason: body.reason } : {}) } });
      const signed = (operationId: string) =>
        signedApproval(s, operationId, decision === 'approve' ? 'approved' : 'rejected', {
          by: c.get('identity').actor,
          planVersion: body.planVersion,
          ...(body.reason ? { reason: body.reason } : {}),
        });
      return decideOnOpen(s, loadOperation, c, id, approvalChannels[decision], signed, (d) => d.decision);
    },
  };
}

function maintenanceDecisionRoute(s: Services, loadOperation: LoadOperation): Route {
  return {
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
      const request = { by: c.get('identity').actor, ...body };
      return decideOnOpen(s, loadOperation, c, id, maintenanceDecisions[action], () => request);
    },
  };
}

function nodeDecisionRoute(s: Services, loadOperation: LoadOperation): Route {
  return {
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
      const channel =
        decision === 'approve'
          ? { update: approveNodeUpdate, signal: approveNodeSignal }
          : { update: rejectNodeUpdate, signal: rejectNodeSignal };
      const request = { by: c.get('identity').actor, node, ...body };
      return decideOnOpen(s, loadOperation, c, id, channel, () => request);
    },
  };
}

/**
 * Sends a decision to the running operation behind `id` (409 once it has ended); `request`
 * builds what is sent from the operation's id once the caller may see it.
 */
async function decideOnOpen<Req, D extends object>(
  s: Services,
  loadOperation: LoadOperation,
  c: ApiContext,
  id: string,
  channel: DecisionChannel<Req, D>,
  request: (operationId: string) => Req | Promise<Req>,
  auditResult?: (decision: D) => string,
): Promise<Response> {
  const { handle, summary } = await loadOperation(c, id);
  requireOpen(summary);
  const outcome = await decide(s, handle, channel, await request(summary.id));
  return decisionAnswer(c, summary.id, outcome, auditResult);
}

/** 200 with the decision, or 202 when it went as a signal; the audit record says which. */
function decisionAnswer<D extends object>(
  c: ApiContext,
  id: string,
  outcome: DecisionOutcome<D>,
  auditResult: (decision: D) => string = () => 'decided',
): Response {
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
  noteAudit(c, { result: auditResult(outcome.decision) });
  const decision: object = outcome.decision;
  return c.json({ id, state: 'decided', decision: { ...decision } } satisfies z.infer<typeof Decision>);
}
