import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const dump = 'test/fixtures/rehearsal/cluster-resources.json';
let out: string;

function rehearse(...args: string[]) {
  return promisify(execFile)(process.execPath, ['--import', 'tsx', 'scripts/rehearse.ts', ...args], { cwd: repo }).then(
    ({ stdout }) => ({ code: 0, stdout, stderr: '' }),
    (err: { code: number; stdout: string; stderr: string }) => ({
      code: err.code,
      stdout: err.stdout,
      stderr: err.stderr,
    }),
  );
}

beforeAll(async () => {
  out = await mkdtemp(join(tmpdir(), 'pm-rehearse-'));
});
afterAll(async () => {
  await rm(out, { recursive: true, force: true });
});

describe('npm run rehearse', () => {
  it('imports a dump, prints and writes every guess, and says how to start the copy', async () => {
    const { code, stdout } = await rehearse('--dump', dump, '--out', out, '--prepare-only');
    const written = await readFile(join(out, 'guesses.txt'), 'utf8');

    expect(code).toBe(0);
    expect(stdout).toContain(`==> Inventory ${dump}: 4 nodes, 22 guests, 5 storages`);
    expect(written).toMatch(/^- PVE version of every node/);
    for (const line of written.trim().split('\n')) expect(stdout).toContain(`  ${line}`);
    expect(stdout).toContain(`./scripts/demo.sh --scenario ${dump}`);
  });

  it('asks for exactly one source', async () => {
    const { code, stderr } = await rehearse('--out', out);
    expect(code).toBe(2);
    expect(stderr).toMatch(/^give --dump FILE or --from-env NAME/);
  });

  it('refuses a file that is no inventory, saying where', async () => {
    const { code, stderr } = await rehearse('--dump', 'package.json', '--out', out, '--prepare-only');
    expect(code).toBe(1);
    expect(stderr).toMatch(/^invalid scenario .*package\.json:/);
  });
});
