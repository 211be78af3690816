import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { createAuditLog } from '../../lib/audit/log.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

async function verifyCli(path: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'scripts/audit-verify.ts', path],
      { cwd: repoRoot },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('scripts/audit-verify.ts', () => {
  it('prints OK and exits 0 for an intact log, and names the broken line with exit 1', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'pm-audit-cli-')), 'audit.log');
    const log = createAuditLog(path, { fsync: false });
    for (const actor of ['otto', 'anna', 'root'])
      await log.append({ actor, action: 'api.operation.start', result: 'started' });

    const intact = await verifyCli(path);
    expect(intact).toMatchObject({ code: 0, stdout: expect.stringMatching(/^OK: .*3 records/) });

    writeFileSync(path, readFileSync(path, 'utf8').replace('"actor":"anna"', '"actor":"mallory"'));
    const tampered = await verifyCli(path);
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toMatch(/^PROBLEM: .*line 2: record 2 does not match its hash/);
  }, 30_000);

  it("checks the demo's log when given no path and no configuration, as right after ./scripts/demo.sh", async () => {
    const clone = mkdtempSync(join(tmpdir(), 'pm-audit-demo-'));
    mkdirSync(join(clone, 'data/demo'), { recursive: true });
    writeFileSync(
      join(clone, 'data/demo/proxmox-manager.yaml'),
      [
        'audit: { path: data/demo/audit.log }',
        'environments:',
        '  home:',
        '    cluster: { name: demo, nodes: [{ name: pve01, host: 127.0.0.1 }] }',
        '    tls: { insecure: true }',
        '    credentials: { token: { env: PM_UNUSED_TOKEN } }',
      ].join('\n'),
    );
    const { PM_CONFIG: _unset, ...withoutConfig } = process.env;
    await createAuditLog(join(clone, 'data/demo/audit.log'), { fsync: false }).append({
      actor: 'alice',
      action: 'api.operation.start',
      result: 'started',
    });
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ['--import', join(repoRoot, 'node_modules/tsx/dist/loader.mjs'), join(repoRoot, 'scripts/audit-verify.ts')],
      { cwd: clone, env: withoutConfig },
    );
    expect(stdout).toMatch(/^OK: .*data\/demo\/audit\.log: 1 records/);
  }, 30_000);

  it('exits 1 when there is no log at the path', async () => {
    const missing = await verifyCli(join(tmpdir(), 'pm-no-such-dir', 'audit.log'));
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no audit log at/);
  }, 30_000);
});
