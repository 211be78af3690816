import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalJson, GENESIS_HASH, recordHash } from '../../lib/audit/chain.js';
import { withFileLock } from '../../lib/audit/lock.js';
import { createAuditLog, type AuditLog } from '../../lib/audit/log.js';
import { restrictDbFile } from '../../scripts/temporal-server.js';

function freshLog(): { log: AuditLog; path: string } {
  const path = join(mkdtempSync(join(tmpdir(), 'pm-audit-')), 'audit.log');
  return { log: createAuditLog(path, { fsync: false }), path };
}

async function logWith(records: number): Promise<{ log: AuditLog; path: string }> {
  const fresh = freshLog();
  for (let i = 1; i <= records; i++) {
    await fresh.log.append({
      actor: `actor-${i}`,
      action: 'operation.requested',
      result: 'ok',
      operationId: `op-${i}`,
      detail: { i },
    });
  }
  return fresh;
}

const lines = (path: string) => readFileSync(path, 'utf8').split('\n').filter(Boolean);
const rewrite = (path: string, edited: string[]) => writeFileSync(path, `${edited.join('\n')}\n`);

describe('canonical JSON', () => {
  it('does not depend on key order and leaves out undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, undefined], c: undefined } })).toBe(
      canonicalJson({ a: { d: [1, null] }, b: 1 }),
    );
    expect(canonicalJson({ b: 1, a: 2 })).toBe('{"a":2,"b":1}');
  });
});

