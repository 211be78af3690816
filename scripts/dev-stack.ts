/**
 * The demo: the whole stack on one machine, against a simulated 3-node Proxmox cluster.
 *
 *   Temporal dev server (SQLite under data/temporal/, UI on 8233)
 *   simulator (sim/main.ts)  ->  generated config data/demo/proxmox-manager.yaml
 *   worker (worker/main.ts) and API (api/main.ts), both reading PM_CONFIG
 *
 * then runs the main job once (an inventory operation through the API) and keeps the stack
 * up until Ctrl-C. `--once` (or PM_DEMO_ONCE=1) runs the job and exits: 0 when it succeeded.
 *
 * Run it through scripts/demo.sh (`npm run demo`), which installs what is missing first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify as toYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, parseConfig } from '../lib/config/load.js';
import type { Role } from '../lib/config/schema.js';
import { ensureTemporalCli, TemporalCliMissingError } from './temporal-cli.js';
import { assertPortFree, freePort, PortInUseError, startDevServer, type DevServer } from './temporal-server.js';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const ENVIRONMENT = 'home';
/** Often enough that /v1/drift has a report a few minutes after the start. */
const DRIFT_INTERVAL = '2m';
/** The demo drills the production web servers' backups this often (docs/backups.md). */
const DRILL_INTERVAL = '5m';

/** Demo actors, one per role. Their bearer tokens are stored hashed in the config. */
const actors: { actor: string; roles: Role[] }[] = [
  { actor: 'alice', roles: ['operator'] },
  { actor: 'bob', roles: ['approver'] },
  { actor: 'carol', roles: ['viewer'] },
  { actor: 'admin', roles: ['admin'] },
  { actor: 'robot', roles: ['agent'] },
];

// ---------------------------------------------------------------------------------------
// options

interface Options {
  once: boolean;
  scenario: string;
  speed: string;
  dataDir: string;
  temporalPort: number;
  uiPort: number;
  apiPort: number;
}

/** A failure the demo explains itself: its message is the whole story, no stack trace. */
class DemoError extends Error {}

/** Relative paths are taken from the repository root; port 0 means any free port (the end-to-end test uses that). */
const optionSpec = {
  once: { type: 'boolean', default: process.env.PM_DEMO_ONCE === '1' },
  scenario: { type: 'string', default: 'sim/scenarios/homelab.yaml' },
  speed: { type: 'string', default: '20' },
  'data-dir': { type: 'string', default: 'data' },
  'temporal-port': { type: 'string', default: '7233' },
  'ui-port': { type: 'string', default: '8233' },
  'api-port': { type: 'string', default: '8080' },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** One text for `--help` here and in scripts/demo.sh, which prints it before any setup runs. */
const usage = readFileSync(join(repoRoot, 'scripts/demo-usage.txt'), 'utf8').trimEnd();

async function parseOptions(argv: string[]): Promise<Options | undefined> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: optionSpec });
  } catch (err) {
    throw new DemoError(`${(err as Error).message}\n${usage}`);
  }
  const { values } = parsed;
  if (values.help) {
    console.log(usage);
    return undefined;
  }
  const port = async (flag: string, value: string) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0 || n > 65535)
      throw new DemoError(`--${flag} must be a port number (0 = any free port)`);
    return n === 0 ? freePort() : n;
  };
  return {
    once: values.once,
    scenario: resolve(repoRoot, values.scenario),
    speed: values.speed,
    dataDir: resolve(repoRoot, values['data-dir']),
    temporalPort: await port('temporal-port', values['temporal-port']),
    uiPort: await port('ui-port', values['ui-port']),
    apiPort: await port('api-port', values['api-port']),
  };
}

// ---------------------------------------------------------------------------------------
// child processes

interface Child {
  name: string;
  process: ChildProcess;
  exited: Promise<number | null>;
}

const running: Child[] = [];
/** Paths under the working directory as relative ones, others in full. */
function shownPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel.startsWith('..') ? path : rel || '.';
}

/** The first child that has stopped on its own, if any. */
function exitedChild(): Child | undefined {
  return running.find((c) => c.process.exitCode !== null || c.process.signalCode !== null);
}

function prefixLines(name: string, stream: NodeJS.ReadableStream, out: NodeJS.WriteStream): void {
  let partial = '';
  stream.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) out.write(`[${name}] ${line}\n`);
  });
  stream.on('end', () => partial && out.write(`[${name}] ${partial}\n`));
}

// The key the API signs approval decisions with and the worker checks them with: both processes inherit it.
process.env.PM_APPROVAL_SIGNING_KEY ??= randomBytes(32).toString('hex');

