import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createAuditLog } from '../../lib/audit/log.js';

const logModule = fileURLToPath(new URL('../../lib/audit/log.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** One process appending `count` records (and the shared event ids) as fast as it can. */
function appender(path: string, name: string, count: number, sharedEvents: number): Promise<void> {
  const script = `
    const { createAuditLog } = await import(${JSON.stringify(logModule)});
    const log = createAuditLog(${JSON.stringify(path)}, { fsync: false });
    const appends = [];
    for (let i = 0; i < ${count}; i++) {
      appends.push(log.append({ actor: ${JSON.stringify(name)}, action: 'test.append', result: 'ok', detail: { i } }));
      if (i < ${sharedEvents}) {
        appends.push(log.append({ eventId: 'shared-' + i, actor: 'workflow', action: 'operation.approved', result: 'approved' }));
      }
    }
    await Promise.all(appends);
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${name} exited ${code}: ${stderr}`))));
  });
}

describe('audit log under concurrent writers', () => {
  it('keeps one valid chain when several processes append at once', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pm-audit-')), 'audit.log');
    const processes = 6;
    const each = 40;
    const shared = 5;
    await Promise.all(Array.from({ length: processes }, (_, p) => appender(path, `writer-${p}`, each, shared)));

    const log = createAuditLog(path);
    await expect(log.verify()).resolves.toEqual({ ok: true, records: processes * each + shared });
    const records = await log.read();
    for (let p = 0; p < processes; p++) {
      const mine = records.filter((r) => r.actor === `writer-${p}`).map((r) => r.detail?.i);
      expect(mine.sort((a, b) => Number(a) - Number(b))).toEqual(Array.from({ length: each }, (_, i) => i));
    }
    // Every process appended the shared events; each is recorded exactly once.
    expect(
      records
        .filter((r) => r.eventId?.startsWith('shared-'))
        .map((r) => r.eventId)
        .sort(),
    ).toEqual(Array.from({ length: shared }, (_, i) => `shared-${i}`));
    expect(readFileSync(`${path}.head`, 'utf8')).toContain(`"seq":${processes * each + shared}`);
  }, 60_000);

  it('keeps one valid chain when one process appends concurrently through two handles', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pm-audit-')), 'audit.log');
    const a = createAuditLog(path, { fsync: false });
    const b = createAuditLog(path, { fsync: false });
    await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        (i % 2 ? a : b).append({ actor: i % 2 ? 'a' : 'b', action: 'test.append', result: 'ok' }),
      ),
    );
    await expect(a.verify()).resolves.toEqual({ ok: true, records: 60 });
  });
});
