/**
 * A simulated cluster plus a configuration *file* for it, written the way an operator writes
 * one (pinned TLS fingerprint and SSH host keys, credentials in files): the suite runs the real
 * worker and API processes against it with PM_CONFIG, and builds in-process dependencies from
 * the very same file. Every credential it creates is listed in `secrets`, so tests can prove
 * none of them leaks.
 *
 *   const cluster = await startSuiteCluster({ temporal: { address, namespace, taskQueue } });
 *   const worker = await spawnWorker(cluster);           // npx tsx worker/main.ts
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { loadConfig } from '../../lib/config/load.js';
import type { AppConfig, Role } from '../../lib/config/schema.js';
import { startSimulator, type ResolvedScenario, type Scenario, type SimulatedCluster } from '../../sim/index.js';
import { buildWorkerDeps, type WorkerDeps } from '../../worker/deps.js';
import { homelabScenario, pinnedNodes } from '../simulated-env.js';

export interface Secret {
  /** What it is, for reports: never the value. */
  label: string;
  value: string;
}

export interface SuiteClusterOptions {
  scenario?: Scenario | ResolvedScenario | string;
  /** Simulated seconds per wall second. */
  speed?: number;
  temporal: { address: string; namespace: string; taskQueue: string };
  /** API actors to create bearer tokens for (stored hashed in the file, returned in `apiTokens`). */
  actors?: { actor: string; roles: Role[] }[];
  /** Port the API process listens on (0 for any). */
  apiPort?: number;
  /** Changes to the environment's YAML before it is written (a wrong fingerprint, a moved SSH port). */
  editEnvironment?: (environment: Record<string, unknown>) => void;
  /** Merged into the top level of the file (approvals, ...). */
  config?: Record<string, unknown>;
  /** Which scenario token the worker uses (default: the first). */
  tokenId?: string;
  seed?: number;
}

export interface SuiteCluster {
  sim: SimulatedCluster;
  environment: string;
  dir: string;
  configPath: string;
  /** The file as parsed by the loader the worker and API use. */
  config: AppConfig;
  /** In-process worker dependencies built from the same file. */
  deps: WorkerDeps;
  /** Bearer token per actor. */
  apiTokens: Record<string, string>;
  /** Every credential configured: PVE token secrets, SSH private key material, API bearer tokens. */
  secrets: Secret[];
  /** Log files written by processes started for this cluster (scanned for secrets). */
  logFiles: string[];
  stop(): Promise<void>;
}

const ENVIRONMENT = 'home';

/**
 * An environment block for `sim`, written as an operator writes one: PVE token and SSH key in
 * files of mode 0600 under `dir`, each node's TLS certificate and SSH host key pinned.
 */
export async function simulatedEnvironment(
  sim: SimulatedCluster,
  dir: string,
  tokenId?: string,
): Promise<Record<string, unknown>> {
  const token = tokenId ? sim.tokens.find((t) => t.tokenId === tokenId) : sim.tokens[0];
  if (!token) throw new Error(`the scenario has no token ${tokenId ?? ''}`);
  const tokenFile = join(dir, `pve-token-${sim.nodes[0]!.port}`);
  const sshKeyFile = join(dir, `ssh-key-${sim.nodes[0]!.port}`);
  await writeFile(tokenFile, `${token.tokenId}=${token.secret}\n`, { mode: 0o600 });
  await writeFile(sshKeyFile, sim.sshClientKey.privateKey, { mode: 0o600 });
  return {
    cluster: { name: 'simulated', nodes: pinnedNodes(sim) },
    credentials: { token: { file: tokenFile }, ssh_key: { file: sshKeyFile }, ssh_user: 'root' },
  };
}

/** Every credential of `sim`, for the secret scans: never leaked anywhere. */
export function simulatorSecrets(sim: SimulatedCluster): Secret[] {
  return [
    ...sim.tokens.map((t) => ({ label: `PVE token secret of ${t.tokenId}`, value: t.secret })),
    ...keyMaterial('SSH private key', sim.sshClientKey.privateKey),
    { label: 'simulator admin secret', value: sim.adminSecret },
  ];
}

/** The base64 body lines of a PEM/OpenSSH private key: any one of them leaking is a leak. */
function keyMaterial(label: string, pem: string): Secret[] {
  return pem
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length >= 16 && !line.startsWith('-----'))
    .map((value, i) => ({ label: `${label} (line ${i + 1})`, value }));
}

export async function startSuiteCluster(options: SuiteClusterOptions): Promise<SuiteCluster> {
  const sim = await startSimulator({
    scenario: options.scenario ?? homelabScenario,
    speed: options.speed ?? 50,
    authFailureDelayMs: 50,
    ...(options.seed !== undefined ? { seed: options.seed } : {}),
  });
  const dir = await mkdtemp(join(tmpdir(), 'pm-suite-'));
  try {
    const environment = await simulatedEnvironment(sim, dir, options.tokenId);
    const apiTokens = Object.fromEntries(
      (options.actors ?? []).map(({ actor }) => [actor, randomBytes(24).toString('base64url')]),
    );
    options.editEnvironment?.(environment);
    const raw = {
      temporal: {
        address: options.temporal.address,
        namespace: options.temporal.namespace,
        task_queue: options.temporal.taskQueue,
      },
      api: {
        host: '127.0.0.1',
        port: options.apiPort ?? 0,
        tokens: (options.actors ?? []).map(({ actor, roles }) => ({
          actor,
          roles,
          sha256: createHash('sha256').update(apiTokens[actor]!).digest('hex'),
        })),
      },
      audit: { path: join(dir, 'audit.log') },
      secrets_dir: join(dir, 'secrets'),
      ...options.config,
      environments: { [ENVIRONMENT]: environment },
    };
    const configPath = join(dir, 'proxmox-manager.yaml');
    await writeFile(configPath, toYaml(raw));
    const config = loadConfig(configPath);
    const deps = buildWorkerDeps(config);

    return {
      sim,
      environment: ENVIRONMENT,
      dir,
      configPath,
      config,
      deps,
      apiTokens,
      secrets: [
        ...simulatorSecrets(sim),
        ...Object.entries(apiTokens).map(([actor, value]) => ({ label: `API bearer token of ${actor}`, value })),
      ],
      logFiles: [config.audit.path],
      async stop() {
        await (await deps.pve(ENVIRONMENT).catch(() => undefined))?.close();
        await sim.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await sim.stop();
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** API calls the simulator has answered so far (every endpoint, every guest). */
export function totalCalls(sim: SimulatedCluster): number {
  return Object.entries(sim.counters.snapshot().calls)
    .filter(([key]) => !key.includes(':'))
    .reduce((n, [, v]) => n + v, 0);
}
