/**
 * The workflows' side of the audit trail: approvals, rejections and final outcomes.
 * The API records requests; both append to the same hash-chained log.
 */
import { anchorOf, type AuditAnchor } from '../lib/audit/anchor.js';
import type { AuditLog } from '../lib/audit/log.js';

export interface AuditEventInput {
  /** Stable per event, so a retried activity does not log the same event twice. */
  eventId: string;
  actor: string;
  action: string;
  operationId?: string;
  kind?: string;
  environment?: string;
  detail?: Record<string, unknown>;
}

export function createAuditActivities(audit: AuditLog) {
  return {
    /** Returns the record's place in the chain: kept in the workflow's history, it anchors the log (lib/audit/anchor.ts). */
    async recordAudit(event: AuditEventInput): Promise<AuditAnchor> {
      const record = await audit.append({ ...event, result: event.action.split('.').pop() ?? event.action });
      return anchorOf(audit, record);
    },
  };
}

export type AuditActivities = ReturnType<typeof createAuditActivities>;
