/**
 * How the outside world (API, Temporal UI, operators) reads and steers an operation. One
 * place for every signal, update and query name, so the API and the workflows cannot drift
 * apart; what they carry is the plan vocabulary in lib/operations/plan.ts.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ApprovalDecision, ApprovalRequest, OperationStatus } from '../lib/operations/plan.js';

/**
 * Approvals arrive as Updates when the API needs an immediate answer (a refused approval
 * is reported to the caller at once) and as Signals when no worker is running: both go
 * through the same validation, so a signal cannot do what the update would refuse.
 */
export const approveUpdate = defineUpdate<ApprovalDecision, [ApprovalRequest]>('approve');
export const rejectUpdate = defineUpdate<ApprovalDecision, [ApprovalRequest]>('reject');
export const approveSignal = defineSignal<[ApprovalRequest]>('approve-signal');
export const rejectSignal = defineSignal<[ApprovalRequest]>('reject-signal');

export const statusQuery = defineQuery<OperationStatus>('status');

/** The memo key under which a workflow publishes its `PublishedStatus` (lib/operations/plan.ts). */
export const statusMemo = 'status';
