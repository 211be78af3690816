/**
 * Bulk action benchmark: `npm run bench:bulk`.
 *
 * Shuts down every VM tagged `bulk` on a fresh simulated cluster (200 VMs over four nodes by
 * default), side by side: one guest at a time (the seeds' loop: maxParallel 1) and the
 * bulkAction workflow with bounded parallelism. Everything runs for real — a Temporal dev
 * server, a worker with the production activities, the simulator's HTTPS API — so the wall
 * time includes the orchestration; the makespan is simulated time (PVE's clock).
 *
 * Writes the table into docs/operations.md (between the bench markers) and prints it.
 * BENCH_VMS sets the number of VMs (default 200), BENCH_SPEED the simulator's clock speed
 * (default 20 simulated seconds per wall second).
 */
import { randomUUID } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { withBenchTemporal, type BenchTemporal } from './harness.js';
import { createActivities } from '../activities/index.js';
import { bulkActionOperation } from '../lib/operations/catalog.js';
import { operationInput } from '../testkit/operation-input.js';
import { startSimulatedEnvironment } from '../testkit/simulated-env.js';
import type { BulkGuestResult } from '../workflows/bulk-action.js';
import { bulkScenario } from '../testkit/bulk-scenario.js';
import { createWorker } from '../worker/create.js';

const VMS = Number(process.env['BENCH_VMS'] ?? 200);
const SPEED = Number(process.env['BENCH_SPEED'] ?? 20);
const STRATEGIES = [1, 8, 32];
/** The simulator's `timing.shutdown_seconds` default. */
const SHUTDOWN_S = 8;
const DOC = fileURLToPath(new URL('../docs/operations.md', import.meta.url));
const MARKERS = ['<!-- bench:bulk:start -->', '<!-- bench:bulk:end -->'] as const;

type Temporal = BenchTemporal;

interface Run {
  maxParallel: number;
  wallS: number;
  makespanS: number;
  succeeded: number;
  failed: number;
  /** The most shutdown tasks PVE was running at once. */
  peakTasks: number;
}

async function run(t: Temporal, maxParallel: number): Promise<Run> {
  const env = await startSimulatedEnvironment({ scenario: bulkScenario(VMS), speed: SPEED });
  const taskQueue = `bench-bulk-${randomUUID().slice(0, 8)}`;
  const worker = await createWorker({
    connection: t.connection,
    namespace: t.namespace,
    taskQueue,
    workflowBundle: { code: t.bundle },
    activities: createActivities(env.deps),
    maxConcurrentActivityTaskExecutions: 200,
  });
  const running = worker.run();
  let peakTasks = 0;
  const sampler = setInterval(() => {
    const now = env.sim.cluster.tasks
      .all()
      .filter((task) => task.status === 'running' && task.type === 'qmshutdown').length;
    peakTasks = Math.max(peakTasks, now);
  }, 5);
  try {
    const input = operationInput(
      bulkActionOperation.body,
      {
        environment: env.environment,
        tags: 'bulk',
        action: 'shutdown',
        maxParallel,
      },
      'bench',
      ['low', 'medium'],
    );
    const wallStart = performance.now();
    const simStart = env.sim.clock.now();
    const handle = await t.client.workflow.start('bulkAction', {
      taskQueue,
      workflowId: `bench/bulk/${maxParallel}/${Date.now()}`,
      args: [input],
    });
    const outcome = await handle.result();
    const results = outcome.result as BulkGuestResult[];
    return {
      maxParallel,
      wallS: (performance.now() - wallStart) / 1000,
      makespanS: (env.sim.clock.now() - simStart) / 1000,
      succeeded: results.filter((r) => r.outcome === 'succeeded').length,
      failed: results.filter((r) => r.outcome === 'failed').length,
      peakTasks,
    };
  } finally {
    clearInterval(sampler);
    worker.shutdown();
    await running;
    await env.stop();
  }
}

/** PVE's own time: ceil(VMs / parallel) waves of one 8 s shutdown each. */
function pveBoundS(maxParallel: number): number {
  return Math.ceil(VMS / maxParallel) * SHUTDOWN_S;
}

function table(runs: Run[]): string {
  const [baseline] = runs;
  const label = (r: Run) =>
    r.maxParallel === 1 ? 'one at a time (maxParallel 1)' : `bulkAction, maxParallel ${r.maxParallel}`;
  return [
    `Shut down ${VMS} running VMs tagged \`bulk\` on four nodes; PVE's shutdown takes ${SHUTDOWN_S} s (simulated) per VM, the simulator's clock runs ×${SPEED}.`,
    '',
    '| strategy | wall time | speed-up vs one at a time | simulated time elapsed | PVE alone (waves × 8 s) | succeeded / failed | peak PVE tasks at once |',
    '|---|---:|---:|---:|---:|---|---:|',
    ...runs.map(
      (r) =>
        `| ${label(r)} | ${r.wallS.toFixed(1)} s | ${(baseline!.wallS / r.wallS).toFixed(1)}× | ${r.makespanS.toFixed(0)} s | ${pveBoundS(r.maxParallel)} s | ${r.succeeded} / ${r.failed} | ${r.peakTasks} |`,
    ),
    '',
    `Simulated time includes the worker's own work (dispatch, task polling, the check that each VM stopped) at ×${SPEED}; ` +
      'wall time is what an operator waits on this machine.',
  ].join('\n');
}

async function main(): Promise<void> {
  await withBenchTemporal(async (t) => {
    const runs: Run[] = [];
    for (const maxParallel of STRATEGIES) {
      console.error(`[bench] ${VMS} VMs, maxParallel ${maxParallel}`);
      runs.push(await run(t, maxParallel));
    }
    const section = table(runs);
    console.log(section);
    const doc = await readFile(DOC, 'utf8');
    const [start, end] = MARKERS;
    const from = doc.indexOf(start);
    const to = doc.indexOf(end);
    if (from < 0 || to < from) throw new Error(`${DOC} lacks the ${start} ... ${end} markers`);
    await writeFile(DOC, `${doc.slice(0, from + start.length)}\n${section}\n${doc.slice(to)}`);
    console.error(`[bench] table written to ${DOC}`);
  });
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
  process.exit(1);
});
