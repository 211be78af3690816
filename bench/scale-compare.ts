/**
 * The scale benchmark's side-by-side part: the pieces a large cluster made slow, timed in this
 * process as they are now and as they were at a baseline commit (default: before the scale
 * work), on the same generated cluster. The baseline's sources are taken from git
 * (`git archive <ref>`) into node_modules/.cache/pm-baseline/<ref> — so they resolve this
 * checkout's packages — and imported from there.
 *
 *   - simulator: building the `GET /cluster/resources` answer;
 *   - worker: validating that answer and summarising it (the inventory operation's activity);
 *   - planner: the evacuation plan of the fullest node from one snapshot, and whether both
 *     versions make the same plan.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { summarize } from '../activities/inventory.js';
import { inventoryFromResources } from '../lib/inventory.js';
import { describeEvacuation, planEvacuation, type EvacuationRequest } from '../lib/planning/evacuation.js';
import { endpoints } from '../lib/pve/registry.js';
import { SimClock } from '../sim/clock.js';
import { Cluster } from '../sim/cluster.js';
import { clusterResources } from '../sim/ops/views.js';
import { generateScenario } from '../sim/index.js';
import { resolveScenario } from '../sim/scenario.js';
import { defaultPolicy, evacuateEverything, generatedSnapshot } from '../testkit/generated-snapshot.js';

/** The last commit before the scale work (on main). */
export const BASELINE = '3c4cee1';

const root = fileURLToPath(new URL('..', import.meta.url));

export interface Comparison {
  what: string;
  baselineMs: number;
  nowMs: number;
  note: string;
}

/** Median wall time of `runs` calls, in ms. */
function timed(fn: () => unknown, runs = 3): number {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
  }
  return Math.round(times.sort((a, b) => a - b)[Math.floor(runs / 2)]!);
}

async function baselineSources(ref: string): Promise<string> {
  const dir = join(root, 'node_modules', '.cache', 'pm-baseline', ref);
  if (!existsSync(join(dir, 'lib'))) {
    mkdirSync(dir, { recursive: true });
    const archive = execFileSync('git', ['archive', ref, 'lib', 'sim', 'activities', 'worker', 'workflows'], {
      cwd: root,
      maxBuffer: 1 << 30,
    });
    execFileSync('tar', ['-x', '-C', dir], { input: archive });
  }
  return dir;
}

export async function compareWithBaseline(opts: { nodes: number; vms: number; ref?: string }): Promise<Comparison[]> {
  const dir = await baselineSources(opts.ref ?? BASELINE);
  const from = <T>(path: string) => import(join(dir, path)) as Promise<T>;
  const old = {
    cluster: await from<typeof import('../sim/cluster.js')>('sim/cluster.ts'),
    views: await from<typeof import('../sim/ops/views.js')>('sim/ops/views.ts'),
    scenario: await from<typeof import('../sim/scenario.js')>('sim/scenario.ts'),
    clock: await from<typeof import('../sim/clock.js')>('sim/clock.ts'),
    endpoints: await from<typeof import('../lib/pve/registry.js')>('lib/pve/endpoints.ts'),
    inventory: await from<typeof import('../activities/inventory.js')>('activities/inventory.ts'),
    planner: await from<typeof import('../lib/planning/evacuation.js')>('lib/planning/evacuation.ts'),
  };
  const rows: Comparison[] = [];
  const scenario = generateScenario({ nodes: opts.nodes, vms: opts.vms, seed: 11 });
  const everything = () => true;

  // Simulator: the cluster/resources answer, from the same scenario.
  const oldCluster = new old.cluster.Cluster(
    await old.scenario.resolveScenario(scenario),
    new old.clock.SimClock({ speed: 1, manual: true }),
  );
  const newCluster = new Cluster(await resolveScenario(scenario), new SimClock({ speed: 1, manual: true }));
  const answer = JSON.stringify({ data: clusterResources(newCluster, undefined, everything) });
  rows.push({
    what: 'simulator: build the GET /cluster/resources answer',
    baselineMs: timed(() => old.views.clusterResources(oldCluster, undefined, everything)),
    nowMs: timed(() => clusterResources(newCluster, undefined, everything)),
    note: `${(answer.length / 1e6).toFixed(1)} MB of JSON`,
  });

  // Worker: parse, validate and summarise that answer (the inventory operation's activity).
  const oldSchema = old.endpoints.endpoints.clusterResources.returns;
  const newSchema = endpoints.clusterResources.returns;
  const oldSummary = async () => {
    const resources = oldSchema.parse((JSON.parse(answer) as { data: unknown }).data);
    const client = { cluster: { resources: async () => resources } };
    return old.inventory.createInventoryActivities({ pve: async () => client as never }).summarizeInventory('bench');
  };
  const newSummary = () =>
    summarize('bench', inventoryFromResources(newSchema.parse((JSON.parse(answer) as { data: unknown }).data)));
  const same = JSON.stringify(await oldSummary()) === JSON.stringify(newSummary());
  const times = { old: [] as number[], now: [] as number[] };
  for (let i = 0; i < 3; i++) {
    let t = performance.now();
    await oldSummary();
    times.old.push(performance.now() - t);
    t = performance.now();
    newSummary();
    times.now.push(performance.now() - t);
  }
  const median = (xs: number[]) => Math.round(xs.sort((a, b) => a - b)[1]!);
  rows.push({
    what: 'worker: parse, validate and summarise it',
    baselineMs: median(times.old),
    nowMs: median(times.now),
    note: same ? 'same summary' : 'SUMMARIES DIFFER',
  });

  // Planner: the evacuation plan of the fullest node, from one generated snapshot.
  const { snapshot, largestNode } = generatedSnapshot({ nodes: opts.nodes, guests: opts.vms, seed: 11 });
  const request: EvacuationRequest = { ...evacuateEverything, node: largestNode };
  const policy = defaultPolicy;
  const oldPlan = () => old.planner.describeEvacuation(old.planner.planEvacuation(snapshot, request, policy));
  const newPlan = () => describeEvacuation(planEvacuation(snapshot, request, policy));
  const plan = newPlan();
  rows.push({
    what: `planner: evacuation plan of ${largestNode} (${plan.details!.moves.length} moves, ${plan.details!.leftBehind.length} stay)`,
    baselineMs: timed(oldPlan),
    nowMs: timed(newPlan),
    note: samePlan(oldPlan(), plan),
  });
  return rows;
}

/**
 * Whether both planners made the same plan, word for word; or the same moves and stays, when
 * only the reasons differ: a guest no target takes now names the first 100 targets' refusals
 * and counts the rest (lib/planning/evacuation.ts), where the baseline listed all 499.
 */
function samePlan(before: ReturnType<typeof describeEvacuation>, now: ReturnType<typeof describeEvacuation>): string {
  if (JSON.stringify(before) === JSON.stringify(now)) return 'same plan';
  const decisions = (p: ReturnType<typeof describeEvacuation>) =>
    JSON.stringify({
      moves: p.details!.moves,
      stay: p.details!.leftBehind.map(({ reason: _reason, ...guest }) => guest),
    });
  return decisions(before) === decisions(now) ? 'same moves and stays; reasons over 100 targets cut' : 'PLANS DIFFER';
}
