/**
 * Load benchmark: `npm run bench:load`.
 *
 * The API (`api/main.ts`) and the worker (`worker/main.ts`) run as their own processes, on a
 * Temporal dev server, against a simulated cluster; this process is the client, on loopback:
 *
 *   1. Read load — N keep-alive connections (undici) each sending requests back to back for a
 *      fixed time, per endpoint: requests per second, p50/p99 latency, errors, and both as
 *      ratios to /healthz in the same run. Each read runs next to the way it was answered
 *      before, where the API still offers it: the inventory read from PVE on every request
 *      (`fresh=true`) against the shared snapshot, and an operation's status by a query to the
 *      worker (`include=plan`) against the status the workflow published.
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

async function post(
  pool: Pool,
  path: string,
  token: string,
  body: unknown,
): Promise<{ status: number; json: { id?: string } }> {
  const { statusCode, body: stream } = await pool.request({
    method: 'POST',
    path,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: statusCode, json: (await stream.json()) as { id?: string } };
}

/** M operations through the API at once (at most CONNECTIONS requests in flight); then waits for every one. */
async function operationsInFlight(
  stack: Stack,
  pool: Pool,
  token: string,
  vmids: { vmid: number; name: string }[],
  dryRun: boolean,
): Promise<OperationsFigures> {
  const began = performance.now();
  const queue = [...vmids];
  const ids: string[] = [];
  let refused = 0;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      for (let vm = queue.shift(); vm; vm = queue.shift()) {
        const { status, json } = await post(pool, '/v1/operations/vm-action', token, {
          environment: 'home',
          vmid: vm.vmid,
          name: vm.name,
          action: 'start',
          dryRun,
        });
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

/** The reads the goal is about: the snapshot inventory, the published status, the list page. */
const goalReads = ['GET /v1/inventory (', 'GET /v1/operations/{id} (', 'GET /v1/operations?'];

const ratio = (value: number, baseline: number) => `${(value / baseline).toFixed(2)}x`;

/** Polls the operation until its plan awaits a decision. */
async function awaitingApproval(pool: Pool, path: string, token: string): Promise<void> {
  for (;;) {
    const { body } = await pool.request({ method: 'GET', path, headers: { authorization: `Bearer ${token}` } });
    const op = (await body.json()) as { state?: string; status?: { phase?: string } };
    if (op.status?.phase === 'awaiting-approval') return;
    if (op.state !== 'running') throw new Error(`the sample operation ended (${op.state}) before awaiting approval`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main(): Promise<void> {
  // Enough stopped VMs for every operation to start a different one.
  const scenario = generateScenario({
    nodes: 8,
    vms: OPERATIONS + 50,
    seed: 7,
    runningFraction: 0,
    haFraction: 0,
    lxcFraction: 0,
  });
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
    const vms = (scenario.guests ?? [])
      .filter((g) => !g.template)
      .slice(0, OPERATIONS)
      .map((g) => ({ vmid: g.vmid, name: g.name }));

    // What a dashboard polls: an operation waiting for its approval (a high-risk delete is never auto-approved).
    const spare = (scenario.guests ?? []).filter((g) => !g.template).at(-1)!;
    const sample = await post(pool, '/v1/operations/vm-action', operator, {
      environment: 'home',
      vmid: spare.vmid,
      name: spare.name,
      action: 'delete',
    });
    const self = `/v1/operations/${encodeURIComponent(sample.json.id!)}`;
    await awaitingApproval(pool, self, viewer);
    const inventory = '/v1/inventory?environment=home';
    const first = await pool.request({
      method: 'GET',
      path: inventory,
      headers: { authorization: `Bearer ${viewer}` },
    });
    await first.body.dump();
    const etag = first.headers['etag'] as string;

    console.log(
      `load: ${CONNECTIONS} connections, ${SECONDS} s per endpoint, ${scenario.nodes.length} nodes / ${scenario.guests?.length} guests`,
    );
    const reads: LoadFigures[] = [];
    for (const [label, path, headers] of [
      ['GET /healthz (no auth, baseline)', '/healthz'],
      ['GET /v1/inventory?fresh=true (PVE read per request, before)', `${inventory}&fresh=true`],
      ['GET /v1/inventory (shared snapshot <= 2 s)', inventory],
      ['GET /v1/inventory + If-None-Match (304)', inventory, { 'if-none-match': etag }],
      ['GET /v1/operations/{id}?include=plan (query to the worker, before)', `${self}?include=plan`],
      ['GET /v1/operations/{id} (published status)', self],
      ['GET /v1/operations?pageSize=20 (list page)', '/v1/operations?pageSize=20'],
    ] as const) {
      reads.push(
        await hammer(pool, {
          path,
          token: viewer,
          label,
          connections: CONNECTIONS,
          seconds: SECONDS,
          ...(headers ? { headers } : {}),
        }),
      );
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

    const [baseline] = reads;
    console.log(
      `\n${table([
        ['endpoint', 'requests', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'req/s : /healthz', 'p99 : /healthz'],
        ...reads.map((r) => [
          r.endpoint,
          r.requests,
          r.rps,
          r.p50Ms,
          r.p99Ms,
          r.errors,
          ratio(r.rps, baseline!.rps),
          ratio(r.p99Ms, baseline!.p99Ms),
        ]),
      ])}\n`,
    );
    for (const r of reads.filter((r) => goalReads.some((label) => r.endpoint.startsWith(label)))) {
      console.log(
        `goal (>= 500 req/s, p99 < 50 ms): ${r.endpoint}: ${r.rps >= 500 && r.p99Ms < 50 ? 'met' : 'not met'}`,
      );
    }
    console.log('');
    console.log(
      `${table([
        ['operations at once', 'count', 'accepted s', 'all done s', 'completed', 'failed', 'dup tasks'],
        ...inFlight.map((o) => [
          o.what,
          o.operations,
          o.acceptedS,
          o.completedS,
          o.completed,
          o.failed,
          o.duplicateTasks,
        ]),
      ])}\n`,
    );
    console.log(`secrets: ${scan.leaks.length} hits in ${scan.workflows} histories and ${scan.files} log files`);

    if (args.json) {
      await writeFile(
        args.json,
        JSON.stringify(
          {
            connections: CONNECTIONS,
            seconds: SECONDS,
            reads,
            inFlight,
            startupMs: stack.startup,
            secrets: { hits: scan.leaks.length, histories: scan.workflows },
          },
          null,
          2,
        ),
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
