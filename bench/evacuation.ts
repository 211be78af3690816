/**
 * Evacuation benchmark: `npm run bench:evacuation`.
 *
 * On each scenario, on a fresh simulated cluster each time, side by side:
 *   (a) sequential — the seeds' procedure: plan, approve, one migration at a time (this
 *       workflow with maxParallel 1);
 *   (b) migrateall — PVE's own bulk migration: one target, a fixed pool of workers, exit
 *       statuses unchecked (bench/migrateall.ts);
 *   (c) this workflow, with its default limits;
 *   (d) the lower bound: every byte the plan moves, over the source node's link.
 * The workflow runs for real: a Temporal dev server, a worker, the simulator's HTTPS API.
 * Makespans are simulated time; the orchestration overhead is wall time.
 *
 * Writes the table into docs/evacuation.md (between the bench markers) and prints it.
 * BENCH_SPEED sets the simulator's clock speed (default 10 simulated seconds per second).
 */
import { signed } from '../testkit/approvals.js';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createActivities } from '../activities/index.js';
import { withBenchTemporal, writeDocSection, type BenchTemporal } from './harness.js';
import type { EvacuationInput } from '../lib/operations/catalog.js';
import type { EvacuationPlan } from '../lib/planning/evacuation.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../testkit/simulated-env.js';
import { approveUpdate } from '../workflows/definitions.js';
import type { GuestOutcome } from '../workflows/migrate-guests.js';
import { evacuationInput, startEvacuation, waitForStatus } from '../testkit/evacuation-run.js';
import { DEFAULT_MAX_WORKERS, migrateAll } from './migrateall.js';
import { sampleCluster, type Samples } from './sampler.js';
import { benchScenarios, type BenchScenario } from '../testkit/scenarios.js';
import { createWorker } from '../worker/create.js';

const SPEED = Number(process.env['BENCH_SPEED'] ?? 10);
/** PVE-like polling (250 ms rising to 1 s of real time), scaled to the simulated clock. */
const POLLING = { pollMs: Math.max(5, Math.round(250 / SPEED)), maxPollMs: Math.max(10, Math.round(1000 / SPEED)) };
const HEADROOM = 0.2;
const DOC = fileURLToPath(new URL('../docs/evacuation.md', import.meta.url));
const MARKERS = ['<!-- bench:evacuation:start -->', '<!-- bench:evacuation:end -->'] as const;

interface Run {
  strategy: string;
  makespanS: number;
  moved: number;
  failed: number;
  stayed: number;
  /** Node -> peak memory as a share of its total. */
  peaks: Map<string, number>;
  /** Mean wall milliseconds per migration that the workflow added around PVE's tasks. */
  overheadMs?: number;
  /** Simulated seconds from approval to the first PVE task, plus from the last task's end to the result. */
  edgesS?: number;
  plan?: EvacuationPlan;
  /** Bytes per second of the source node's link. */
  sourceLink: number;
}

type Temporal = BenchTemporal;

function simulated(s: BenchScenario): Promise<SimulatedEnvironment> {
  return startSimulatedEnvironment({ scenario: s.scenario, speed: SPEED });
}

/** Where each guest ended up, and how many migration tasks failed. */
function tally(env: SimulatedEnvironment, source: string, guestsBefore: number[], samples: Samples) {
  const stayed = guestsBefore.filter((vmid) => env.sim.state.guests.get(vmid)?.node === source).length;
  const failed = [...samples.tasks.values()].filter(
    (t) => t.type !== 'hamigrate' && t.exitstatus && t.exitstatus !== 'OK',
  ).length;
  return { moved: guestsBefore.length - stayed, failed, stayed };
}

function peaksOf(env: SimulatedEnvironment, samples: Samples): Map<string, number> {
  return new Map([...samples.peakMemory].map(([node, bytes]) => [node, bytes / env.sim.state.node(node).memory]));
}

function guestsOn(env: SimulatedEnvironment, node: string): number[] {
  return [...env.sim.state.guests.values()].filter((g) => g.node === node).map((g) => g.vmid);
}

