/**
 * cluster-up benchmark: `npm run bench:cluster-up`.
 *
 * The lab profile (3 control planes + 3 workers from the Talos template) brought up for real —
 * a Temporal dev server, a worker, the simulator's HTTPS API and the talosctl stand-in — twice,
 * each time on a fresh simulated homelab:
 *   (a) sequential: the same workflow with maxParallel 1, one VM cloned, configured, booted
 *       and addressed after the other (what an operator does by hand);
 *   (b) parallel: the workflow's default, every VM at once.
 * The VM phase (approval until every VM reported its address: clones, config, boot, DHCP) is
 * simulated time. The Talos phase is wall time: the stand-in answers at once, so what it takes
 * is the worker's own work (processes, files), which the clock speed would only magnify.
 * Beside them, what one full clone of the template takes on the simulator.
 *
 * Writes the table into docs/clusters.md (between the bench markers) and prints it.
 * BENCH_SPEED sets the simulator's clock speed (default 10 simulated seconds per second).
 */
import { signed } from '../testkit/approvals.js';
import { randomUUID } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import { withBenchTemporal, type BenchTemporal } from './harness.js';
import { createActivities } from '../activities/index.js';
import { classified } from '../activities/failures.js';
import { defaultClustersDir, loadClusterProfile } from '../lib/clusters/profile.js';
import { clusterUpOperation, type ClusterUpInput } from '../lib/operations/catalog.js';
import { waitForTask } from '../lib/pve/tasks/wait.js';
import { startSimulatedEnvironment } from '../testkit/simulated-env.js';
import type { ClusterUpResult } from '../workflows/cluster-up.js';
import type { OperationStatus } from '../lib/operations/plan.js';
import { approveUpdate, statusQuery } from '../workflows/definitions.js';
import { waitForStatus } from '../testkit/evacuation-run.js';
import { workerInterceptors } from '../worker/keep-alive.js';

const SPEED = Number(process.env['BENCH_SPEED'] ?? 10);
/** PVE-like polling (250 ms rising to 1 s of real time), scaled to the simulated clock. */
const POLLING = { pollMs: Math.max(5, Math.round(250 / SPEED)), maxPollMs: Math.max(10, Math.round(1000 / SPEED)) };
const PROFILE = 'lab';
const standin = fileURLToPath(new URL('../sim/bin/talosctl', import.meta.url));
const DOC = fileURLToPath(new URL('../docs/clusters.md', import.meta.url));
const MARKERS = ['<!-- bench:cluster-up:start -->', '<!-- bench:cluster-up:end -->'] as const;

interface Run {
  strategy: string;
  maxParallel: number;
  /** Simulated seconds from approval until every VM reported its address. */
  vmsUpS: number;
  /** Wall seconds from there to the result (machine configs, apply, bootstrap, health, kubeconfig). */
  talosS: number;
  clones: number;
  lockTimeouts: number;
  /** Simulated seconds one full clone of the template takes (the simulator's cost model). */
  oneCloneS: number;
  /** The scenario's boot time plus the delay before a guest agent reports an address. */
  bootAndAddressS: number;
}

type Temporal = BenchTemporal;

