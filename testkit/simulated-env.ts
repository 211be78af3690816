/**
 * A running simulated cluster plus everything the worker needs to use it, configured the way
 * an operator configures a real cluster: pinned TLS fingerprint, pinned SSH host keys,
 * credentials in files. Integration tests build activities from `deps`.
 *
 *   const env = await startSimulatedEnvironment({ speed: 200 });
 *   const worker = await startTestWorker({ activities: createActivities(env.deps) });
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfig } from '../lib/config/load.js';
import type { AppConfig } from '../lib/config/schema.js';
import { startSimulator, type ResolvedScenario, type Scenario, type SimulatedCluster } from '../sim/index.js';
import { buildWorkerDeps, type WorkerDeps } from '../worker/deps.js';

/** The simulator's nodes as configuration entries, each pinned by its own TLS fingerprint and SSH host key. */
export function pinnedNodes(sim: SimulatedCluster) {
  return sim.nodes.map((n) => ({
    name: n.name,
    host: n.host,
    port: n.port,
    ssh_port: n.sshPort,
    ssh_host_key: n.sshHostKey,
    tls_fingerprint: n.tlsFingerprint,
  }));
}

export const homelabScenario = fileURLToPath(new URL('../sim/scenarios/homelab.yaml', import.meta.url));
/** The homelab with the guests that pin their nodes (passthrough, local snapshots, a local ISO, an oversized disk). */
export const homelabRefusalsScenario = fileURLToPath(
  new URL('../sim/scenarios/homelab-refusals.yaml', import.meta.url),
);

export interface SimulatedEnvironment {
  sim: SimulatedCluster;
  /** The environment's name in `config.environments`. */
  environment: string;
  config: AppConfig;
  deps: WorkerDeps;
  /** The API token secret the worker uses: tests scan histories and logs for it. */
  secrets: string[];
  dir: string;
  stop(): Promise<void>;
}

export interface SimulatedEnvironmentOptions {
  scenario?: Scenario | ResolvedScenario | string;
  /** Simulated seconds per wall second. */
  speed?: number;
  environment?: string;
  /** Which scenario token the worker uses (default: the first, the least-privilege one). */
  tokenId?: string;
  /** Overrides merged into the generated configuration (e.g. approvals, api tokens). */
  config?: Record<string, unknown>;
}

export async function startSimulatedEnvironment(
  options: SimulatedEnvironmentOptions = {},
): Promise<SimulatedEnvironment> {
  const environment = options.environment ?? 'home';
  const sim = await startSimulator({
    scenario: options.scenario ?? homelabScenario,
    speed: options.speed ?? 100,
    authFailureDelayMs: 50,
  });
  const dir = await mkdtemp(join(tmpdir(), 'pm-env-'));
  try {
    const token = options.tokenId ? sim.tokens.find((t) => t.tokenId === options.tokenId) : sim.tokens[0];
    if (!token) throw new Error(`the scenario has no token ${options.tokenId ?? ''}`);
    const tokenFile = join(dir, 'pve-token');
    const sshKeyFile = join(dir, 'ssh-key');
    await writeFile(tokenFile, `${token.tokenId}=${token.secret}\n`, { mode: 0o600 });
    await writeFile(sshKeyFile, sim.sshClientKey.privateKey, { mode: 0o600 });

    const config = parseConfig(
      {
        audit: { path: join(dir, 'audit.log') },
        secrets_dir: join(dir, 'secrets'),
        ...options.config,
        environments: {
          [environment]: {
            cluster: {
              name: 'simulated',
              nodes: pinnedNodes(sim),
            },
            credentials: { token: { file: tokenFile }, ssh_key: { file: sshKeyFile }, ssh_user: 'root' },
          },
        },
      },
      'simulated environment',
    );
    const deps = buildWorkerDeps(config);
    return {
      sim,
      environment,
      config,
      deps,
      secrets: [token.secret],
      dir,
      async stop() {
        await Promise.all(
          Object.keys(config.environments).map(async (name) => (await deps.pve(name).catch(() => undefined))?.close()),
        );
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