describe('audit log', () => {
  it('chains each record to the one before it', async () => {
    const { log } = freshLog();
    const first = await log.append({
      actor: 'otto',
      action: 'api.operation.start',
      result: 'started',
      operationId: 'op-1',
    });
    const second = await log.append({
      actor: 'anna',
      action: 'api.operation.approve',
      result: 'approved',
      operationId: 'op-1',
    });
    expect(first.seq).toBe(1);
    expect(first.prev).toBe(GENESIS_HASH);
    expect(second.seq).toBe(2);
    expect(second.prev).toBe(first.hash);
    expect(recordHash(second as unknown as Record<string, unknown>)).toBe(second.hash);
    expect(Date.parse(second.at)).not.toBeNaN();
    await expect(log.verify()).resolves.toEqual({ ok: true, records: 2 });
  });

  it('verifies an absent log as empty', async () => {
    const { log } = freshLog();
    await expect(log.verify()).resolves.toEqual({ ok: true, records: 0 });
    await expect(log.read()).resolves.toEqual([]);
  });

  it('records an event id once, however often the event is appended', async () => {
    const { log, path } = await logWith(3);
    const once = await log.append({
      eventId: 'wf/run/approved',
      actor: 'anna',
      action: 'operation.approved',
      result: 'approved',
    });
    const again = await log.append({
      eventId: 'wf/run/approved',
      actor: 'anna',
      action: 'operation.approved',
      result: 'approved',
    });
    expect(again).toEqual(once);
    expect(lines(path)).toHaveLength(4);
    await expect(log.verify()).resolves.toEqual({ ok: true, records: 4 });
  });

  it('refuses entries without actor, action or result', async () => {
    const { log } = freshLog();
    await expect(log.append({ actor: '', action: 'x', result: 'ok' })).rejects.toThrow(/actor/);
    await expect(
      log.append({ actor: 'a', action: 'x', result: 'ok', detail: [] as unknown as Record<string, unknown> }),
    ).rejects.toThrow(/detail/);
  });

  it('filters by actor, action (exact or prefix), operation, environment and time, keeping the newest', async () => {
    const times = ['2025-01-01T00:00:00Z', '2025-01-02T00:00:00Z', '2025-01-03T00:00:00Z', '2025-01-04T00:00:00Z'];
    let i = 0;
    const path = join(mkdtempSync(join(tmpdir(), 'pm-audit-')), 'audit.log');
    const log = createAuditLog(path, { fsync: false, now: () => new Date(times[i++]!) });
    await log.append({
      actor: 'otto',
      action: 'api.operation.start',
      result: 'started',
      operationId: 'a',
      environment: 'home',
    });
    await log.append({
      actor: 'anna',
      action: 'api.operation.approve',
      result: 'approved',
      operationId: 'a',
      environment: 'home',
    });
    await log.append({
      actor: 'otto',
      action: 'api.operation.start',
      result: 'started',
      operationId: 'b',
      environment: 'cloud',
    });
    await log.append({ actor: 'anonymous', action: 'api.access', result: 'unauthenticated' });

    const seqs = async (filter: Parameters<AuditLog['read']>[0]) => (await log.read(filter)).map((r) => r.seq);
    expect(await seqs({ actor: 'otto' })).toEqual([1, 3]);
    expect(await seqs({ action: 'api.operation.*' })).toEqual([1, 2, 3]);
    expect(await seqs({ action: 'api.operation.start' })).toEqual([1, 3]);
    expect(await seqs({ operationId: 'a' })).toEqual([1, 2]);
    expect(await seqs({ environment: 'cloud' })).toEqual([3]);
    expect(await seqs({ environment: ['home', 'cloud'] })).toEqual([1, 2, 3]);
    expect(await seqs({ since: '2025-01-02T00:00:00Z', until: new Date('2025-01-03T00:00:00Z') })).toEqual([2, 3]);
    expect(await seqs({ limit: 2 })).toEqual([3, 4]);
  });

  describe('detects tampering', () => {
    it('an edited field', async () => {
      const { log, path } = await logWith(5);
      const edited = lines(path);
      edited[2] = edited[2]!.replace('"actor":"actor-3"', '"actor":"mallory"');
      rewrite(path, edited);
      await expect(log.verify()).resolves.toEqual({
        ok: false,
        line: 3,
        problem: expect.stringMatching(/record 3 does not match its hash/),
      });
    });

    it('an edit with a recomputed hash (the next record no longer chains to it)', async () => {
      const { log, path } = await logWith(5);
      const edited = lines(path);
      const record = JSON.parse(edited[1]!) as Record<string, unknown>;
      record.result = 'refused';
      record.hash = recordHash(record);
      edited[1] = JSON.stringify(record);
      rewrite(path, edited);
      await expect(log.verify()).resolves.toEqual({
        ok: false,
        line: 3,
        problem: 'record 3 does not chain to the record before it',
      });
    });

    it('a deleted line', async () => {
      const { log, path } = await logWith(5);
      const edited = lines(path);
      edited.splice(1, 1);
      rewrite(path, edited);
      await expect(log.verify()).resolves.toMatchObject({
        ok: false,
        line: 2,
        problem: expect.stringMatching(/expected record 2 but found record 3/),
      });
    });

    it('deleted lines at the end', async () => {
      const { log, path } = await logWith(5);
      rewrite(path, lines(path).slice(0, 3));
      await expect(log.verify()).resolves.toMatchObject({
        ok: false,
        problem: expect.stringMatching(/ends at record 3 but record 5 was written/),
      });
    });

    it('an emptied log', async () => {
      const { log, path } = await logWith(2);
      writeFileSync(path, '');
      await expect(log.verify()).resolves.toMatchObject({
        ok: false,
        problem: expect.stringMatching(/ends at record 0/),
      });
    });

    it('reordered lines', async () => {
      const { log, path } = await logWith(5);
      const edited = lines(path);
      [edited[1], edited[2]] = [edited[2]!, edited[1]!];
      rewrite(path, edited);
      await expect(log.verify()).resolves.toMatchObject({
        ok: false,
        line: 2,
        problem: expect.stringMatching(/expected record 2 but found record 3/),
      });
    });

    it('an inserted line, even one forged with a valid hash', async () => {
      const { log, path } = await logWith(5);
      const edited = lines(path);
      const forged: Record<string, unknown> = { ...JSON.parse(edited[2]!), actor: 'mallory' };
      forged.hash = recordHash(forged);
      edited.splice(3, 0, JSON.stringify(forged));
      rewrite(path, edited);
      await expect(log.verify()).resolves.toMatchObject({
        ok: false,
        line: 4,
        problem: expect.stringMatching(/expected record 4 but found record 3/),
      });
    });

    it('a line that is not JSON, and a blank line', async () => {
      const { log, path } = await logWith(3);
      const edited = lines(path);
      rewrite(path, [edited[0]!, '{"seq":2,', edited[2]!]);
      await expect(log.verify()).resolves.toEqual({ ok: false, line: 2, problem: 'not valid JSON' });
      rewrite(path, [edited[0]!, '', edited[1]!, edited[2]!]);
      await expect(log.verify()).resolves.toEqual({ ok: false, line: 2, problem: 'blank line inside the log' });
    });

    it('a missing head, with the end of the log cut off', async () => {
      const { log, path } = await logWith(3);
      rewrite(path, lines(path).slice(0, 2));
      rmSync(`${path}.head`);
      await expect(log.verify()).resolves.toEqual({
        ok: false,
        line: 2,
        problem: `${path}.head is missing: whether records were removed from the end cannot be told`,
      });
    });

    it('a rewritten head that no longer matches the log', async () => {
      const { log, path } = await logWith(3);
      writeFileSync(`${path}.head`, JSON.stringify({ seq: 3, hash: 'f'.repeat(64) }));
      await expect(log.verify()).resolves.toEqual({
        ok: false,
        line: 3,
        problem: 'record 3 is not the record that was written',
      });
    });
  });

  it('is readable by its owner only, and so is its head', async () => {
    const { path } = await logWith(1);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(statSync(`${path}.head`).mode & 0o777).toBe(0o600);
  });

  it('keeps appending on a log whose head lags behind (a crash between the two writes)', async () => {
    const { log, path } = await logWith(3);
    const head = readFileSync(`${path}.head`, 'utf8');
    await log.append({ actor: 'a', action: 'x', result: 'ok' });
    writeFileSync(`${path}.head`, head);
    await expect(log.verify()).resolves.toEqual({ ok: true, records: 4 });
  });

  it('refuses to append after a torn last line instead of starting a new chain', async () => {
    const { log, path } = await logWith(2);
    writeFileSync(path, `${readFileSync(path, 'utf8')}{"seq":3,"at":`);
    await expect(log.append({ actor: 'a', action: 'x', result: 'ok' })).rejects.toThrow(/not an audit record/);
  });
});

