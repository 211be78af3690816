/**
 * Operations as Temporal sees them, translated for the API: summaries from visibility
 * records and descriptions, the visibility query for a list filter, and the approval call
 * that falls back to a signal when no worker can answer.
 */
import { status as grpcStatus } from '@grpc/grpc-js';
import {
  isGrpcServiceError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type WorkflowExecutionDescription,
  type WorkflowExecutionInfo,
  type WorkflowExecutionStatusName,
  type WorkflowHandle,
} from '@temporalio/client';
import { defaultPayloadConverter, type SignalDefinition, type UpdateDefinition } from '@temporalio/common';
import type { z } from 'zod';
import { signDecision } from '../lib/approvals/signature.js';
import { describeSecretRef, resolveSecret } from '../lib/config/secrets.js';
import type { ApprovalDecision, ApprovalRequest, PublishedStatus } from '../lib/operations/plan.js';
import { approveSignal, approveUpdate, rejectSignal, rejectUpdate, statusMemo } from '../workflows/definitions.js';
import {
  PmApprovalState,
  PmEnvironment,
  PmNodes,
  PmOperationKind,
  PmRequester,
  PmRisk,
  PmVmids,
} from '../workflows/search-attributes.js';
import type { Services } from './deps.js';
import { ApiError } from './errors.js';
import { visibilityPage } from './visibility-page.js';
import { approvalStates, type executionStates, type OperationSummary, type OperationsQuery } from './schemas.js';

type ExecutionState = (typeof executionStates)[number];
type Summary = z.infer<typeof OperationSummary>;

/** `2025-11-22T04:27:13.579Z` -> `20251122T042713.579Z`: the request time inside workflow IDs. */
export function compactIso(date: Date): string {
  return date.toISOString().replace(/[-:]/g, '');
}

const stateOfStatus: Partial<Record<WorkflowExecutionStatusName, ExecutionState>> = {
  RUNNING: 'running',
  COMPLETED: 'completed',
  FAILED: 'failed',
  CANCELLED: 'cancelled',
  TERMINATED: 'terminated',
  TIMED_OUT: 'timed-out',
  CONTINUED_AS_NEW: 'continued-as-new',
  PAUSED: 'paused',
};

/** Visibility's spelling of each execution state. */
const visibilityStatus: Record<Exclude<ExecutionState, 'unknown'>, string> = {
  running: 'Running',
  completed: 'Completed',
  failed: 'Failed',
  cancelled: 'Canceled',
  terminated: 'Terminated',
  'timed-out': 'TimedOut',
  'continued-as-new': 'ContinuedAsNew',
  paused: 'Paused',
};

export function links(s: Services, id: string): Summary['links'] {
  const { uiUrl, namespace } = s.temporal;
  return {
    self: `/v1/operations/${encodeURIComponent(id)}`,
    temporalUi: `${uiUrl.replace(/\/$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(id)}`,
  };
}

/** What an operation shows from its start until its workflow first publishes (memo at start). */
export const startingStatus: PublishedStatus = {
  phase: 'planning',
  approvalState: 'planning',
  progress: { pending: 0, running: 0, succeeded: 0, failed: 0, skipped: 0 },
};

/**
 * The API's view of a workflow; undefined when it is not an operation (no PmOperationKind).
 * Search attributes and memo come from one record (a describe, or one row of a list), which
 * the workflow updates together, so `approvalState` and `status` agree.
 */
export function summarize(
  s: Services,
  info: Pick<
    WorkflowExecutionInfo,
    'workflowId' | 'runId' | 'typedSearchAttributes' | 'memo' | 'status' | 'startTime' | 'closeTime'
  >,
): Summary | undefined {
  const attributes = info.typedSearchAttributes;
  const kind = attributes.get(PmOperationKind);
  if (kind === undefined) return undefined;
  const summary = info.memo?.summary;
  const status = info.memo?.[statusMemo] as PublishedStatus | undefined;
  return {
    id: info.workflowId,
    runId: info.runId,
    kind,
    environment: attributes.get(PmEnvironment),
    requester: attributes.get(PmRequester),
    state: stateOfStatus[info.status.name] ?? 'unknown',
    approvalState: status?.approvalState ?? attributes.get(PmApprovalState),
    risk: attributes.get(PmRisk),
    nodes: attributes.get(PmNodes) ?? [],
    vmids: (attributes.get(PmVmids) ?? []).map(Number),
    ...(typeof summary === 'string' ? { summary } : {}),
    // Absent for operations started before workflows published their status.
    ...(status ? { status } : {}),
    startedAt: info.startTime.toISOString(),
    ...(info.closeTime ? { closedAt: info.closeTime.toISOString() } : {}),
    links: links(s, info.workflowId),
  };
}

