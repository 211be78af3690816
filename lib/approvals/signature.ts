/**
 * Approval decisions the workflow can check. Temporal cannot tell who sent an Update or a
 * Signal: anyone who can reach the frontend could approve a destroy in any name. So the API,
 * which knows the caller from the bearer token, signs each decision (HMAC-SHA256 over the
 * operation, decision, actor, plan version, time and reason) with a key only the API and the
 * worker hold (`approvals.signing_key`), and the workflow has the worker check the signature
 * in an activity before the decision counts. The signature travels in history; the key never.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export interface SignedFields {
  operationId: string;
  decision: 'approved' | 'rejected';
  by: string;
  planVersion: number;
  /** ISO time the API signed it. */
  at: string;
  reason?: string;
}

/** One unambiguous line per decision: JSON of the fields in a fixed order. */
function payload(d: SignedFields): string {
  return JSON.stringify(['pm-approval/1', d.operationId, d.decision, d.by, d.planVersion, d.at, d.reason ?? null]);
}

export function signDecision(key: string, d: SignedFields): string {
  return createHmac('sha256', key).update(payload(d)).digest('hex');
}

export function signatureMatches(key: string, d: SignedFields, signature: string): boolean {
  const expected = Buffer.from(signDecision(key, d), 'hex');
  const given = Buffer.from(/^[0-9a-f]{64}$/.test(signature) ? signature : '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