describe('lock file', () => {
  it('takes over a lock whose holder died', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pm-lock-'));
    const lockPath = join(dir, 'audit.log.lock');
    // A pid that cannot be running: beyond the kernel's pid range.
    writeFileSync(
      lockPath,
      JSON.stringify({ pid: 2 ** 30, host: (await import('node:os')).hostname(), token: 'dead' }),
    );
    await expect(withFileLock(lockPath, async () => 'ran', { timeoutMs: 2_000 })).resolves.toBe('ran');
  });

  it('takes over a lock older than the stale limit', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pm-lock-'));
    const lockPath = join(dir, 'audit.log.lock');
    writeFileSync(lockPath, 'garbage from another host');
    await new Promise((r) => setTimeout(r, 60));
    await expect(withFileLock(lockPath, async () => 'ran', { timeoutMs: 2_000, staleMs: 50 })).resolves.toBe('ran');
  });

  it('waits for a live holder, and gives up after the timeout', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pm-lock-'));
    const lockPath = join(dir, 'audit.log.lock');
    // The holder is inside its function before anyone else tries (a fixed pause was not always enough on a busy machine).
    let inside!: () => void;
    let release!: () => void;
    const entered = new Promise<void>((r) => (inside = r));
    const held = withFileLock(lockPath, () => {
      inside();
      return new Promise<void>((r) => (release = r));
    });
    await entered;
    await expect(withFileLock(lockPath, async () => 'ran', { timeoutMs: 100 })).rejects.toThrow(/could not lock/);
    const waiting = withFileLock(lockPath, async () => 'ran', { timeoutMs: 2_000 });
    release();
    await held;
    await expect(waiting).resolves.toBe('ran');
  });
});

describe("the Temporal dev server's database", () => {
  it('is made readable by its owner only, in a folder only its owner enters', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'pm-db-')), 'temporal');
    mkdirSync(dir, { mode: 0o755 });
    for (const file of ['dev.sqlite', 'dev.sqlite-wal']) writeFileSync(join(dir, file), 'x', { mode: 0o644 });
    await restrictDbFile(join(dir, 'dev.sqlite'));
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'dev.sqlite')).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'dev.sqlite-wal')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'dev.sqlite'), 'utf8')).toBe('x');
  });
});
