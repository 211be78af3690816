/**
 * The production path, proven on this machine with the real parts and no Docker:
 * `scripts/production-check.sh` (or `npm run production:check`).
 *
 *   1. the Temporal server (built from the Go module proxy at the version docker-compose.yml
 *      pins, cached in .tools/) on a PostgreSQL cluster of its own (data in data/production/),
 *      schema set up by the compose file's own script, PostgreSQL advanced visibility;
 *   2. the namespace and search attributes registered as `temporal-register` does;
 *   3. three workers and two API processes (`worker/main.ts`, `api/main.ts`) against two
 *      simulated clusters: `home` gets a rolling maintenance of two nodes, `lab` an evacuation
 *      and 100 VM actions, all at once, requested and approved through both APIs;
 *   4. meanwhile: a worker SIGKILLed (and replaced), an API process SIGKILLed (and restarted),
 *      the Temporal server restarted, PostgreSQL restarted;
 *   5. checks: every operation ended as it should, no PVE task ran twice, the audit chain
 *      verifies, no secret in any history or log;
 *   6. the API's list and status reads under load, on PostgreSQL visibility and on the dev
 *      server's SQLite, side by side.
 *
 * Prints one table (scenario | result | figure) and writes it into docs/deploy.md between its
 * markers (`--no-doc` to skip). Exit status 0 only when every check passed.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { Pool } from 'undici';
import { stringify as toYaml } from 'yaml';
import { hammer, type LoadFigures } from '../bench/http-load.js';
import { maintenanceScenario } from '../testkit/maintenance-run.js';
import { writeDocSection } from '../bench/harness.js';
import { createAuditLog } from '../lib/audit/log.js';
import { startSimulator, type SimulatedCluster } from '../sim/index.js';
import { simulatedEnvironment, simulatorSecrets, type Secret } from '../testkit/stack/cluster.js';
import { spawnApi, spawnWorker, type ChildService } from '../testkit/stack/processes.js';
import { fleet } from '../testkit/stack/scenarios.js';
import { combine, scanFiles, scanHistories } from '../testkit/stack/secrets.js';
import { startStack, table } from '../testkit/stack/stack.js';
import { startPostgres, type Postgres } from './production/postgres.js';
import {
  composeVersions,
  ensureTemporalServer,
  setupSchema,
  startTemporalServer,
  type TemporalServer,
} from './production/temporal.js';
import { registerNamespaceAndSearchAttributes } from './temporal-register.js';
import { freePort } from './temporal-server.js';

const { values: args } = parseArgs({
  options: {
    'data-dir': { type: 'string', default: 'data/production' },
    'no-doc': { type: 'boolean', default: false },
    'load-seconds': { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
  },
});
const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const DATA = join(repoRoot, args['data-dir']!);
const TASK_QUEUE = 'proxmox-manager';
const VM_ACTIONS = 100;
const ACTORS = { alice: ['operator'], bob: ['approver'], carol: ['viewer'] } as const;

type Row = [scenario: string, result: 'ok' | 'FAILED', figure: string];
const rows: Row[] = [];
const log = (line: string) => console.log(`[check] ${line}`);
function check(scenario: string, ok: boolean, figure: string): void {
  rows.push([scenario, ok ? 'ok' : 'FAILED', figure]);
  log(`${ok ? 'ok    ' : 'FAILED'} ${scenario}: ${figure}`);
}
async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const began = Date.now();
  const value = await fn();
  return [value, Date.now() - began];
}
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** A client of the two API processes: each request goes to the first one that is up. */
class Apis {
  constructor(
    readonly instances: (ChildService & { url: string })[],
    readonly tokens: Record<string, string>,
  ) {}

