/**
 * The Temporal server that production runs (not the CLI's dev server), built here from the Go
 * module proxy at the version docker-compose.yml pins, cached under .tools/temporal-server/,
 * its schema set up on PostgreSQL by the same script the compose file runs, and started with
 * PostgreSQL persistence and PostgreSQL (advanced) visibility.
 */
import { execFile as execFileCb, spawn } from 'node:child_process';
import { cp, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Connection } from '@temporalio/client';
import { parse, stringify } from 'yaml';
import { assertPortFree, freePort } from '../temporal-server.js';
import type { Postgres } from './postgres.js';

const execFile = promisify(execFileCb);
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

/** The versions docker-compose.yml pins: the one place they are written. */
export function composeVersions(): { temporal: string; postgres: string; ui: string } {
  const text = readFileSync(join(repoRoot, 'docker-compose.yml'), 'utf8');
  const compose = parse(text, { merge: true }) as { services: Record<string, { image?: string }> };
  const tag = (service: string) => compose.services[service]!.image!.split(':')[1]!;
  return { temporal: tag('temporal'), postgres: tag('postgresql'), ui: tag('temporal-ui') };
}

export interface TemporalBinaries {
  version: string;
  server: string;
  sqlTool: string;
  /** The server's schema folder (schema/postgresql/v12/...). */
  schema: string;
}

/**
 * The server and temporal-sql-tool for `version`, built with `go install` on first use (about
 * six minutes on two cores) and kept in .tools/temporal-server/<version>/.
 */
export async function ensureTemporalServer(
  version: string,
  log: (line: string) => void = console.log,
): Promise<TemporalBinaries> {
  const dir = join(repoRoot, '.tools', 'temporal-server', version);
  const binaries = {
    version,
    server: join(dir, 'temporal-server'),
    sqlTool: join(dir, 'temporal-sql-tool'),
    schema: join(dir, 'schema'),
  };
  if (existsSync(binaries.server) && existsSync(binaries.sqlTool) && existsSync(binaries.schema)) return binaries;

  log(`building the Temporal server ${version} from the Go module proxy (once per machine; several minutes)...`);
  const module = 'go.temporal.io/server';
  const gobin = await mkdtemp(join(tmpdir(), 'pm-temporal-build-'));
  try {
    await execFile('go', ['install', `${module}/cmd/server@v${version}`, `${module}/cmd/tools/sql@v${version}`], {
      env: { ...process.env, GOBIN: gobin, GOFLAGS: '-mod=mod', CGO_ENABLED: '0' },
      maxBuffer: 64 * 1024 * 1024,
    });
    const { stdout: modcache } = await execFile('go', ['env', 'GOMODCACHE']);
    await mkdir(dir, { recursive: true });
    await cp(join(modcache.trim(), `${module}@v${version}`, 'schema'), binaries.schema, { recursive: true });
    await rename(join(gobin, 'server'), binaries.server);
    await rename(join(gobin, 'sql'), binaries.sqlTool);
  } finally {
    await rm(gobin, { recursive: true, force: true });
  }
  log(`Temporal server ${version} built into ${dir}`);
  return binaries;
}

/**
 * Creates or upgrades Temporal's two databases with scripts/compose/temporal-schema.sh, the
 * script the compose file's temporal-schema job runs, pointed at this PostgreSQL.
 */
export async function setupSchema(binaries: TemporalBinaries, db: Postgres, workDir: string): Promise<string> {
  await mkdir(workDir, { recursive: true, mode: 0o700 });
  const passwordFile = join(workDir, 'postgres_password');
  await writeFile(passwordFile, db.password, { mode: 0o600 });
  const pathDir = join(workDir, 'bin');
  await mkdir(pathDir, { recursive: true });
  await rm(join(pathDir, 'temporal-sql-tool'), { force: true });
  await cp(binaries.sqlTool, join(pathDir, 'temporal-sql-tool'));
  const { stdout, stderr } = await execFile('sh', [join(repoRoot, 'scripts/compose/temporal-schema.sh')], {
    env: {
      ...process.env,
      PATH: `${pathDir}:${process.env.PATH}`,
      POSTGRES_PASSWORD_FILE: passwordFile,
      TEMPORAL_SCHEMA_DIR: binaries.schema,
      POSTGRES_HOST: db.host,
      POSTGRES_PORT: String(db.port),
      POSTGRES_USER: db.user,
    },
    maxBuffer: 16 * 1024 * 1024,
  });
  return `${stdout}${stderr}`;
}

export interface TemporalServer {
  address: string;
  namespace: string;
  /** SIGTERM and wait; `start()` brings it back on the same ports and databases. */
  stop(): Promise<void>;
  start(): Promise<void>;
}