/**
 * The visibility query for a list filter. Every value was validated as a plain word (see
 * schemas.ts), so none needs quoting beyond the surrounding quotes.
 */
export function visibilityQuery(
  filter: Omit<z.infer<typeof OperationsQuery>, 'pageSize' | 'pageToken'>,
  scope: readonly string[] | undefined,
): string {
  const clauses = ['PmOperationKind IS NOT NULL'];
  const equals = (attribute: string, value: string | number | undefined) => {
    if (value !== undefined) clauses.push(`${attribute} = '${value}'`);
  };
  equals(PmOperationKind.name, filter.kind);
  equals(PmEnvironment.name, filter.environment);
  equals(PmNodes.name, filter.node);
  equals(PmRequester.name, filter.requester);
  equals(PmRisk.name, filter.risk);
  equals(PmVmids.name, filter.vmid);
  if (filter.state !== undefined) {
    if ((approvalStates as readonly string[]).includes(filter.state)) equals(PmApprovalState.name, filter.state);
    else equals('ExecutionStatus', visibilityStatus[filter.state as keyof typeof visibilityStatus]);
  }
  if (scope !== undefined) clauses.push(`${PmEnvironment.name} IN (${scope.map((e) => `'${e}'`).join(', ')})`);
  return clauses.join(' AND ');
}

export interface OperationsPage {
  operations: Summary[];
  nextPageToken?: string;
}

/**
 * One page of a visibility query: each row's summary from its own search attributes and memo
 * (no describe per row). Temporal's page token travels base64url-encoded; one Temporal
 * refuses is answered 400 naming `pageToken`.
 */
export async function listPage(
  s: Services,
  query: string,
  pageSize: number,
  pageToken: string | undefined,
): Promise<OperationsPage> {
  let page;
  try {
    page = await visibilityPage(s.temporal.client, {
      namespace: s.temporal.namespace,
      query,
      pageSize,
      ...(pageToken === undefined ? {} : { pageToken: Buffer.from(pageToken, 'base64url') }),
    });
  } catch (err) {
    if (pageToken !== undefined && isGrpcServiceError(err) && err.code === grpcStatus.INVALID_ARGUMENT) {
      throw new ApiError(400, 'invalid_request', 'invalid pageToken', [
        { path: 'pageToken', message: 'must be the nextPageToken of a previous page' },
      ]);
    }
    throw err;
  }
  return {
    operations: page.executions.flatMap((info) => summarize(s, info) ?? []),
    ...(page.nextPageToken ? { nextPageToken: Buffer.from(page.nextPageToken).toString('base64url') } : {}),
  };
}

export type DecisionOutcome<D = ApprovalDecision> = { state: 'decided'; decision: D } | { state: 'accepted' };

/** A decision a workflow accepts both ways: as an Update (answered at once) and as a Signal. */
export interface DecisionChannel<Req, D> {
  update: UpdateDefinition<D, [Req]>;
  signal: SignalDefinition<[Req]>;
}

export const approvalChannels = {
  approve: { update: approveUpdate, signal: approveSignal },
  reject: { update: rejectUpdate, signal: rejectSignal },
} satisfies Record<string, DecisionChannel<ApprovalRequest, ApprovalDecision>>;

const signingKeys = new WeakMap<object, Promise<string>>();

/**
 * A plan decision as the workflow checks it: signed with `approvals.signing_key`, which only
 * this process and the worker resolve. Refused with 503 when the key is not available.
 */
