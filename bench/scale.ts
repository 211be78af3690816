/**
 * Scale benchmark: `npm run bench:scale`.
 *
 * For each size (default 64 nodes / 5,000 guests and 500 nodes / 15,000 guests, generated,
 * seed 11):
 *
 *   0. side by side with the baseline commit, in this process: the simulator's
 *      cluster/resources answer, the inventory activity's parse and summary, and the
 *      evacuation planner (bench/scale-compare.ts);
 *   then, with the simulated cluster, the API and the worker as their own processes on a
 *   Temporal dev server, through the API:
 *   1. inventory — the API's read (GET /v1/inventory) and the inventory operation (a workflow);
 *   2. planning — a dry-run evacuation of the node holding the most guests;
 *   3. the evacuation itself — started by one person, approved by another, run to the end.
 *
 * Reports wall times (and simulated time for the evacuation), how many guests moved, and whether
 * any migration ran twice. Numbers, never assertions.
 *
 *   npm run bench:scale -- [--sizes 64x5000,500x15000] [--speed 200] [--baseline <git ref>] [--json out.json]
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { generateScenario } from '../sim/index.js';
import { percentile, startStack, table } from '../testkit/stack/stack.js';
import { BASELINE, compareWithBaseline, type Comparison } from './scale-compare.js';

const { values: args } = parseArgs({
  options: {
    sizes: { type: 'string', default: '64x5000,500x15000' },
    speed: { type: 'string', default: '200' },
    baseline: { type: 'string', default: BASELINE },
    json: { type: 'string' },
  },
});
const SIZES = args.sizes.split(',').map((size) => {
  const [nodes, vms] = size.split('x').map(Number);
  if (!nodes || !vms) throw new Error(`--sizes: '${size}' is not <nodes>x<guests>`);
  return { nodes, vms };
});
const SPEED = Number(args.speed);

interface Step {
  step: string;
  wallS: number;
  detail: string;
}

async function runSize(
  NODES: number,
  VMS: number,
): Promise<{ steps: Step[]; source: string; guestsOnSource: number; startupMs: Record<string, number> }> {
  const began = Date.now();
  const scenario = generateScenario({ nodes: NODES, vms: VMS, seed: 11 });
  const generatedMs = Date.now() - began;
  const perNode = new Map<string, number>();
  for (const g of scenario.guests ?? []) perNode.set(g.node, (perNode.get(g.node) ?? 0) + 1);
  const [source, guestsOnSource] = [...perNode].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]!;

  const stack = await startStack({
    scenario,
    speed: SPEED,
    api: true,
    actors: [
      { actor: 'operator', roles: ['operator'] },
      { actor: 'approver', roles: ['approver'] },
    ],
  });
  const steps: Step[] = [];
  try {
    const { api, cluster, client } = stack;
    const call = async (method: string, path: string, actor: string, body?: unknown) => {
      const response = await fetch(`${api!.url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${cluster.apiTokens[actor]}`,
          ...(body ? { 'content-type': 'application/json' } : {}),
        },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      const json = (await response.json()) as Record<string, unknown>;
      if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(json)}`);
      return json;
    };
    const timed = async <T>(step: string, fn: () => Promise<T>, detail: (value: T) => string): Promise<T> => {
      const t = performance.now();
      const value = await fn();
      steps.push({ step, wallS: Number(((performance.now() - t) / 1000).toFixed(2)), detail: detail(value) });
      console.log(`  ${step}: ${steps.at(-1)!.wallS} s`);
      return value;
    };
    console.log(
      `scale: ${NODES} nodes, ${VMS} guests (generated in ${generatedMs} ms); largest node ${source} with ${guestsOnSource} guests`,
    );

    // 1. Inventory: the API's own read, five times from its shared snapshot and three times
    //    fresh from PVE, and the workflow.
    for (const [label, query] of [
      ['GET /v1/inventory (median of 5)', ''],
      ['GET /v1/inventory?fresh=true (PVE read, median of 3)', '&fresh=true'],
    ] as const) {
      const reads: number[] = [];
      let guests = 0;
      for (let i = 0; i < (query ? 3 : 5); i++) {
        const t = performance.now();
        const inventory = (await call('GET', `/v1/inventory?environment=home${query}`, 'operator')) as {
          guests?: unknown[];
        };
        reads.push(performance.now() - t);
        guests = inventory.guests?.length ?? guests;
      }
      steps.push({
        step: label,
        wallS: Number((percentile(reads, 50) / 1000).toFixed(2)),
        detail: `${guests} guests listed`,
      });
      console.log(`  ${label}: ${steps.at(-1)!.wallS} s`);
    }
    await timed(
      'inventory operation (workflow)',
      async () => {
        const started = (await call('POST', '/v1/operations/inventory', 'operator', { environment: 'home' })) as {
          id: string;
        };
        return (await client.workflow.getHandle(started.id).result()) as { totals: Record<string, number> };
      },
      (summary) =>
        Object.entries(summary.totals)
          .map(([k, v]) => `${v} ${k}`)
          .join(', '),
    );

    // 2. Planning: a dry run answers with the plan.
    const request = {
      environment: 'home',
      node: source,
      maxParallel: 8,
      maxParallelPerTarget: 2,
      onFailure: 'continue',
    };
    await timed(
      `plan evacuation of ${source} (dry run)`,
      async () =>
        (await call('POST', '/v1/operations/evacuation', 'operator', { ...request, dryRun: true })) as {
          result: { plan: { details: { moves: unknown[]; leftBehind: unknown[] }; estimatedDurationMs: number } };
        },
      (r) =>
        `${r.result.plan.details.moves.length} moves, ${r.result.plan.details.leftBehind.length} left behind, estimated ${Math.round(r.result.plan.estimatedDurationMs / 1000)} s`,
    );

    // 3. The evacuation: requested by one person, approved by another, run to the end.
    const simStart = cluster.sim.clock.now();
    await timed(
      `evacuate ${source} (approve + run)`,
      async () => {
        const started = (await call('POST', '/v1/operations/evacuation', 'operator', request)) as {
          id: string;
          links: { self: string };
        };
        for (;;) {
          const detail = (await call('GET', started.links.self, 'approver')) as { status?: { phase: string } };
          if (detail.status?.phase === 'awaiting-approval') break;
          if (detail.status?.phase === 'failed') throw new Error(`planning failed: ${JSON.stringify(detail.status)}`);
          await new Promise((r) => setTimeout(r, 100));
        }
        await call('POST', `${started.links.self}/approve`, 'approver', { planVersion: 1 });
        return (await client.workflow.getHandle(started.id).result()) as {
          result: { outcome: string; guests: { vmid: number; state: string }[] };
        };
      },
      (r) => {
        const moved = r.result.guests.filter((g) => g.state === 'migrated').length;
        const migrations = (vmid: number) =>
          cluster.sim.counters.tasks('qmigrate', vmid) + cluster.sim.counters.tasks('vzmigrate', vmid);
        const duplicates = r.result.guests.filter((g) => migrations(g.vmid) > 1).length;
        const simulatedS = Math.round((cluster.sim.clock.now() - simStart) / 1000);
        return `${r.result.outcome}: ${moved} migrated, ${r.result.guests.length - moved} not; ${simulatedS} s simulated; ${duplicates} migrated twice`;
      },
    );

    return { steps, source, guestsOnSource, startupMs: { generate: generatedMs, ...stack.startup } };
  } finally {
    await stack.stop();
  }
}

interface SizeResult extends Awaited<ReturnType<typeof runSize>> {
  nodes: number;
  vms: number;
  compared: Comparison[];
}

async function main(): Promise<void> {
  const results: SizeResult[] = [];
  for (const { nodes, vms } of SIZES) {
    console.log(`\n${nodes} nodes, ${vms} guests: side by side with ${args.baseline}`);
    const compared: Comparison[] = await compareWithBaseline({ nodes, vms, ref: args.baseline });
    for (const c of compared) console.log(`  ${c.what}: ${c.baselineMs} ms then, ${c.nowMs} ms now (${c.note})`);
    const run = await runSize(nodes, vms);
    results.push({ nodes, vms, compared, ...run });
  }
  const size = (r: SizeResult) => `${r.nodes} / ${r.vms}`;
  console.log(
    `\n${table([
      ['nodes / guests', 'step', `${args.baseline} s`, 'now s', 'result'],
      ...results.flatMap((r) => [
        ...r.compared.map((c) => [
          size(r),
          c.what,
          (c.baselineMs / 1000).toFixed(2),
          (c.nowMs / 1000).toFixed(2),
          c.note,
        ]),
        ...r.steps.map((s) => [size(r), s.step, '', s.wallS.toFixed(2), s.detail]),
      ]),
    ])}\n`,
  );
  for (const r of results)
    console.log(
      `startup ${size(r)}: ${Object.entries(r.startupMs)
        .map(([k, v]) => `${k} ${v} ms`)
        .join(', ')}`,
    );
  if (args.json)
    await writeFile(args.json, JSON.stringify({ speed: SPEED, baseline: args.baseline, results }, null, 2));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench:scale: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
