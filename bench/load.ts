/**
 * Load benchmark: `npm run bench:load`.
 *
 * The API (`api/main.ts`) and the worker (`worker/main.ts`) run as their own processes, on a
 * Temporal dev server, against a simulated cluster; this process is the client, on loopback:
 *
 *   1. Read load — N keep-alive connections (undici) each sending requests back to back for a
 *      fixed time, per endpoint: requests per second, p50/p99 latency, errors.
 *   2. Operations in flight — M VM operations started through the API at once, on one worker:
 *      first M dry runs (each answered with its plan), then M low-risk starts that run to the
 *      end. Time to accept them all, time until the last one completed, and whether any PVE
 *      task ran twice.
 *
 *   npm run bench:load -- [--connections 32] [--seconds 10] [--operations 300] [--json out.json]
 *
 * Numbers depend on the machine (the API, worker, Temporal and this client share its cores);
 * they are for comparison between runs, never asserted.
 */
import { parseArgs } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { Pool } from 'undici';
import { generateScenario } from '../sim/index.js';
import { hammer, type LoadFigures } from './http-load.js';
import { scanFiles, scanHistories, combine } from '../testkit/stack/secrets.js';
import { startStack, table, type Stack } from '../testkit/stack/stack.js';

const { values: args } = parseArgs({
  options: {
    connections: { type: 'string', default: '32' },
    seconds: { type: 'string', default: '10' },
    operations: { type: 'string', default: '300' },
    json: { type: 'string' },
  },
});
const CONNECTIONS = Number(args.connections);
const SECONDS = Number(args.seconds);
const OPERATIONS = Number(args.operations);

export interface OperationsFigures {
  what: string;
  operations: number;
  acceptedS: number;
  completedS: number;
  completed: number;
  failed: number;
  duplicateTasks: number;
}

async function post(pool: Pool, path: string, token: string, body: unknown): Promise<{ status: number; json: { id?: string } }> {
  const { statusCode, body: stream } = await pool.request({
    method: 'POST',
    path,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: statusCode, json: (await stream.json()) as { id?: string } };
}

/** M operations through the API at once (at most CONNECTIONS requests in flight); then waits for every one. */
async function operationsInFlight(stack: Stack, pool: Pool, token: string, vmids: { vmid: number; name: string }[], dryRun: boolean): Promise<OperationsFigures> {
  const began = performance.now();
  const queue = [...vmids];
  const ids: string[] = [];
  let refused = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      for (let vm = queue.shift(); vm; vm = queue.shift()) {
        const { status, json } = await post(pool, '/v1/operations/vm-action', token, { environment: 'home', vmid: vm.vmid, name: vm.name, action: 'start', dryRun });
        if ((status === 200 || status === 202) && json.id) ids.push(json.id);
        else refused++;
      }
    }),
  );
  const acceptedS = (performance.now() - began) / 1000;
  const outcomes = await Promise.allSettled(ids.map((id) => stack.client.workflow.getHandle(id).result()));
  const completedS = (performance.now() - began) / 1000;
  const counters = stack.cluster.sim.counters;
  return {
    what: dryRun ? 'dry-run vm-action start (plan only)' : 'vm-action start (auto-approved, runs)',
    operations: vmids.length,
    acceptedS: Number(acceptedS.toFixed(2)),
    completedS: Number(completedS.toFixed(2)),
    completed: outcomes.filter((o) => o.status === 'fulfilled').length,
    failed: outcomes.filter((o) => o.status === 'rejected').length + refused,
    duplicateTasks: dryRun ? 0 : vmids.filter((v) => counters.tasks('qmstart', v.vmid) > 1).length,
  };
}

async function main(): Promise<void> {
  // Enough stopped VMs for every operation to start a different one.
  const scenario = generateScenario({ nodes: 8, vms: OPERATIONS + 50, seed: 7, runningFraction: 0, haFraction: 0, lxcFraction: 0 });
  const stack = await startStack({
    scenario,
    speed: 50,
    api: true,
    actors: [
      { actor: 'viewer', roles: ['viewer'] },
      { actor: 'operator', roles: ['operator'] },
    ],
  });
  try {
    const { api, cluster } = stack;
    const pool = new Pool(api!.url, { connections: CONNECTIONS, pipelining: 1 });
    const viewer = cluster.apiTokens['viewer']!;
    const operator = cluster.apiTokens['operator']!;
    const vms = (scenario.guests ?? []).filter((g) => !g.template).slice(0, OPERATIONS).map((g) => ({ vmid: g.vmid, name: g.name }));

    // One completed operation to read the status of.
    const sample = await post(pool, '/v1/operations/inventory', operator, { environment: 'home' });
    await stack.client.workflow.getHandle(sample.json.id!).result();

    console.log(`load: ${CONNECTIONS} connections, ${SECONDS} s per endpoint, ${scenario.nodes.length} nodes / ${scenario.guests?.length} guests`);
    const reads: LoadFigures[] = [];
    for (const [label, path] of [
      ['GET /healthz (no auth, baseline)', '/healthz'],
      ['GET /v1/inventory', '/v1/inventory?environment=home'],
      ['GET /v1/operations/{id} (status)', `/v1/operations/${encodeURIComponent(sample.json.id!)}`],
      ['GET /v1/operations (list)', '/v1/operations?limit=20'],
    ] as const) {
      reads.push(await hammer(pool, { path, token: viewer, label, connections: CONNECTIONS, seconds: SECONDS }));
      console.log(`  ${label}: ${reads.at(-1)!.rps} req/s`);
    }

    const inFlight: OperationsFigures[] = [];
    inFlight.push(await operationsInFlight(stack, pool, operator, vms, true));
    inFlight.push(await operationsInFlight(stack, pool, operator, vms, false));
    await pool.close();

    const scan = combine(
      await scanHistories(stack.client, '', cluster.secrets),
      await scanFiles(cluster.logFiles, cluster.secrets),
    );

    console.log(`\n${table([
      ['endpoint', 'requests', 'req/s', 'p50 ms', 'p99 ms', 'errors'],
      ...reads.map((r) => [r.endpoint, r.requests, r.rps, r.p50Ms, r.p99Ms, r.errors]),
    ])}\n`);
    console.log(`${table([
      ['operations at once', 'count', 'accepted s', 'all done s', 'completed', 'failed', 'dup tasks'],
      ...inFlight.map((o) => [o.what, o.operations, o.acceptedS, o.completedS, o.completed, o.failed, o.duplicateTasks]),
    ])}\n`);
    console.log(`secrets: ${scan.leaks.length} hits in ${scan.workflows} histories and ${scan.files} log files`);

    if (args.json) {
      await writeFile(
        args.json,
        JSON.stringify({ connections: CONNECTIONS, seconds: SECONDS, reads, inFlight, startupMs: stack.startup, secrets: { hits: scan.leaks.length, histories: scan.workflows } }, null, 2),
      );
    }
  } finally {
    await stack.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`bench:load: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