export async function signedApproval(
  s: Services,
  operationId: string,
  decision: 'approved' | 'rejected',
  request: Pick<ApprovalRequest, 'by' | 'planVersion' | 'reason'>,
): Promise<ApprovalRequest> {
  const ref = s.config.approvals.signing_key;
  let key = signingKeys.get(ref);
  if (!key) signingKeys.set(ref, (key = resolveSecret(ref)));
  let secret: string;
  try {
    secret = await key;
  } catch {
    signingKeys.delete(ref);
    throw new ApiError(
      503,
      'signing_key_unavailable',
      `decisions cannot be signed: approvals.signing_key (${describeSecretRef(ref)}) is not available`,
    );
  }
  const at = s.now().toISOString();
  return { ...request, at, signature: signDecision(secret, { operationId, decision, at, ...request }) };
}

/**
 * Asks the workflow to decide, as an Update so a refusal (self-approval, stale plan
 * version, already decided) is answered at once. When no worker answers in time the same
 * request goes as a Signal: the workflow validates it the same way when a worker runs.
 */
export async function decide<Req, D>(
  s: Services,
  handle: WorkflowHandle,
  channel: DecisionChannel<Req, D>,
  request: Req,
): Promise<DecisionOutcome<D>> {
  try {
    const result = await s.temporal.client.withDeadline(Date.now() + s.timeouts.updateMs, () =>
      handle.executeUpdate(channel.update, { args: [request] }),
    );
    return { state: 'decided', decision: result };
  } catch (err) {
    if (err instanceof WorkflowUpdateFailedError) {
      throw new ApiError(409, 'refused', err.cause?.message ?? err.message);
    }
    if (err instanceof WorkflowUpdateRPCTimeoutOrCancelledError) {
      await handle.signal(channel.signal, request);
      return { state: 'accepted' };
    }
    if (err instanceof WorkflowNotFoundError) throw endedMeanwhile(handle.workflowId);
    throw err;
  }
}

/** The workflow closed between our look at it and the request to it. */
export function endedMeanwhile(id: string): ApiError {
  return new ApiError(409, 'not_running', `operation '${id}' has ended`);
}

/** Why a closed operation did not complete, from the error `result()` throws. */
export function failureOf(err: unknown): { type: string; message: string } | undefined {
  if (!(err instanceof WorkflowFailedError)) return undefined;
  const cause = err.cause;
  return { type: cause?.name ?? 'WorkflowFailed', message: cause?.message || err.message };
}

/** PVE's migration log line: `... transferred 1.2 GiB of 4 GiB (30.00%)`. */
const transferLine = /transferred ([\d.]+ [KMGTP]?i?B) of ([\d.]+ [KMGTP]?i?B)/;

/**
 * Bytes moved so far by running migrations, read from their activities' heartbeats (which
 * carry the task's UPID and the newest line of its log). Only the byte counts and the VMID
 * leave here, never the rest of a heartbeat.
 */
export function runningTransfers(
  description: WorkflowExecutionDescription,
): { vmid?: number; transferred: string; of: string }[] {
  return (description.raw.pendingActivities ?? []).flatMap((activity) => {
    const payload = activity.heartbeatDetails?.payloads?.[0];
    if (!payload) return [];
    let beat: unknown;
    try {
      beat = defaultPayloadConverter.fromPayload(payload);
    } catch {
      return [];
    }
    const { log, upid } = (beat ?? {}) as { log?: unknown; upid?: unknown };
    const match = typeof log === 'string' ? transferLine.exec(log) : null;
    if (!match) return [];
    // UPID:node:pid:pstart:starttime:type:vmid:user:
    const vmid = typeof upid === 'string' ? Number(upid.split(':')[6]) : NaN;
    return [{ ...(Number.isInteger(vmid) && vmid > 0 ? { vmid } : {}), transferred: match[1]!, of: match[2]! }];
  });
}

/** Waits up to `ms` for the workflow's result; `done: false` when it is still running. */
export async function resultWithin(
  s: Services,
  handle: WorkflowHandle,
  ms: number,
): Promise<{ done: true; value: unknown } | { done: false }> {
  const signal = AbortSignal.timeout(ms);
  try {
    return { done: true, value: await s.temporal.client.withAbortSignal(signal, () => handle.result()) };
  } catch (err) {
    if (signal.aborted) return { done: false };
    throw err;
  }
}