async function runWorkflow(
  t: Temporal,
  s: BenchScenario,
  strategy: string,
  overrides: Partial<EvacuationInput>,
): Promise<Run> {
  const env = await simulated(s);
  const taskQueue = `bench-${randomUUID().slice(0, 8)}`;
  const worker = await createWorker({
    connection: t.connection,
    namespace: t.namespace,
    taskQueue,
    workflowBundle: { code: t.bundle },
    activities: createActivities({ ...env.deps, taskPolling: POLLING }),
  });
  const running = worker.run();
  try {
    const before = guestsOn(env, s.source);
    const input = evacuationInput({
      environment: env.environment,
      node: s.source,
      containers: 'restart',
      ...overrides,
    });
    const handle = await startEvacuation(t.client, taskQueue, input);
    const planned = await waitForStatus(handle, (st) => st.phase === 'awaiting-approval' || st.phase === 'failed');
    if (planned.phase === 'failed') throw new Error(`planning ${s.name} failed: ${planned.error}`);
    const sampler = sampleCluster(env.sim);
    const began = env.sim.clock.now();
    await handle.executeUpdate(approveUpdate, {
      args: [signed(handle.workflowId, 'approved', { by: 'bench-approver', planVersion: planned.plan!.version })],
    });
    const { result } = await handle.result();
    const finished = env.sim.clock.now();
    const makespanS = (finished - began) / 1000;
    const samples = sampler.stop();
    const tasks = [...samples.tasks.values()];
    // Before the first PVE task (approval, audit, marker, child start) and after the last (verify, audit).
    const edgesS =
      (Math.min(...tasks.map((x) => x.start)) - began + (finished - Math.max(...tasks.map((x) => x.end ?? 0)))) / 1000;

    // The workflow's view of each migration (wall time) against PVE's (the guest's tasks).
    const overheads = (result?.guests ?? [])
      .filter((g): g is GuestOutcome => g.state === 'migrated' && g.durationMs !== undefined)
      .map((g) => {
        const tasks = [...samples.tasks.values()].filter((x) => x.vmid === g.vmid && x.end !== undefined);
        const pveMs = (Math.max(...tasks.map((x) => x.end!)) - Math.min(...tasks.map((x) => x.start))) / SPEED;
        return g.durationMs! - pveMs;
      });
    return {
      strategy,
      makespanS,
      ...tally(env, s.source, before, samples),
      peaks: peaksOf(env, samples),
      overheadMs: overheads.reduce((a, b) => a + b, 0) / Math.max(1, overheads.length),
      edgesS,
      plan: planned.plan!.details as EvacuationPlan,
      sourceLink: env.sim.state.node(s.source).linkBytesPerSecond,
    };
  } finally {
    worker.shutdown();
    await running;
    await env.stop();
  }
}

async function runMigrateAll(s: BenchScenario): Promise<Run> {
  const env = await simulated(s);
  try {
    const client = await env.deps.pve(env.environment);
    const before = guestsOn(env, s.source);
    const sampler = sampleCluster(env.sim);
    const began = env.sim.clock.now();
    const { target } = await migrateAll(client, s.source, { maxWorkers: DEFAULT_MAX_WORKERS, polling: POLLING });
    const makespanS = (env.sim.clock.now() - began) / 1000;
    const samples = sampler.stop();
    return {
      strategy: `migrateall (max-workers ${DEFAULT_MAX_WORKERS}, all to ${target})`,
      makespanS,
      ...tally(env, s.source, before, samples),
      peaks: peaksOf(env, samples),
      sourceLink: env.sim.state.node(s.source).linkBytesPerSecond,
    };
  } finally {
    await env.stop();
  }
}

function table(s: BenchScenario, runs: Run[], boundS: number): string {
  const targets = [...runs[0]!.peaks.keys()].filter((n) => n !== s.source).sort();
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  const lines = [
    `### ${s.name}: ${s.description}`,
    '',
    `| strategy | makespan (sim) | × lower bound | moved / failed / stayed | peak memory ${targets.join(', ')} (limit ${pct(1 - HEADROOM)}) | overhead per migration (wall) | before first / after last task (sim) |`,
    '|---|---:|---:|---|---|---:|---:|',
    ...runs.map((r) => {
      const peaks = targets
        .map((n) => `${pct(r.peaks.get(n) ?? 0)}${(r.peaks.get(n) ?? 0) > 1 - HEADROOM + 1e-9 ? ' ⚠' : ''}`)
        .join(', ');
      const overhead = r.overheadMs === undefined ? '—' : `${Math.round(r.overheadMs)} ms`;
      const edges = r.edgesS === undefined ? '—' : `${r.edgesS.toFixed(1)} s`;
      return `| ${r.strategy} | ${r.makespanS.toFixed(0)} s | ${(r.makespanS / boundS).toFixed(2)} | ${r.moved} / ${r.failed} / ${r.stayed} | ${peaks} | ${overhead} | ${edges} |`;
    }),
    `| lower bound: ${(runs.at(-1)!.plan!.totalTransferBytes / 1024 ** 3).toFixed(0)} GiB over the source link | ${boundS.toFixed(0)} s | 1.00 | | | | |`,
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  await withBenchTemporal(async (t) => {
    const sections: string[] = [];
    for (const s of await benchScenarios()) {
      console.error(`[bench] ${s.name}: sequential`);
      const sequential = await runWorkflow(t, s, 'sequential (one at a time)', { maxParallel: 1 });
      console.error(`[bench] ${s.name}: migrateall`);
      const all = await runMigrateAll(s);
      console.error(`[bench] ${s.name}: evacuation`);
      const workflow = await runWorkflow(t, s, 'evacuation (defaults: 4 at once, 2 per target)', {});
      // Every byte this workflow's plan moves must cross the source node's link.
      const bound = workflow.plan!.totalTransferBytes / workflow.sourceLink;
      const section = table(s, [sequential, all, workflow], bound);
      console.log(`${section}\n`);
      sections.push(section);
    }
    await writeDoc(sections.join('\n\n'));
  });
}

function writeDoc(tables: string): Promise<void> {
  return writeDocSection(
    DOC,
    MARKERS,
    `at clock speed ${SPEED} (\`BENCH_SPEED=${SPEED} npm run bench:evacuation\`).`,
    tables,
  );
}

await main();