async function runClusterUp(t: Temporal, strategy: string, maxParallel: number): Promise<Run> {
  const env = await startSimulatedEnvironment({ speed: SPEED });
  const talosState = await mkdtemp(join(tmpdir(), 'pm-bench-talos-'));
  // A fresh simulator per run: the stand-in need not look nodes up in it (that would only add its own cost).
  const talosctl = { binary: standin, env: { TALOSCTL_STANDIN_STATE: talosState } };
  const taskQueue = `bench-${randomUUID().slice(0, 8)}`;
  const worker = await Worker.create({
    interceptors: workerInterceptors,
    connection: t.connection,
    namespace: t.namespace,
    taskQueue,
    workflowBundle: { code: t.bundle },
    activities: {
      ...createActivities(env.deps, { talosctl, polling: POLLING }),
      // The worker's task waiter, polling at the simulated clock's pace like the cluster activities.
      async awaitTask({ environment, upid }: { environment: string; upid: string }) {
        const client = await env.deps.pve(environment);
        return classified('write', async () => ({
          upid,
          exitstatus: (await waitForTask(client, upid, POLLING)).exitstatus ?? 'OK',
        }));
      },
    },
  });
  const running = worker.run();
  try {
    const body = clusterUpOperation.body.parse({ environment: env.environment, profile: PROFILE, maxParallel });
    const input: ClusterUpInput = {
      ...body,
      meta: {
        requester: 'bench',
        environment: env.environment,
        dryRun: false,
        approvalTimeoutMs: 600_000,
        autoApprove: [],
      },
    };
    const handle = await t.client.workflow.start('clusterUp', {
      taskQueue,
      workflowId: clusterUpOperation.workflowId(body, `bench-${randomUUID().slice(0, 8)}`),
      args: [input],
    });
    const planned = await waitForStatus(
      handle,
      (s) => s.phase === 'awaiting-approval' || s.phase === 'failed',
      120_000,
    );
    if (planned.phase === 'failed') throw new Error(`planning failed: ${planned.error}`);
    const began = { sim: env.sim.clock.now(), wall: Date.now() };
    await handle.executeUpdate(approveUpdate, {
      args: [signed(handle.workflowId, 'approved', { by: 'bench-approver', planVersion: planned.plan!.version })],
    });
    const outcome = await handle.result();
    const finishedWall = Date.now();
    if (outcome.outcome !== 'completed') throw new Error(`cluster-up ended ${outcome.outcome}`);
    const result = outcome.result as ClusterUpResult;
    if (result.nodes.length !== 6) throw new Error(`expected 6 nodes, got ${result.nodes.length}`);

    const status: OperationStatus = await handle.query(statusQuery);
    // The simulated clock runs at a constant speed, so a wall instant maps onto it.
    const simAt = (wall: number) => began.sim + (wall - began.wall) * SPEED;
    const lastBoot = Math.max(
      ...status.steps.filter((s) => s.id.startsWith('boot:')).map((s) => Date.parse(s.endedAt!)),
    );
    const clones = env.sim.cluster.tasks.all().filter((task) => task.type === 'qmclone');
    // The simulator's cost model: a full clone copies the template's disks at clone_bytes_per_second.
    const { profile } = await loadClusterProfile(defaultClustersDir(), PROFILE);
    const template = env.sim.state.guests.get(profile.template.vmid)!;
    const templateBytes = template.drives
      .filter((d) => !d.cdrom)
      .reduce((n, d) => n + (env.sim.state.volume(d.volid, template.node)?.size ?? d.size ?? 0), 0);
    return {
      strategy,
      maxParallel,
      vmsUpS: (simAt(lastBoot) - began.sim) / 1000,
      talosS: (finishedWall - lastBoot) / 1000,
      clones: clones.length,
      lockTimeouts: clones.filter((task) => /can't lock file/.test(task.exitstatus ?? '')).length,
      oneCloneS: templateBytes / env.sim.state.timing.clone_bytes_per_second,
      bootAndAddressS: env.sim.state.timing.boot_seconds + env.sim.state.timing.agent_ip_delay_seconds,
    };
  } finally {
    worker.shutdown();
    await running;
    await env.stop();
    await rm(talosState, { recursive: true, force: true });
  }
}

function table(runs: Run[]): string {
  const base = runs[0]!;
  const fmt = (s: number) => s.toFixed(0);
  const oneClone = Math.min(...runs.map((r) => r.oneCloneS));
  const boot = base.bootAndAddressS;
  return [
    '| strategy | VMs at once | VM phase: 6 VMs cloned, configured, booted, addressed (simulated s) | vs sequential | Talos phase with the stand-in (wall s) | clone tasks (lock timeouts) |',
    '|---|---:|---:|---:|---:|---:|',
    ...runs.map(
      (r) =>
        `| ${r.strategy} | ${r.maxParallel} | ${fmt(r.vmsUpS)} | ${(base.vmsUpS / r.vmsUpS).toFixed(2)}x | ${r.talosS.toFixed(1)} | ${r.clones} (${r.lockTimeouts}) |`,
    ),
    '',
    `One full clone of the template takes ${fmt(oneClone)} s on the simulator, and a clone's boot and DHCP lease another ` +
      `${fmt(boot)} s, so one VM alone needs ${fmt(oneClone + boot)} s: clones of a stopped template share its lock (as on PVE), ` +
      `and the parallel VM phase approaches that one-VM time instead of six clones in a row (${fmt(6 * oneClone + boot)} s).`,
  ].join('\n');
}

async function writeDoc(text: string): Promise<void> {
  const doc = await readFile(DOC, 'utf8');
  const start = doc.indexOf(MARKERS[0]);
  const end = doc.indexOf(MARKERS[1]);
  if (start < 0 || end < start) throw new Error(`${DOC} lacks the ${MARKERS.join(' ... ')} markers`);
  const stamp = `Measured ${new Date().toISOString().slice(0, 10)} at clock speed ${SPEED} (\`BENCH_SPEED=${SPEED} npm run bench:cluster-up\`).`;
  await writeFile(DOC, `${doc.slice(0, start + MARKERS[0].length)}\n${stamp}\n\n${text}\n${doc.slice(end)}`);
}

async function main(): Promise<void> {
  await withBenchTemporal(async (t) => {
    console.error('[bench] cluster-up lab: sequential');
    const sequential = await runClusterUp(t, 'sequential (one VM after the other)', 1);
    console.error('[bench] cluster-up lab: parallel');
    const parallel = await runClusterUp(
      t,
      'clusterUp (every VM at once)',
      clusterUpOperation.body.parse({ environment: 'x', profile: PROFILE }).maxParallel,
    );
    const text = table([sequential, parallel]);
    console.log(text);
    await writeDoc(text);
  });
}

await main();
