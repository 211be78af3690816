/**
 * The audit log's head, anchored where a local edit cannot reach it. Every record a workflow
 * writes comes back as its activity's result, so Temporal's history keeps (log, seq, hash) as
 * of that moment. Cutting the end of the log and rewriting its `.head` to match passes the
 * local check; it cannot rewrite those histories, so `npm run audit:verify` compares the log
 * with the newest anchor it finds there.
 */
import { resolve } from 'node:path';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import type { AuditLog, AuditRecord } from './log.js';

export interface AuditAnchor {
  /** The log's resolved path: several logs may share one Temporal namespace. */
  log: string;
  seq: number;
  hash: string;
}

export function anchorOf(log: AuditLog, record: AuditRecord): AuditAnchor {
  return { log: resolve(log.path), seq: record.seq, hash: record.hash };
}

const isAnchor = (value: unknown): value is AuditAnchor =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as AuditAnchor).seq === 'number' &&
  typeof (value as AuditAnchor).hash === 'string';

export interface AnchorSearch {
  /** A visibility query naming the deployment's operations, e.g. its task queue. */
  query?: string;
  /** How many of the newest operations' histories are read. */
  workflows?: number;
}

/** The highest anchor of `log` in the histories of the newest operations `search` names. */
export async function latestAnchor(
  client: Client,
  log: string,
  search: AnchorSearch = {},
): Promise<(AuditAnchor & { workflowId: string }) | undefined> {
  const workflows = search.workflows ?? 50;
  let best: (AuditAnchor & { workflowId: string }) | undefined;
  let seen = 0;
  for await (const execution of client.workflow.list(search.query ? { query: search.query } : {})) {
    if (++seen > workflows) break;
    const history = await client.workflow.getHandle(execution.workflowId, execution.runId).fetchHistory();
    const auditScheduled = new Set(
      (history.events ?? [])
        .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'recordAudit')
        .map((e) => String(e.eventId)),
    );
    for (const event of history.events ?? []) {
      const done = event.activityTaskCompletedEventAttributes;
      const payload = done?.result?.payloads?.[0];
      if (!done || !payload || !auditScheduled.has(String(done.scheduledEventId))) continue;
      const anchor: unknown = defaultPayloadConverter.fromPayload(payload);
      if (isAnchor(anchor) && anchor.log === resolve(log) && (!best || anchor.seq > best.seq))
        best = { ...anchor, workflowId: execution.workflowId };
    }
  }
  return best;
}

/** What is wrong with the log given an anchor: the anchored record must be there, unchanged. */
export function anchorProblem(
  records: readonly AuditRecord[],
  anchor: AuditAnchor & { workflowId: string },
): string | undefined {
  const record = records.find((r) => r.seq === anchor.seq);
  if (!record)
    return `record ${anchor.seq}, anchored in ${anchor.workflowId}'s history, is missing: the log was cut (it ends at record ${records.length})`;
  if (record.hash !== anchor.hash)
    return `record ${anchor.seq} is not the one anchored in ${anchor.workflowId}'s history`;
  return undefined;
}
