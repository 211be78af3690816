/**
 * Cutting the end of the audit log and rewriting its head to match passes the log's own
 * check; the records the workflows wrote are anchored in their Temporal histories, which no
 * local edit reaches, and the anchor check finds the cut.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { anchorProblem, latestAnchor } from '../../lib/audit/anchor.js';
import type { AuditRecord } from '../../lib/audit/log.js';
import { environmentForFile } from '../support/worker.js';
import { startOperation } from './lifecycle-helpers.js';

const stack = environmentForFile({ speed: 200 });

describe('the audit log anchored in Temporal', () => {
  it('finds the newest record an operation wrote, and a log cut below it with its head rewritten', async () => {
    const { env, worker } = stack;
    const audit = env.deps.audit;
    const handle = await startOperation(worker, 'vm-action', { vmid: 1007, name: 'installer', action: 'start' });
    await handle.result();
    const records = await audit.read();
    const anchor = await latestAnchor(worker.client, audit.path, { query: `TaskQueue = '${worker.taskQueue}'` });
    expect(anchor).toMatchObject({
      seq: records.at(-1)!.seq,
      hash: records.at(-1)!.hash,
      workflowId: handle.workflowId,
    });
    expect(anchorProblem(records, anchor!)).toBeUndefined();

    // The attacker's cut: the last record gone, the head rewritten to the new last one.
    const kept = records.slice(0, -1);
    await writeFile(audit.path, kept.map((r) => `${JSON.stringify(r)}\n`).join(''));
    await writeFile(`${audit.path}.head`, JSON.stringify({ seq: kept.at(-1)!.seq, hash: kept.at(-1)!.hash }));
    expect(await audit.verify()).toEqual({ ok: true, records: kept.length });
    const after = JSON.parse(`[${(await readFile(audit.path, 'utf8')).trim().split('\n').join(',')}]`) as AuditRecord[];
    expect(anchorProblem(after, anchor!)).toMatch(
      new RegExp(`^record ${anchor!.seq}, anchored in .*, is missing: the log was cut`),
    );
  });
});
