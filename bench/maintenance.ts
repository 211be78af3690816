/**
 * Rolling maintenance benchmark: `npm run bench:maintenance`.
 *
 * Runs the real workflow (Temporal dev server, worker, the simulator's HTTPS API and SSH) on
 * fresh simulated clusters and sets the total duration against the sum of the per-node lower
 * bounds — what no orchestrator can beat on the simulator, node by node:
 *
 *   every byte the node's evacuation moves, over the node's own link, out and back again
 *   + the upgrade as the simulator charges it (apt-get update 3 s, 2 s per package)
 *   + the reboot (1 s until the node goes down, then its reboot_seconds)
 *
 * Not in the bound: migration setup, container shutdown and start, HA's delay, the checks.
 * With nodes maintained in groups, a group's bound is that of its slowest node.
 * Durations are simulated time. Writes the tables into docs/maintenance.md (between the
 * bench markers) and prints them. BENCH_SPEED sets the clock speed (default 10).
 */
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createActivities } from '../activities/index.js';
import { withBenchTemporal, writeDocSection, type BenchTemporal } from './harness.js';
import type { MaintenancePlan, NodeTurn } from '../lib/maintenance/plan.js';
import { formatDuration } from '../lib/planning/units.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../testkit/simulated-env.js';
import type { NodeReport } from '../workflows/maintenance-definitions.js';
import { approveWhenPlanned } from '../testkit/evacuation-run.js';
import { generateScenario } from '../sim/scenario-generate.js';
import type { Scenario } from '../sim/scenario.js';
import {
  maintenanceInput,
  maintenanceScenario,
  pendingUpgrade,
  startMaintenance,
  type MaintenanceBody,
} from '../testkit/maintenance-run.js';
import { withAutomationToken } from '../testkit/scenarios.js';
import { createWorker } from '../worker/create.js';

const SPEED = Number(process.env['BENCH_SPEED'] ?? 10);
/** BENCH_CASES='name;name' runs only those cases (and leaves the docs alone). */
const ONLY = process.env['BENCH_CASES']?.split(';');
/** PVE-like polling (250 ms rising to 1 s of real time; a rebooting node every 2 s), scaled to the simulated clock. */
const POLLING = { pollMs: Math.max(5, Math.round(250 / SPEED)), maxPollMs: Math.max(10, Math.round(1000 / SPEED)) };
const NODE_POLL_MS = Math.max(10, Math.round(2000 / SPEED));
const DOC = fileURLToPath(new URL('../docs/maintenance.md', import.meta.url));
const MARKERS = ['<!-- bench:maintenance:start -->', '<!-- bench:maintenance:end -->'] as const;
/** What the simulator charges (sim/ssh/shell.ts): apt-get update, each package, the delay before a reboot takes the node down. */
const APT_UPDATE_S = 3;
const APT_PACKAGE_S = 2;
const REBOOT_DELAY_S = 1;

interface Case {
  name: string;
  description: string;
  scenario: Scenario;
  rebootSeconds: number;
  body: Omit<MaintenanceBody, 'environment'>;
}

/**
 * A rack of four 256 GiB nodes (10 GbE) with 110 guests, generated (seed 16): VMs on shared
 * and local storage, containers, HA-managed VMs, stopped guests (they stay), and the rules
 * a placement must keep while any one node is empty — three databases kept apart
 * (`anti-affinity-db`), a web pair kept together (`affinity-web`), two HA VMs kept apart by a
 * negative HA resource-affinity rule and one preferring pve01.
 */
export function rackScenario(rebootSeconds: number): Scenario {
  const generated = generateScenario({
    nodes: 4,
    vms: 110,
    seed: 16,
    templates: 0,
    memoryPressure: 0.5,
    lxcFraction: 0.12,
    haFraction: 0.1,
    passthroughFraction: 0,
  });
  const guests = generated.guests!;
  const runningVms = guests.filter((g) => g.type === 'qemu' && g.status === 'running' && !g.ha);
  const onNode = (node: string) => runningVms.filter((g) => g.node === node);
  // Three databases on three different nodes, a web pair on one node.
  for (const node of ['pve02', 'pve03', 'pve04']) onNode(node)[0]!.tags = ['db', 'anti-affinity-db'];
  for (const g of onNode('pve01').slice(0, 2)) g.tags = ['web', 'affinity-web'];
  const ha = guests.filter((g) => g.ha && g.status === 'running').map((g) => `vm:${g.vmid}`);
  return withAutomationToken({
    ...generated,
    name: 'rack-4x256',
    pveversion: '9.1.2',
    kernel: '6.17.2-1-pve',
    nodes: generated.nodes.map((n) => ({ ...n, reboot_seconds: rebootSeconds, upgrade: pendingUpgrade() })),
    tokens: [],
    ha_rules: [
      {
        rule: 'ha-apart',
        type: 'resource-affinity',
        affinity: 'negative',
        resources: ha.slice(0, 2),
        nodes: [],
        strict: false,
      },
      { rule: 'ha-prefers-pve01', type: 'node-affinity', resources: ha.slice(2, 3), nodes: ['pve01'], strict: false },
    ],
  });
}