/** A TypeScript entry point run by node with tsx's loader: one process, no wrapper to orphan. */
function launch(name: string, entry: string, args: string[], env: NodeJS.ProcessEnv = {}): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Own process group: Ctrl-C reaches only this launcher, which stops children in order.
    detached: true,
  });
  prefixLines(name, child.stdout!, process.stdout);
  prefixLines(name, child.stderr!, process.stderr);
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const entryRecord = { name, process: child, exited };
  running.push(entryRecord);
  return entryRecord;
}

function signalGroup(child: Child, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.process.pid!, signal);
  } catch {
    // already gone
  }
}

async function stopChild(child: Child): Promise<void> {
  if (child.process.exitCode !== null || child.process.signalCode !== null) return;
  signalGroup(child, 'SIGTERM');
  const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), 10_000);
  await child.exited;
  clearTimeout(timer);
}

/** Resolves when `ready` does; fails when the child exits first or time runs out. */
async function waitFor<T>(
  child: Child,
  what: string,
  timeoutMs: number,
  ready: () => Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.process.exitCode !== null)
      throw new DemoError(`${child.name} exited (code ${child.process.exitCode}) before ${what}`);
    const value = await ready().catch(() => undefined);
    if (value !== undefined) return value;
    await sleep(200);
  }
  throw new DemoError(`${child.name}: ${what} did not happen within ${timeoutMs / 1000} s`);
}

// ---------------------------------------------------------------------------------------
// the simulator's connection file -> the demo configuration

/**
 * What sim/main.ts writes to --connection-file: where each simulated node listens, how to
 * verify it, and which files hold the credentials (never the credentials themselves).
 */
const SimConnection = z.object({
  cluster: z.string().default('homelab'),
  nodes: z
    .array(
      z.object({
        name: z.string(),
        host: z.string().default('127.0.0.1'),
        port: z.number().int(),
        ssh_port: z.number().int().optional(),
        ssh_host_key: z.string().optional(),
        tls_fingerprint: z.string().optional(),
      }),
    )
    .min(1),
  tls: z.object({ ca_file: z.string().optional() }),
  token_file: z.string(),
  ssh_key_file: z.string().optional(),
  ssh_user: z.string().default('root'),
  live_image_host_key: z.string().optional(),
});
type SimConnection = z.infer<typeof SimConnection>;

async function readConnection(path: string): Promise<SimConnection | undefined> {
  if (!existsSync(path)) return undefined;
  const parsed = SimConnection.safeParse(JSON.parse(await readFile(path, 'utf8')));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new DemoError(`${shownPath(path)} is not the connection format this launcher expects: ${problems}`);
  }
  return parsed.data;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
const envName = (actor: string) => `PM_TOKEN_${actor.toUpperCase()}`;

/** Bearer tokens from a previous run (so a shell that sourced the file keeps working), else new ones. */
async function demoTokens(tokensFile: string): Promise<Map<string, string>> {
  const previous = new Map<string, string>();
  if (existsSync(tokensFile)) {
    for (const line of (await readFile(tokensFile, 'utf8')).split('\n')) {
      const match = /^(PM_TOKEN_[A-Z0-9_]+)=([A-Za-z0-9_-]{32,})$/.exec(line.trim());
      if (match) previous.set(match[1]!, match[2]!);
    }
  }
  return new Map(
    actors.map(({ actor }) => [actor, previous.get(envName(actor)) ?? randomBytes(32).toString('base64url')]),
  );
}