  async request(
    actor: string,
    method: 'GET' | 'POST',
    path: string,
    body?: unknown,
    prefer = 0,
  ): Promise<{ status: number; json: Record<string, unknown> }> {
    const order = [...this.instances.slice(prefer), ...this.instances.slice(0, prefer)];
    let lastError: unknown;
    for (const api of order) {
      try {
        const res = await fetch(`${api.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${this.tokens[actor]}`, 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        return { status: res.status, json: (await res.json()) as Record<string, unknown> };
      } catch (err) {
        // Only a refused connection moves on: the request never reached that API, so it cannot
        // have started anything there. Anything else is a real answer to look at.
        if ((err as { cause?: { code?: string } }).cause?.code !== 'ECONNREFUSED') throw err;
        lastError = err;
      }
    }
    throw lastError;
  }

  async start(actor: string, kind: string, body: Record<string, unknown>, prefer = 0): Promise<string> {
    const { status, json } = await this.request(actor, 'POST', `/v1/operations/${kind}`, body, prefer);
    if (status !== 202 && status !== 200) throw new Error(`${kind}: ${status} ${JSON.stringify(json)}`);
    return json['id'] as string;
  }

  /** Waits for the plan, then approves its version as `by` through the API. */
  async approve(id: string, by: string, prefer = 0): Promise<void> {
    const path = `/v1/operations/${encodeURIComponent(id)}`;
    for (const deadline = Date.now() + 180_000; Date.now() < deadline; await sleep(250)) {
      const { json } = await this.request(by, 'GET', path, undefined, prefer);
      const version = (json['status'] as { plan?: { version: number } } | undefined)?.plan?.version;
      if (json['approvalState'] === 'pending' && version !== undefined) {
        const decided = await this.request(by, 'POST', `${path}/approve`, { planVersion: version }, prefer);
        if (decided.status >= 300)
          throw new Error(`approving ${id}: ${decided.status} ${JSON.stringify(decided.json)}`);
        return;
      }
    }
    throw new Error(`${id} never awaited approval`);
  }
}

/** VmRSS of a process, MiB (Linux). */
function residentMiB(pid: number): number {
  const kib = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
  return Math.round(Number(kib) / 1024);
}

async function historyLength(client: Client, workflowId: string): Promise<number> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  return history.events?.length ?? 0;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Production {
  db: Postgres;
  temporal: TemporalServer;
  client: Client;
  close(): Promise<void>;
}

async function startProduction(workDir: string): Promise<Production> {
  const versions = composeVersions();
  const binaries = await ensureTemporalServer(versions.temporal, log);
  const db = await startPostgres({ dataDir: join(workDir, 'postgres'), port: await freePort(), log });
  const composeMajor = Number(versions.postgres.split('.')[0]);
  check(
    'PostgreSQL version matches docker-compose.yml',
    db.major === composeMajor,
    `server ${db.major}, compose ${versions.postgres}`,
  );
  const [, schemaMs] = await timed(() => setupSchema(binaries, db, join(workDir, 'temporal')));
  check('schema (default + visibility) by scripts/compose/temporal-schema.sh', true, seconds(schemaMs));
  const [temporal, serverMs] = await timed(() =>
    startTemporalServer({ binaries, db, workDir: join(workDir, 'temporal'), log }),
  );
  check(`Temporal server ${versions.temporal} on PostgreSQL starts`, true, seconds(serverMs));
  const connection = await Connection.connect({ address: temporal.address });
  await registerNamespaceAndSearchAttributes(connection, temporal.namespace, log);
  const client = new Client({ connection, namespace: temporal.namespace });
  return {
    db,
    temporal,
    client,
    async close() {
      await connection.close();
      await temporal.stop();
      await db.stop();
    },
  };
}

interface Clusters {
  home: SimulatedCluster;
  lab: SimulatedCluster;
  configPath: string;
  auditPath: string;
  tokens: Record<string, string>;
  secrets: Secret[];
}

/** Two simulated clusters and one configuration file naming both, as an operator writes it. */
async function startClusters(dir: string, temporal: TemporalServer): Promise<Clusters> {
  const home = await startSimulator({ scenario: maintenanceScenario({ nodes: 3, guestsPerNode: 3 }), speed: 50 });
  const lab = await startSimulator({ scenario: fleet({ nodes: 3, perNode: 100, memory: 1024 }), speed: 50 });
  const tokens = Object.fromEntries(Object.keys(ACTORS).map((actor) => [actor, randomBytes(24).toString('base64url')]));
  const auditPath = join(dir, 'audit.log');
  const config = {
    temporal: { address: temporal.address, namespace: temporal.namespace, task_queue: TASK_QUEUE },
    api: {
      host: '127.0.0.1',
      port: 0,
      tokens: Object.entries(ACTORS).map(([actor, roles]) => ({
        actor,
        roles,
        sha256: createHash('sha256').update(tokens[actor]!).digest('hex'),
      })),
    },
    audit: { path: auditPath },
    secrets_dir: join(dir, 'secrets'),
    environments: { home: await simulatedEnvironment(home, dir), lab: await simulatedEnvironment(lab, dir) },
  };
  const configPath = join(dir, 'proxmox-manager.yaml');
  await writeFile(configPath, toYaml(config), { mode: 0o600 });
  const secrets = [
    ...simulatorSecrets(home),
    ...simulatorSecrets(lab),
    ...Object.entries(tokens).map(([actor, value]) => ({ label: `API bearer token of ${actor}`, value })),
    { label: 'approval signing key', value: process.env.PM_APPROVAL_SIGNING_KEY! },
  ];
  return { home, lab, configPath, auditPath, tokens, secrets };
}

/** Every operation's workflow result (or failure), by id. */
async function outcomes(client: Client, ids: string[]): Promise<Map<string, { ok: boolean; value: unknown }>> {
  const settled = await Promise.allSettled(ids.map((id) => client.workflow.getHandle(id).result()));
  return new Map(
    ids.map((id, i) => [
      id,
      settled[i]!.status === 'fulfilled'
        ? { ok: true, value: (settled[i] as PromiseFulfilledResult<unknown>).value }
        : { ok: false, value: String((settled[i] as PromiseRejectedResult).reason) },
    ]),
  );
}

async function runScenario(production: Production, clusters: Clusters, dir: string): Promise<void> {
  const logFiles = [clusters.auditPath];
  const service = { configPath: clusters.configPath, dir, logFiles };
  const workers = await Promise.all([spawnWorker(service), spawnWorker(service), spawnWorker(service)]);
  const apiProcesses = [await spawnApi(service), await spawnApi(service)];
  const apis = new Apis(apiProcesses, clusters.tokens);
  const stopAll = async () => {
    for (const s of [...apis.instances, ...workers]) await s.stop().catch(() => undefined);
  };
  try {
    const began = Date.now();
    const evacuation = await apis.start(
      'alice',
      'evacuation',
      { environment: 'lab', node: 'pve1', includeStopped: false, maxParallel: 4 },
      0,
    );
    const maintenance = await apis.start(
      'alice',
      'rolling-maintenance',
      { environment: 'home', nodes: ['pve01', 'pve02'] },
      1,
    );
    await apis.approve(evacuation, 'bob', 1);
    await apis.approve(maintenance, 'bob', 0);

    const stopped = [...clusters.lab.state.guests.values()]
      .filter((g) => g.status === 'stopped' && g.node !== 'pve1' && !g.template)
      .slice(0, VM_ACTIONS);
    const actions: string[] = [];
    const startAction = (g: (typeof stopped)[number], prefer: number) =>
      apis
        .start('alice', 'vm-action', { environment: 'lab', vmid: g.vmid, name: g.name, action: 'start' }, prefer)
        .then((id) => actions.push(id));

    // Half the VM actions through both APIs, then the faults, each while work is in flight.
    await Promise.all(stopped.slice(0, VM_ACTIONS / 2).map((g, i) => startAction(g, i % 2)));
    const killed = workers.shift()!;
    await killed.kill();
    workers.push(await spawnWorker(service));
    check('a worker SIGKILLed mid-way, a new one started', true, `after ${seconds(Date.now() - began)}`);

    await apis.instances[0]!.kill();
    await Promise.all(stopped.slice(VM_ACTIONS / 2).map((g) => startAction(g, 0)));
    check(
      'an API process SIGKILLed: the other answered the rest',
      actions.length === VM_ACTIONS,
      `${actions.length}/${VM_ACTIONS} VM actions accepted`,
    );
    apis.instances[0] = await spawnApi(service);

    const [, temporalMs] = await timed(async () => {
      await production.temporal.stop();
      await sleep(2_000);
      await production.temporal.start();
    });
    check('the Temporal server restarted mid-way', true, `down and up in ${seconds(temporalMs)}`);
    const [, pgMs] = await timed(() => production.db.restart());
    check('PostgreSQL restarted mid-way', true, `restart in ${seconds(pgMs)}`);

    const ended = await outcomes(production.client, [evacuation, maintenance, ...actions]);
    const elapsed = Date.now() - began;
    await verifyOutcomes(
      clusters,
      ended,
      { evacuation, maintenance, actions, vmids: stopped.map((g) => g.vmid) },
      elapsed,
    );

    const rss = workers.map((w) => residentMiB(w.process.pid!));
    check('worker resident memory after the scenario', true, `${Math.max(...rss)} MiB (largest of ${workers.length})`);
    const events = await historyLength(production.client, evacuation);
    check('history of the 50-guest evacuation', true, `${events} events`);

    const verdict = await createAuditLog(clusters.auditPath).verify();
    check(
      'audit chain verifies (5 processes writing)',
      verdict.ok,
      verdict.ok ? `${verdict.records} records` : `line ${verdict.line}: ${verdict.problem}`,
    );
    await stopAll();
    const scan = combine(
      await scanHistories(production.client, '', clusters.secrets),
      await scanFiles(logFiles, clusters.secrets),
    );
    check(
      'no secret in histories or logs',
      scan.leaks.length === 0,
      `${scan.leaks.length} hits in ${scan.workflows} histories, ${scan.files} files`,
    );
  } finally {
    await stopAll();
  }
}

async function verifyOutcomes(
  clusters: Clusters,
  ended: Map<string, { ok: boolean; value: unknown }>,
  ops: { evacuation: string; maintenance: string; actions: string[]; vmids: number[] },
  elapsedMs: number,
): Promise<void> {
  const evac = ended.get(ops.evacuation)!;
  const left = [...clusters.lab.state.guests.values()].filter(
    (g) => g.node === 'pve1' && g.status === 'running',
  ).length;
  const labMigrations = clusters.lab.cluster.tasks.all().filter((t) => t.type === 'qmigrate');
  const twiceMoved = new Set(labMigrations.map((t) => t.id).filter((id, i, all) => all.indexOf(id) !== i)).size;
  check(
    'evacuation of lab/pve1 completed, node empty',
    evac.ok && left === 0,
    `${labMigrations.length} migrations, ${left} running guests left, ${twiceMoved} guests moved twice`,
  );

  const maint = ended.get(ops.maintenance)!;
  const nodes = [...clusters.home.state.nodes.values()].filter((n) => ['pve01', 'pve02'].includes(n.name));
  const upgraded = nodes.filter((n) => n.pveversion === '9.1.4').length;
  const homeMigrations = clusters.home.cluster.tasks
    .all()
    .filter((t) => t.type === 'qmigrate' || t.type === 'vzmigrate');
  const perGuest = new Map<string, number>();
  for (const t of homeMigrations) perGuest.set(t.id, (perGuest.get(t.id) ?? 0) + 1);
  const overMoved = [...perGuest.values()].filter((n) => n > 2).length;
  check(
    'rolling maintenance of home/pve01,pve02 completed',
    maint.ok && upgraded === 2 && overMoved === 0,
    `${upgraded}/2 nodes upgraded, ${homeMigrations.length} migrations, ${overMoved} guests moved more than out and back`,
  );

  const actionsOk = ops.actions.filter((id) => ended.get(id)!.ok).length;
  const starts = ops.vmids.map((vmid) => clusters.lab.counters.tasks('qmstart', vmid));
  const duplicates = starts.filter((n) => n > 1).length;
  const missing = starts.filter((n) => n === 0).length;
  check(
    `${VM_ACTIONS} VM actions completed, each PVE start once`,
    actionsOk === VM_ACTIONS && duplicates === 0 && missing === 0,
    `${actionsOk} completed, ${duplicates} started twice, ${missing} never started`,
  );
  check('whole scenario, faults included', true, `all ended in ${seconds(elapsedMs)}`);
}

/** The API's list and status reads under load: on this PostgreSQL stack and on a dev server. */
async function compareReads(production: Production, clusters: Clusters, dir: string): Promise<void> {
  const load = { connections: Number(args.connections), seconds: Number(args['load-seconds']) };
  const service = { configPath: clusters.configPath, dir, logFiles: [] as string[] };
  const worker = await spawnWorker(service);
  const api = await spawnApi(service);
  const viewer = clusters.tokens['carol']!;
  const measure = async (url: string, sampleId: string, where: string): Promise<LoadFigures[]> => {
    const pool = new Pool(url, { connections: load.connections, pipelining: 1 });
    try {
      return [
        await hammer(pool, { ...load, token: viewer, path: '/healthz', label: `${where}: GET /healthz` }),
        await hammer(pool, {
          ...load,
          token: viewer,
          path: `/v1/operations/${encodeURIComponent(sampleId)}`,
          label: `${where}: GET /v1/operations/{id}`,
        }),
        await hammer(pool, {
          ...load,
          token: viewer,
          path: '/v1/operations?pageSize=20',
          label: `${where}: GET /v1/operations`,
        }),
      ];
    } finally {
      await pool.close();
    }
  };
  try {
    const apis = new Apis([api], clusters.tokens);
    const sample = await apis.start('alice', 'inventory', { environment: 'lab' });
    await production.client.workflow.getHandle(sample).result();
    const onPostgres = await measure(api.url, sample, 'PostgreSQL');

    const dev = await startStack({
      scenario: fleet({ nodes: 3, perNode: 40 }),
      speed: 50,
      api: true,
      actors: [
        { actor: 'carol', roles: ['viewer'] },
        { actor: 'alice', roles: ['operator'] },
      ],
    });
    try {
      const devApis = new Apis([dev.api!], dev.cluster.apiTokens);
      // As many operations in its visibility store as the PostgreSQL one holds.
      // One after the other: workflow IDs carry the request's millisecond.
      const ids: string[] = [];
      for (let i = 0; i < VM_ACTIONS + 2; i++)
        ids.push(await devApis.start('alice', 'inventory', { environment: 'home' }));
      await Promise.all(ids.map((id) => dev.client.workflow.getHandle(id).result()));
      const onSqlite = await measure(dev.api!.url, ids[0]!, 'dev server (SQLite)');
      console.log(
        `\n${table([['reads under load', 'req/s', 'p50 ms', 'p99 ms', 'errors'], ...[...onPostgres, ...onSqlite].map((r) => [r.endpoint, r.rps, r.p50Ms, r.p99Ms, r.errors])])}\n`,
      );
      for (const [pg, lite] of onPostgres.map((r, i) => [r, onSqlite[i]!] as const)) {
        const label = pg.endpoint.replace(/^PostgreSQL: /, '');
        check(
          `${label} at ${load.connections} connections`,
          pg.errors === 0,
          `PostgreSQL ${pg.rps} req/s p99 ${pg.p99Ms} ms; dev server ${lite.rps} req/s p99 ${lite.p99Ms} ms`,
        );
      }
    } finally {
      await dev.stop();
    }
  } finally {
    await api.stop();
    await worker.stop();
  }
}

async function main(): Promise<number> {
  // The key the API processes sign approvals with and the workers check them with (inherited).
  process.env.PM_APPROVAL_SIGNING_KEY ??= randomBytes(32).toString('hex');
  await rm(DATA, { recursive: true, force: true });
  await mkdir(DATA, { recursive: true, mode: 0o711 });
  // The PostgreSQL cluster inside runs as the postgres user, who must be able to pass through
  // (not list) every folder above its own.
  for (let dir = DATA; dir.startsWith(repoRoot) && dir !== repoRoot.replace(/\/$/, ''); dir = dirname(dir)) {
    await chmod(dir, ((await stat(dir)).mode & 0o777) | 0o011);
  }
  const production = await startProduction(DATA);
  const clustersDir = join(DATA, 'clusters');
  await mkdir(clustersDir, { recursive: true });
  const clusters = await startClusters(clustersDir, production.temporal);
  try {
    await runScenario(production, clusters, clustersDir);
    await compareReads(production, clusters, clustersDir);
  } finally {
    await clusters.home.stop();
    await clusters.lab.stop();
    await production.close();
  }
  const text = table([['scenario', 'result', 'figure'], ...rows]);
  console.log(`\n${text}\n`);
  const failed = rows.filter((r) => r[1] !== 'ok').length;
  if (!args['no-doc']) {
    const versions = composeVersions();
    await writeDocSection(
      new URL('../docs/deploy.md', import.meta.url),
      ['<!-- production-check:start -->', '<!-- production-check:end -->'],
      `by \`scripts/production-check.sh\` (Temporal server ${versions.temporal}, PostgreSQL ${production.db.major}, 3 workers, 2 APIs; ${cpus().length} cores, load average ${loadavg()[0]!.toFixed(1)} at the end):`,
      ['```text', text, '```'].join('\n'),
    );
  }
  console.log(failed === 0 ? 'production check: every check passed' : `production check: ${failed} check(s) FAILED`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`production check: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