const CASES: Case[] = [
  {
    name: 'homelab-3',
    description:
      '3 nodes (10/10/2.5 GbE), 5 guests each (VMs on NFS and local disks, a container, an HA VM), 120 s reboots',
    scenario: maintenanceScenario({ nodes: 3, guestsPerNode: 4, rebootSeconds: 120 }),
    rebootSeconds: 120,
    body: {},
  },
  {
    name: 'rack-5',
    description: '5 nodes, 9 guests each, 120 s reboots, one node at a time',
    scenario: maintenanceScenario({ nodes: 5, guestsPerNode: 8, rebootSeconds: 120 }),
    rebootSeconds: 120,
    body: {},
  },
  {
    name: 'rack-5, 2 at a time',
    description: 'the same, two nodes at a time (3 of 5 stay up: quorum)',
    scenario: maintenanceScenario({ nodes: 5, guestsPerNode: 8, rebootSeconds: 120 }),
    rebootSeconds: 120,
    body: { parallelNodes: 2 },
  },
  {
    name: 'rack-4x256',
    description:
      'generated: 4 × 256 GiB nodes (10 GbE), 110 guests (containers, HA VMs, affinity and anti-affinity rules), 120 s reboots',
    scenario: rackScenario(120),
    rebootSeconds: 120,
    body: { includeStopped: false },
  },
];

/**
 * Today's approach, for the comparison: the same cases measured at commit bdb1f27 (2026-12-06,
 * BENCH_SPEED=10, on the same shared machine), before returns were planned like evacuations
 * and nodes overlapped — each node's round ended before the next began, and its guests came
 * back at most two at a time. Keeping that strategy selectable only for this table would keep
 * dead code; the figures are recorded instead.
 */
const TODAY: Record<string, { totalS: number; boundS: number }> = {
  'homelab-3': { totalS: 968, boundS: 747 },
  'rack-5': { totalS: 2097, boundS: 1550 },
  'rack-5, 2 at a time': { totalS: 1421, boundS: 1036 },
  'rack-4x256': { totalS: 3870, boundS: 3140 },
};

type Temporal = BenchTemporal;

interface NodeRow {
  node: string;
  steps: Record<string, number>;
  totalS: number;
  boundS: number;
}

interface Run {
  totalS: number;
  boundS: number;
  estimateS: number;
  moved: number;
  nodes: NodeRow[];
  wallS: number;
}

/** The per-node lower bound, in simulated seconds. */
function nodeBoundS(env: SimulatedEnvironment, turn: NodeTurn, packages: number, rebootSeconds: number): number {
  const link = env.sim.state.node(turn.node).linkBytesPerSecond;
  const bytes = turn.evacuation.moves.reduce((sum, m) => sum + m.transferBytes, 0);
  return (2 * bytes) / link + APT_UPDATE_S + APT_PACKAGE_S * packages + REBOOT_DELAY_S + rebootSeconds;
}

function stepSeconds(report: NodeReport): Record<string, number> {
  return Object.fromEntries(
    report.steps
      .filter((s) => s.startedAt && s.endedAt)
      .map((s) => [s.id, ((Date.parse(s.endedAt!) - Date.parse(s.startedAt!)) * SPEED) / 1000]),
  );
}