async function writeDemoConfig(
  o: Options,
  sim: SimConnection,
  tokens: Map<string, string>,
): Promise<{ configPath: string; tokensFile: string }> {
  const demoDir = join(o.dataDir, 'demo');
  const configPath = join(demoDir, 'proxmox-manager.yaml');
  const tokensFile = join(demoDir, 'api-tokens.env');
  await mkdir(demoDir, { recursive: true });

  const raw = {
    temporal: {
      address: `127.0.0.1:${o.temporalPort}`,
      namespace: 'default',
      task_queue: 'proxmox-manager',
      ui_url: `http://127.0.0.1:${o.uiPort}`,
    },
    api: {
      host: '127.0.0.1',
      port: o.apiPort,
      tokens: actors.map(({ actor, roles }) => ({ actor, sha256: sha256(tokens.get(actor)!), roles })),
    },
    approvals: { timeout: '24h', auto_approve: ['low'] },
    audit: { path: join(demoDir, 'audit.log') },
    secrets_dir: join(demoDir, 'secrets'),
    // The drift schedule is off unless an interval is set; the demo turns it on.
    manifests: { path: 'manifests', drift_interval: DRIFT_INTERVAL, drift_dir: join(demoDir, 'drift') },
    backups: { drill_dir: join(demoDir, 'drills') },
    // cluster-up's Talos steps run the stand-in, which finds the "Talos nodes" among the simulator's VMs.
    talosctl: {
      binary: join(repoRoot, 'sim/bin/talosctl'),
      env: {
        TALOSCTL_STANDIN_STATE: join(demoDir, 'talos'),
        TALOSCTL_STANDIN_PVE: JSON.stringify({
          host: sim.nodes[0]!.host,
          port: sim.nodes[0]!.port,
          fingerprint: sim.nodes[0]!.tls_fingerprint,
          tokenFile: sim.token_file,
        }),
      },
    },
    environments: {
      [ENVIRONMENT]: {
        cluster: {
          name: sim.cluster,
          nodes: sim.nodes.map((n) => ({
            name: n.name,
            host: n.host,
            port: n.port,
            ...(n.ssh_port ? { ssh_port: n.ssh_port } : {}),
            ...(n.ssh_host_key ? { ssh_host_key: n.ssh_host_key } : {}),
            // Pinned the way an operator pins a PVE cluster: each node's own certificate.
            ...(n.tls_fingerprint ? { tls_fingerprint: n.tls_fingerprint } : {}),
          })),
        },
        // The cluster CA, for a connection file that pins no node.
        ...(sim.nodes.every((n) => n.tls_fingerprint) ? {} : { tls: { ca_file: sim.tls.ca_file } }),
        credentials: {
          token: { file: sim.token_file },
          ssh_user: sim.ssh_user,
          ...(sim.ssh_key_file ? { ssh_key: { file: sim.ssh_key_file } } : {}),
        },
        // Restore drills on a schedule, so their history (GET /v1/backups/proven) fills while the demo runs.
        backups: { drill_schedule: { every: DRILL_INTERVAL, tags: 'prod & web' } },
        // The simulator's VMs that boot from the network get its live Alpine image, whose key is pinned here.
        pxe: {
          tftp_server: sim.nodes[0]!.host,
          boot_file: 'pxelinux.0',
          ...(sim.live_image_host_key ? { live_image_host_key: sim.live_image_host_key } : {}),
        },
      },
    },
  };
  // Fail here, naming the field, rather than in two child processes at once.
  parseConfig(raw, configPath);

  const header = '# Generated by scripts/dev-stack.ts for the simulated cluster; rewritten on every start.\n';
  await writeFile(configPath, header + toYaml(raw));
  const envLines = actors.map(
    ({ actor, roles }) => `# ${actor}: ${roles.join(', ')}\n${envName(actor)}=${tokens.get(actor)}`,
  );
  await writeFile(tokensFile, `${envLines.join('\n')}\n`, { mode: 0o600 });
  await chmod(tokensFile, 0o600);
  return { configPath, tokensFile };
}

// ---------------------------------------------------------------------------------------
// the main job: an inventory operation through the API

const Started = z.object({ id: z.string(), links: z.object({ self: z.string(), temporalUi: z.string() }) });
const Detail = z.object({
  state: z.string(),
  result: z.unknown().optional(),
  failure: z.object({ type: z.string(), message: z.string() }).optional(),
});

async function api(url: URL, token: string, init: RequestInit = {}): Promise<unknown> {
  const response = await fetch(url, {
    ...init,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...init.headers },
  });
  const body = await response.json().catch(() => undefined);
  if (!response.ok) {
    const message = (body as { error?: { message?: string } } | undefined)?.error?.message ?? response.statusText;
    throw new Error(`${init.method ?? 'GET'} ${url.pathname} answered ${response.status}: ${message}`);
  }
  return body;
}

/** The inventory summary in a few readable lines; anything else as (trimmed) JSON. */
function describeInventory(result: unknown): string {
  const r = result as {
    nodes?: { name?: string; online?: boolean; guests?: number; running?: number }[];
    totals?: Record<string, number>;
  };
  if (Array.isArray(r?.nodes)) {
    const nodes = r.nodes.map(
      (n) =>
        `\n      ${n.name}: ${n.online === false ? 'OFFLINE' : 'online'}, ${n.guests ?? '?'} guests (${n.running ?? '?'} running)`,
    );
    const totals = r.totals
      ? `\n      totals: ${Object.entries(r.totals)
          .map(([k, v]) => `${v} ${k}`)
          .join(', ')}`
      : '';
    return `${r.nodes.length} nodes${nodes.join('')}${totals}`;
  }
  const json = JSON.stringify(result, null, 2) ?? 'no result';
  return json.length > 2_000 ? `${json.slice(0, 2_000)}\n...` : json;
}