/**
 * Temporal stores membership ports in a PostgreSQL smallint, so they must lie below 32768 —
 * below the kernel's ephemeral range, where `freePort()` finds its ports. Probe that range.
 */
async function freeMembershipPort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20_000 + Math.floor(Math.random() * 12_000);
    if (
      await assertPortFree('127.0.0.1', port, 'Temporal membership').then(
        () => true,
        () => false,
      )
    )
      return port;
  }
  throw new Error('no free port between 20000 and 32000 for Temporal membership');
}

/** The server's configuration: PostgreSQL for history and visibility, every port on loopback. */
export async function serverConfig(
  db: Postgres,
  ports: Record<'frontend' | 'history' | 'matching' | 'worker' | 'http', number>,
) {
  const membership = freeMembershipPort;
  const store = (databaseName: string, maxConns: number) => ({
    sql: {
      pluginName: 'postgres12',
      databaseName,
      connectAddr: `${db.host}:${db.port}`,
      connectProtocol: 'tcp',
      user: db.user,
      password: db.password,
      maxConns,
      maxIdleConns: maxConns,
      maxConnLifetime: '1h',
    },
  });
  const service = async (grpcPort: number, extra: Record<string, unknown> = {}) => ({
    rpc: { grpcPort, membershipPort: await membership(), bindOnLocalHost: true, ...extra },
  });
  return {
    log: { stdout: true, level: 'warn' },
    persistence: {
      defaultStore: 'default',
      visibilityStore: 'visibility',
      numHistoryShards: 4,
      datastores: { default: store('temporal', 20), visibility: store('temporal_visibility', 10) },
    },
    global: { membership: { maxJoinDuration: '30s', broadcastAddress: '127.0.0.1' } },
    services: {
      frontend: await service(ports.frontend, { httpPort: ports.http }),
      history: await service(ports.history),
      matching: await service(ports.matching),
      worker: await service(ports.worker),
    },
    clusterMetadata: {
      enableGlobalNamespace: false,
      failoverVersionIncrement: 10,
      masterClusterName: 'active',
      currentClusterName: 'active',
      clusterInformation: {
        active: {
          enabled: true,
          initialFailoverVersion: 1,
          rpcName: 'frontend',
          rpcAddress: `127.0.0.1:${ports.frontend}`,
        },
      },
    },
    dcRedirectionPolicy: { policy: 'noop' },
  };
}

export async function startTemporalServer(options: {
  binaries: TemporalBinaries;
  db: Postgres;
  workDir: string;
  namespace?: string;
  log?: (line: string) => void;
}): Promise<TemporalServer> {
  const ports = {
    frontend: await freePort(),
    history: await freePort(),
    matching: await freePort(),
    worker: await freePort(),
    http: await freePort(),
  };
  await mkdir(options.workDir, { recursive: true });
  const configFile = join(options.workDir, 'temporal-server.yaml');
  await writeFile(configFile, stringify(await serverConfig(options.db, ports)), { mode: 0o600 });
  const address = `127.0.0.1:${ports.frontend}`;
  const logFile = join(options.workDir, 'temporal-server.log');
  let child: ReturnType<typeof spawn> | undefined;

  const start = async () => {
    const out = createWriteStream(logFile, { flags: 'a' });
    child = spawn(options.binaries.server, ['--config-file', configFile, '--allow-no-auth', 'start'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.pipe(out);
    child.stderr!.pipe(out);
    await waitUntilServing(address, 90_000, () => child?.exitCode !== null);
  };
  const stop = async () => {
    const running = child;
    if (!running || running.exitCode !== null || running.signalCode !== null) return;
    const exited = new Promise((resolve) => running.once('exit', resolve));
    running.kill('SIGTERM');
    const timer = setTimeout(() => running.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  };
  process.once('exit', () => child?.kill('SIGKILL'));
  await start();
  options.log?.(`Temporal server ${options.binaries.version} on ${address} (log ${logFile})`);
  return { address, namespace: options.namespace ?? 'default', start, stop };
}

async function waitUntilServing(address: string, timeoutMs: number, exited: () => boolean): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline && !exited()) {
    try {
      const connection = await Connection.connect({ address, connectTimeout: 2_000 });
      await connection.workflowService.getSystemInfo({});
      await connection.close();
      return;
    } catch (err) {
      lastError = err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  throw new Error(
    `the Temporal server at ${address} did not serve within ${timeoutMs} ms${exited() ? ' (it exited; see its log)' : ''}: ${String(lastError)}`,
  );
}