async function run(t: Temporal, c: Case): Promise<Run> {
  const env = await startSimulatedEnvironment({
    scenario: c.scenario,
    speed: SPEED,
    environment: `bench-${randomUUID().slice(0, 6)}`,
  });
  const taskQueue = `bench-${randomUUID().slice(0, 8)}`;
  const worker = await createWorker({
    connection: t.connection,
    namespace: t.namespace,
    taskQueue,
    workflowBundle: { code: t.bundle },
    activities: createActivities({ ...env.deps, taskPolling: POLLING, pollMs: NODE_POLL_MS }),
  });
  const running = worker.run();
  try {
    const handle = await startMaintenance(
      t.client,
      taskQueue,
      maintenanceInput({ environment: env.environment, ...c.body }),
    );
    const planned = await approveWhenPlanned(handle, 'bench-approver');
    const plan = planned.plan!.details as MaintenancePlan;
    const began = env.sim.clock.now();
    const wallBegan = Date.now();
    const { result } = await handle.result();
    if (result?.outcome !== 'completed')
      throw new Error(`${c.name}: ${result?.outcome}: ${result?.stoppedBecause ?? ''}`);
    const totalS = (env.sim.clock.now() - began) / 1000;

    const packages = 3;
    const bounds = new Map(plan.turns.map((turn) => [turn.node, nodeBoundS(env, turn, packages, c.rebootSeconds)]));
    const nodes = result.nodes.map((report) => {
      const steps = stepSeconds(report);
      const times = report.steps.filter((s) => s.startedAt && s.endedAt);
      const totalNode =
        ((Math.max(...times.map((s) => Date.parse(s.endedAt!))) -
          Math.min(...times.map((s) => Date.parse(s.startedAt!)))) *
          SPEED) /
        1000;
      return { node: report.node, steps, totalS: totalNode, boundS: bounds.get(report.node)! };
    });
    return {
      totalS,
      boundS: plan.batches.reduce((sum, batch) => sum + Math.max(...batch.map((n) => bounds.get(n)!)), 0),
      estimateS: planned.plan!.estimatedDurationMs / 1000,
      moved: result.nodes.reduce((sum, n) => sum + n.moved, 0),
      nodes,
      wallS: (Date.now() - wallBegan) / 1000,
    };
  } finally {
    worker.shutdown();
    await running;
    await env.stop();
  }
}

function s(x: number): string {
  return `${Math.round(x)} s`;
}

function summaryTable(rows: { c: Case; r: Run }[]): string {
  const today = (c: Case) => {
    const t = TODAY[c.name];
    return t ? `${s(t.totalS)} | ${(t.totalS / t.boundS).toFixed(2)}` : '— | —';
  };
  return [
    '| case | guests moved (out and back) | lower bound (Σ per node) | today (bdb1f27) | × bound | now | × bound | plan estimate | wall |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(
      ({ c, r }) =>
        `| ${c.name}: ${c.description} | ${r.moved} | ${s(r.boundS)} | ${today(c)} | ${s(r.totalS)} | ${(r.totalS / r.boundS).toFixed(2)} | ${formatDuration(r.estimateS * 1000)} | ${s(r.wallS)} |`,
    ),
  ].join('\n');
}

function nodeTable(c: Case, r: Run): string {
  const cell = (row: NodeRow, id: string) => (row.steps[id] === undefined ? '—' : s(row.steps[id]!));
  return [
    `#### ${c.name}, per node (simulated seconds)`,
    '',
    '| node | evacuate | upgrade | reboot (until back) | return | node total | node lower bound | × |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...r.nodes.map(
      (row) =>
        `| ${row.node} | ${cell(row, 'evacuate')} | ${cell(row, 'upgrade')} | ${cell(row, 'reboot')} | ${cell(row, 'return')} | ${s(row.totalS)} | ${s(row.boundS)} | ${(row.totalS / row.boundS).toFixed(2)} |`,
    ),
  ].join('\n');
}

async function main(): Promise<void> {
  await withBenchTemporal(async (t) => {
    const rows: { c: Case; r: Run }[] = [];
    for (const c of CASES.filter((x) => !ONLY || ONLY.includes(x.name))) {
      console.error(`[bench] ${c.name}`);
      rows.push({ c, r: await run(t, c) });
    }
    const tables = [summaryTable(rows), ...rows.map(({ c, r }) => nodeTable(c, r))].join('\n\n');
    console.log(tables);
    // A partial run does not replace the documented table.
    if (!ONLY) await writeDoc(tables);
  });
}

function writeDoc(tables: string): Promise<void> {
  return writeDocSection(
    DOC,
    MARKERS,
    `at clock speed ${SPEED} (\`BENCH_SPEED=${SPEED} npm run bench:maintenance\`).`,
    tables,
  );
}

await main();