async function runInventory(apiUrl: string, token: string): Promise<boolean> {
  console.log(`\n==> Main job: inventory of '${ENVIRONMENT}' through the API (as alice, operator)`);
  const started = Started.parse(
    await api(new URL('/v1/operations/inventory', apiUrl), token, {
      method: 'POST',
      body: JSON.stringify({ environment: ENVIRONMENT }),
    }),
  );
  console.log(`    operation ${started.id}\n    Temporal UI: ${started.links.temporalUi}`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const detail = Detail.parse(await api(new URL(started.links.self, apiUrl), token));
    if (detail.state !== 'running') {
      if (detail.state === 'completed') {
        console.log(`    completed: ${describeInventory(detail.result)}`);
        return true;
      }
      console.log(`    ${detail.state}${detail.failure ? `: ${detail.failure.type}: ${detail.failure.message}` : ''}`);
      return false;
    }
    const dead = exitedChild();
    if (dead) {
      console.log(
        `    cannot finish: ${dead.name} exited (code ${dead.process.exitCode}); see the [${dead.name}] lines above`,
      );
      return false;
    }
    if (Date.now() > deadline) {
      console.log('    still running after 120 s (is the worker polling? see the [worker] lines above)');
      return false;
    }
    await sleep(500);
  }
}

/** The end of each step: what to do next, copy-paste ready. */
function tryNext(items: string[]): void {
  console.log(`\n    try next:\n${items.map((item) => `      - ${item}`).join('\n')}`);
}

// ---------------------------------------------------------------------------------------

let temporal: DevServer | undefined;
let stopping: Promise<void> | undefined;

function stopEverything(): Promise<void> {
  stopping ??= (async () => {
    // API and worker first (they depend on the others), then the simulator, then Temporal.
    const order = ['api', 'worker', 'sim'];
    for (const name of order) {
      const child = running.find((c) => c.name === name);
      if (child) await stopChild(child);
    }
    await temporal?.stop();
  })();
  return stopping;
}

