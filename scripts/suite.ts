/**
 * The fault, load and security suite in one command: `npm run suite`.
 *
 *   1. the suite's tests (test/unit/suite-*, test/integration/suite-*), which record what they
 *      injected and observed;
 *   2. the benchmarks bench/load.ts and bench/scale.ts;
 *   3. `npm audit` of the production dependencies;
 *
 * then prints one summary table and writes it into docs/suite.md (between the results markers).
 *
 *   npm run suite -- [--heavy] [--seed N] [--no-bench] [--no-doc]
 *
 * --heavy runs the heavier variants (PM_SUITE_HEAVY=1: more kills, more kinds, 20,000 fuzz
 * requests, a node that stays offline); --seed changes every random choice (PM_SUITE_SEED).
 * Exit status 0 only when every test and benchmark passed.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { OperationsFigures } from '../bench/load.js';
import type { SuiteFigure } from '../test/support/suite/report.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const DOC = join(repoRoot, 'docs/suite.md');
const MARKERS = ['<!-- suite:results:start -->', '<!-- suite:results:end -->'] as const;

const { values: options } = parseArgs({
  options: {
    heavy: { type: 'boolean', default: process.env.PM_SUITE_HEAVY === '1' },
    seed: { type: 'string' },
    'no-bench': { type: 'boolean', default: false },
    'no-doc': { type: 'boolean', default: false },
  },
});

interface Run {
  code: number;
  output: string;
  seconds: number;
}

/** Runs a command with its output shown as it comes, and kept. */
function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 30 * 60_000): Promise<Run> {
  const began = Date.now();
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const keep = (chunk: Buffer, to: NodeJS.WriteStream) => {
      output += chunk.toString();
      to.write(chunk);
    };
    child.stdout.on('data', (c: Buffer) => keep(c, process.stdout));
    child.stderr.on('data', (c: Buffer) => keep(c, process.stderr));
    const timer = setTimeout(() => child.kill('SIGTERM'), timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, output, seconds: Math.round((Date.now() - began) / 1000) });
    });
  });
}

const tsx = (script: string, args: string[] = []) => run(process.execPath, ['--import', 'tsx', script, ...args]);

/** What `bench/load.ts --json` writes (its figures' types, read back here). */
interface LoadResult {
  connections: number;
  seconds: number;
  reads: { endpoint: string; requests: number; rps: number; p50Ms: number; p99Ms: number; errors: number }[];
  inFlight: OperationsFigures[];
  secrets: { hits: number; histories: number };
}

interface ScaleResult {
  speed: number;
  baseline: string;
  results: {
    nodes: number;
    vms: number;
    compared: { what: string; baselineMs: number; nowMs: number; note: string }[];
    steps: { step: string; wallS: number; detail: string }[];
  }[];
}

