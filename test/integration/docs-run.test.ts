/**
 * Docs that run: every `sh`/`bash` block of README.md and docs/*.md is run, in order, against a
 * live demo stack (scripts/dev-stack.ts on free ports and a scratch data directory), the way a
 * reader pastes it — with the demo's tokens loaded, as the docs tell them to. A block that
 * cannot run here says so on the line before it:
 *
 *   <!-- docs-test: skip (reason) -->
 *
 * Blocks use the demo's defaults (127.0.0.1:8080, data/demo/, data/sim/); the test swaps in its own port
 * and directory. curl fails on an HTTP error status, so a route, field or example that drifts
 * from the API fails here, naming the file and line of the block.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { operations } from '../../lib/operations/catalog.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const SKIP = /^\s*<!--\s*docs-test:\s*skip\s*\((.+)\)\s*-->\s*$/;
const FENCE = /^(\s*)```(\S*)\s*$/;

interface DocBlock {
  file: string;
  line: number;
  code: string;
  /** Why it does not run, from its skip marker. */
  skip?: string;
}

/** The shell blocks of a markdown file: fenced `sh`/`bash`, or unlabeled ones that start with a command we run. */
function shellBlocks(file: string, text: string): DocBlock[] {
  const lines = text.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length;
    const end = lines.findIndex((l, j) => j > i && FENCE.test(l) && FENCE.exec(l)![2] === '');
    const code = lines
      .slice(i + 1, end)
      .map((l) => l.slice(Math.min(indent, l.length - l.trimStart().length)))
      .join('\n');
    const lang = open[2]!;
    if (lang === 'sh' || lang === 'bash' || (lang === '' && /^curl\s/.test(code.trimStart()))) {
      const marker = lines
        .slice(0, i)
        .reverse()
        .find((l) => l.trim() !== '');
      blocks.push({
        file,
        line: i + 1,
        code,
        ...(marker && SKIP.test(marker) ? { skip: SKIP.exec(marker)![1]! } : {}),
      });
    }
    i = end;
  }
  return blocks;
}

const docFiles = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .sort()
    .map((f) => `docs/${f}`),
];
const blocks = docFiles.flatMap((file) => shellBlocks(file, readFileSync(join(root, file), 'utf8')));

interface Demo {
  process: ChildProcess;
  apiPort: number;
  dataDir: string;
  output: () => string;
}

async function startDemo(dataDir: string): Promise<Demo> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'scripts/dev-stack.ts',
      '--temporal-port',
      '0',
      '--ui-port',
      '0',
      '--api-port',
      '0',
      '--data-dir',
      dataDir,
    ],
    { cwd: root, stdio: ['ignore', 'pipe', 'pipe'], detached: true },
  );
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const apiPort = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the demo did not come up within 180 s:\n${output}`)), 180_000);
    const check = () => {
      const port = /API:\s+http:\/\/127\.0\.0\.1:(\d+)/.exec(output)?.[1];
      if (port && output.includes('==> Running.')) {
        clearTimeout(timer);
        resolve(Number(port));
      }
    };
    child.stdout!.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the demo exited (code ${code}) before it was up:\n${output}`));
    });
  });
  return { process: child, apiPort, dataDir, output: () => output };
}

/** The block as it runs here: the demo's port and data directory instead of the documented defaults. */
function localised(code: string, demo: Demo): string {
  return code
    .replace(/(127\.0\.0\.1|localhost):8080\b/g, `127.0.0.1:${demo.apiPort}`)
    .replace(/(^|[\s=])data\/(demo|sim)\//g, `$1${demo.dataDir}/$2/`);
}

function run(block: DocBlock, demo: Demo): { status: number | null; output: string } {
  const prelude = [
    // As the docs ask: the demo's tokens in the environment.
    `set -a; . '${demo.dataDir}/demo/api-tokens.env'; set +a`,
    // An HTTP error is a failed command, with the answer shown.
    'curl() { command curl --fail-with-body "$@"; }',
  ].join('\n');
  const result = spawnSync('bash', ['-euo', 'pipefail', '-c', `${prelude}\n${localised(block.code, demo)}`], {
    cwd: root,
    env: { ...process.env, PM_CONFIG: join(demo.dataDir, 'demo/proxmox-manager.yaml') },
    encoding: 'utf8',
    timeout: 90_000,
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('the docs, run against the demo', () => {
  let demo: Demo;
  beforeAll(async () => {
    demo = await startDemo(await mkdtemp(join(tmpdir(), 'pm-docs-')));
  }, 200_000);
  afterAll(async () => {
    if (demo) {
      try {
        process.kill(-demo.process.pid!, 'SIGTERM');
      } catch {
        // already gone
      }
      await new Promise((r) => (demo.process.exitCode !== null ? r(undefined) : demo.process.once('exit', r)));
      await rm(demo.dataDir, { recursive: true, force: true });
    }
  }, 60_000);

  it('finds the blocks, and every skipped one says why', () => {
    expect(blocks.length).toBeGreaterThan(20);
    for (const b of blocks.filter((b) => b.skip !== undefined))
      expect(b.skip!.trim().length, `${b.file}:${b.line}`).toBeGreaterThan(5);
  });

  it('reaches every operation kind in a block that runs on the demo as written', () => {
    const running = blocks.filter((b) => b.skip === undefined).map((b) => b.code);
    // `restore` is not reached by a `restore-drill` request.
    const reaches = (kind: string) => new RegExp(`/v1/operations/${kind}(?![\\w-])`);
    const unreached = operations.map((o) => o.kind).filter((kind) => !running.some((code) => reaches(kind).test(code)));
    expect(unreached).toEqual([]);
  });

  for (const block of blocks) {
    it.skipIf(block.skip !== undefined)(
      `${block.file}:${block.line}${block.skip ? ` (skipped: ${block.skip})` : ''}`,
      () => {
        const { status, output } = run(block, demo);
        expect(status, `${block.file}:${block.line} failed:\n${block.code}\n--- output ---\n${output}`).toBe(0);
      },
      100_000,
    );
  }
});