async function main(): Promise<number> {
  const o = await parseOptions(process.argv.slice(2));
  if (!o) return 0;
  for (const [port, what] of [
    [o.temporalPort, 'Temporal frontend'],
    [o.uiPort, 'Temporal UI'],
    [o.apiPort, 'proxmox-manager API'],
  ] as const) {
    await assertPortFree('127.0.0.1', port, what);
  }
  for (const entry of ['sim/main.ts', 'worker/main.ts', 'api/main.ts']) {
    if (!existsSync(join(repoRoot, entry))) throw new DemoError(`${entry} does not exist yet: the demo needs it`);
  }

  const cli = await ensureTemporalCli();
  const dbFilename = join(o.dataDir, 'temporal', 'dev.sqlite');
  console.log(`==> Temporal dev server (CLI ${cli.version}, ${cli.source}), history in ${shownPath(dbFilename)}`);
  temporal = await startDevServer({
    cli: cli.path,
    port: o.temporalPort,
    uiPort: o.uiPort,
    dbFilename,
    onOutput: (line) => console.log(`[temporal] ${line}`),
  });
  tryNext([
    `the Temporal UI: ${temporal.uiUrl}`,
    `${shownPath(cli.path)} workflow list --address 127.0.0.1:${o.temporalPort}`,
  ]);

  console.log(`==> Simulated cluster (${shownPath(o.scenario)}, speed ${o.speed}x)`);
  const connectionFile = join(o.dataDir, 'sim', 'connection.json');
  await rm(connectionFile, { force: true });
  const sim = launch('sim', 'sim/main.ts', [
    '--scenario',
    o.scenario,
    '--speed',
    o.speed,
    '--connection-file',
    connectionFile,
  ]);
  const connection = await waitFor(sim, `writing ${shownPath(connectionFile)}`, 60_000, () =>
    readConnection(connectionFile),
  );
  const node = connection.nodes[0]!;
  tryNext([
    `PVE's own API on ${node.name}: curl -s --cacert ${shownPath(connection.tls.ca_file ?? '')} -H "Authorization: PVEAPIToken=$(cat ${shownPath(connection.token_file)})" https://${node.host}:${node.port}/api2/json/cluster/resources`,
    `its downloads and their checksums: jq .downloads ${shownPath(connectionFile)}`,
  ]);

  const tokensFile = join(o.dataDir, 'demo', 'api-tokens.env');
  const written = await writeDemoConfig(o, connection, await demoTokens(tokensFile));
  const env = { PM_CONFIG: written.configPath };
  console.log(
    `==> Config ${shownPath(written.configPath)} (environment '${ENVIRONMENT}': ${connection.nodes.map((n) => n.name).join(', ')})`,
  );
  tryNext([`npm run -s config:check -- ${shownPath(written.configPath)}`]);

  launch('worker', 'worker/main.ts', [], env);
  const apiChild = launch('api', 'api/main.ts', [], env);
  const apiUrl = `http://127.0.0.1:${o.apiPort}`;
  await waitFor(apiChild, `answering ${apiUrl}/healthz`, 60_000, async () =>
    (await fetch(`${apiUrl}/healthz`)).ok ? true : undefined,
  );

  console.log(`
==> proxmox-manager is up
    API:          ${apiUrl}   (reference: ${apiUrl}/docs)
    Temporal UI:  ${temporal.uiUrl}
    API tokens:   ${shownPath(written.tokensFile)}   (mode 0600; actors alice=operator, bob=approver, carol=viewer, admin, robot=agent)
    PXE live image host key (pinned as pxe.live_image_host_key): ${connection.live_image_host_key ?? 'not reported by the simulator'}
    Drift schedule: every ${DRIFT_INTERVAL} (GET ${apiUrl}/v1/drift)
    Restore drills of 'prod & web': every ${DRILL_INTERVAL} (GET ${apiUrl}/v1/backups/proven?environment=${ENVIRONMENT})`);
  tryNext([
    `set -a; . ${shownPath(written.tokensFile)}; set +a; api=${apiUrl}`,
    `curl -s -H "Authorization: Bearer $PM_TOKEN_CAROL" "$api/v1/inventory?environment=${ENVIRONMENT}"`,
    `the README's walk-through (README.md, "Operations"): every operation kind, copy-paste`,
  ]);

  const tokens = await demoTokens(written.tokensFile);
  let ok: boolean;
  try {
    ok = await runInventory(apiUrl, tokens.get('alice')!);
  } catch (err) {
    console.log(`    failed: ${(err as Error).message}`);
    ok = false;
  }

  tryNext(
    ok
      ? [
          `evacuate a node, plan only: curl -s -X POST -H "Authorization: Bearer $PM_TOKEN_ALICE" -H 'content-type: application/json' -d '{"environment":"${ENVIRONMENT}","node":"pve03","dryRun":true}' $api/v1/operations/evacuation`,
          `check for drift now: curl -s -X POST -H "Authorization: Bearer $PM_TOKEN_ALICE" $api/v1/drift/${ENVIRONMENT}/check`,
          `watch it in the Temporal UI: ${temporal.uiUrl}`,
        ]
      : [
          `the [worker] and [api] lines above say why; the failed operations: curl -s -H "Authorization: Bearer $PM_TOKEN_CAROL" "$api/v1/operations?state=failed"`,
        ],
  );
  if (o.once) return ok ? 0 : 1;
  console.log('\n==> Running. Ctrl-C stops everything.');
  tryNext([
    `every other kind, field by field, with a request for this demo: docs/requests.md`,
    `the API's reference: ${apiUrl}/docs`,
  ]);
  // Any child dying on its own ends the demo: a half-running stack only confuses.
  const died = await Promise.race(running.map((c) => c.exited.then((code) => ({ name: c.name, code }))));
  console.log(`${died.name} exited (code ${died.code}); stopping the rest`);
  return 1;
}

let interrupted = false;
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    if (interrupted) {
      // Second Ctrl-C: no more waiting.
      process.exit(130);
    }
    interrupted = true;
    console.log(`\n==> ${signal}: stopping api, worker, simulator, Temporal...`);
    void stopEverything().then(() => {
      console.log('==> stopped');
      process.exit(0);
    });
  });
}
// However this process ends, no child outlives it (startDevServer does the same for Temporal).
process.on('exit', () => {
  for (const c of running) if (c.process.exitCode === null) signalGroup(c, 'SIGKILL');
});

const code = await main().catch((err: unknown) => {
  const explained = [PortInUseError, DemoError, ConfigError, TemporalCliMissingError].some(
    (type) => err instanceof type,
  );
  const error = err instanceof Error ? err : new Error(String(err));
  console.error(`demo: ${explained ? error.message : (error.stack ?? error.message)}`);
  return 1;
});
// After a signal its handler finishes the shutdown; a failing stop is Node's uncaught error (exit 1).
if (!interrupted) {
  await stopEverything();
  process.exit(code);
}