/** `npm audit` of what ships; the registry may not offer the audit endpoint at all. */
async function audit(): Promise<string> {
  const result = await run('npm', ['audit', '--omit=dev', '--audit-level=high', '--json'], {}, 120_000);
  let report: { metadata?: { vulnerabilities?: Record<string, number> }; error?: { summary?: string } } | undefined;
  try {
    report = JSON.parse(result.output.slice(result.output.indexOf('{'))) as typeof report;
  } catch {
    report = undefined;
  }
  const counts = report?.metadata?.vulnerabilities;
  if (counts) {
    const found = Object.entries(counts).filter(([level, n]) => level !== 'total' && n > 0);
    return found.length
      ? `${found.map(([level, n]) => `${n} ${level}`).join(', ')} (exit ${result.code})`
      : 'no known vulnerabilities';
  }
  const why =
    report?.error?.summary ?? /npm (?:error|warn) audit (.+)/.exec(result.output)?.[1] ?? `exit ${result.code}`;
  return `could not run: ${why.split('\n')[0]}`;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function summary(
  figures: SuiteFigure[],
  tests: Run,
  load: LoadResult | undefined,
  scale: ScaleResult | undefined,
  auditResult: string,
  seed: string,
): string {
  const rows: string[] = [];
  const row = (section: string, what: string, result: string, note = '') =>
    rows.push(`| ${section} | ${cell(what)} | ${cell(result)} | ${cell(note)} |`);
  const value = (f: SuiteFigure) => `${f.value}${f.unit ? ` ${f.unit}` : ''}`;
  for (const section of ['faults', 'security', 'secrets']) {
    for (const f of figures.filter((x) => x.section === section)) row(section, f.name, value(f), f.note);
  }
  if (load) {
    for (const r of load.reads)
      row(
        'load',
        `${r.endpoint}, ${load.connections} connections`,
        `${r.rps} req/s`,
        `p50 ${r.p50Ms} ms, p99 ${r.p99Ms} ms, ${r.errors} errors in ${r.requests} requests`,
      );
    for (const o of load.inFlight) {
      row(
        'load',
        `${o.operations} × ${o.what}, at once on one worker`,
        `all done in ${o.completedS} s`,
        `accepted in ${o.acceptedS} s; ${o.completed} completed, ${o.failed} failed, ${o.duplicateTasks} tasks run twice`,
      );
    }
  }
  for (const r of scale?.results ?? []) {
    const size = `(${r.nodes} nodes, ${r.vms} guests)`;
    for (const c of r.compared)
      row('scale', `${c.what} ${size}`, `${c.nowMs} ms (${scale!.baseline}: ${c.baselineMs} ms)`, c.note);
    for (const s of r.steps) row('scale', `${s.step} ${size}`, `${s.wallS} s`, s.detail);
  }
  row('dependencies', 'npm audit --omit=dev --audit-level=high', auditResult);

  const secretHits =
    figures.filter((f) => f.section === 'secrets').reduce((n, f) => n + Number(f.value), 0) + (load?.secrets.hits ?? 0);
  const duplicates = figures.filter((f) => f.unit === 'duplicates').reduce((n, f) => n + Number(f.value), 0);
  const counted = tests.output.match(/(\d+) passed, (\d+) failed, (\d+) skipped/);
  const headline = [
    `tests: ${counted ? `${counted[1]} passed, ${counted[2]} failed, ${counted[3]} skipped` : `exit ${tests.code}`} in ${tests.seconds} s`,
    `fault scenarios: ${figures.filter((f) => f.section === 'faults').length}`,
    `duplicate PVE writes: ${duplicates}`,
    `secrets found: ${secretHits}`,
  ].join(' · ');
  return [
    `Seed ${seed}${options.heavy ? ', heavy' : ''}; ${new Date().toISOString().slice(0, 10)}; ${headline}.`,
    '',
    '| area | what | result | notes |',
    '|---|---|---|---|',
    ...rows,
  ].join('\n');
}

async function main(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'pm-suite-run-'));
  const reportFile = join(dir, 'figures.jsonl');
  const seed = options.seed ?? process.env.PM_SUITE_SEED ?? '20251122';
  const env = { PM_SUITE_REPORT: reportFile, PM_SUITE_SEED: seed, ...(options.heavy ? { PM_SUITE_HEAVY: '1' } : {}) };
  try {
    console.log(`==> suite tests (seed ${seed}${options.heavy ? ', heavy' : ''})`);
    await writeFile(reportFile, '');
    const tests = await run(
      join(repoRoot, 'node_modules/.bin/vitest'),
      ['run', '--config', 'test/support/suite/vitest.config.ts', 'test/unit/suite-', 'test/integration/suite-'],
      env,
    );
    const figures = (await readFile(reportFile, 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as SuiteFigure);

    let load: LoadResult | undefined;
    let scale: ScaleResult | undefined;
    let benchFailed = false;
    if (!options['no-bench']) {
      console.log('\n==> bench:load');
      const loadRun = await tsx('bench/load.ts', ['--json', join(dir, 'load.json')]);
      if (loadRun.code === 0) load = JSON.parse(await readFile(join(dir, 'load.json'), 'utf8')) as LoadResult;
      console.log('\n==> bench:scale');
      const scaleRun = await tsx('bench/scale.ts', ['--json', join(dir, 'scale.json')]);
      if (scaleRun.code === 0) scale = JSON.parse(await readFile(join(dir, 'scale.json'), 'utf8')) as ScaleResult;
      benchFailed = loadRun.code !== 0 || scaleRun.code !== 0;
    }

    console.log('\n==> npm audit --omit=dev --audit-level=high');
    const auditResult = await audit();

    const text = summary(figures, tests, load, scale, auditResult, seed);
    console.log(`\n==> summary\n\n${text}\n`);
    if (!options['no-doc']) {
      const doc = await readFile(DOC, 'utf8');
      const [start, end] = [doc.indexOf(MARKERS[0]), doc.indexOf(MARKERS[1])];
      if (start < 0 || end < start) throw new Error(`docs/suite.md lacks the markers ${MARKERS.join(' ... ')}`);
      await writeFile(DOC, `${doc.slice(0, start + MARKERS[0].length)}\n${text}\n${doc.slice(end)}`);
      console.log('written to docs/suite.md');
    }
    return tests.code !== 0 || benchFailed ? 1 : 0;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`suite: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
