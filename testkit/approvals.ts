/**
 * Decisions as the API sends them: signed with the approval signing key this process shares
 * with the workers and API processes it starts (PM_APPROVAL_SIGNING_KEY: set once per test
 * run in test/globalSetup.ts, per benchmark here, and inherited by child processes).
 */
import { randomBytes } from 'node:crypto';
import { signDecision } from '../lib/approvals/signature.js';
import type { ApprovalRequest } from '../lib/operations/plan.js';

/** The key, made up for this process (and the ones it starts) when none is set. */
export function ensureSigningKey(): string {
  return (process.env.PM_APPROVAL_SIGNING_KEY ??= randomBytes(32).toString('hex'));
}

export function signed(
  operationId: string,
  decision: 'approved' | 'rejected',
  request: Pick<ApprovalRequest, 'by' | 'planVersion' | 'reason'>,
): ApprovalRequest {
  const key = ensureSigningKey();
  const at = new Date().toISOString();
  return { ...request, at, signature: signDecision(key, { operationId, decision, at, ...request }) };
}
