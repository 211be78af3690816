/**
 * A simulated cluster as the worker sees a configured environment: the AppConfig entry, a
 * Proxmox client per environment, and the connection facts a worker in another process needs.
 * Shared by the evacuation benchmark and its integration tests.
 */
import { AppConfig } from '../lib/config/schema.js';
import { createPveClient, type PveClient } from '../lib/pve/client.js';
import type { SimulatedCluster } from '../sim/index.js';
import type { Scenario } from '../sim/scenario.js';

export const SIM_ENVIRONMENT = 'sim';
export const SIM_TOKEN = { id: 'automation@pve!pm', secret: 'sim-secret-0123456789' };

/** Grants the benchmark's token what the seeds' ClaudeCodeManager role holds, on the whole cluster. */
export function withAutomationToken(scenario: Scenario): Scenario {
  return {
    ...scenario,
    tokens: [
      ...(scenario.tokens ?? []),
      { id: SIM_TOKEN.id, secret: SIM_TOKEN.secret, acl: [{ path: '/', roles: ['Administrator'] }] },
    ],
  };
}

/** What a worker process needs to reach the simulator (no secrets beyond the simulator's own test token). */
export interface SimConnection {
  nodes: { name: string; host: string; port: number }[];
  fingerprint: string;
}

export function simConnection(sim: SimulatedCluster): SimConnection {
  return { nodes: sim.nodes.map((n) => ({ name: n.name, host: n.host, port: n.port })), fingerprint: sim.tlsFingerprint };
}

export function simClient(connection: SimConnection): PveClient {
  return createPveClient({
    nodes: connection.nodes,
    tls: { fingerprint: connection.fingerprint },
    credential: { tokenId: SIM_TOKEN.id, secret: SIM_TOKEN.secret },
  });
}

/** Configuration of the one simulated environment, with the given safety policy. */
export function simConfig(connection: SimConnection, policy: { memory_headroom?: number; cpu_oversubscription?: number } = {}): AppConfig {
  return AppConfig.parse({
    environments: {
      [SIM_ENVIRONMENT]: {
        cluster: { name: 'sim', nodes: connection.nodes },
        tls: { fingerprint: connection.fingerprint },
        credentials: { token: { env: 'PM_SIM_TOKEN_UNUSED' } },
        policy,
      },
    },
  });
}

/** The `{ pve, config }` dependencies migration activities take, pointed at the simulator. */
export function simDeps(connection: SimConnection, policy?: Parameters<typeof simConfig>[1]) {
  const client = simClient(connection);
  return {
    config: simConfig(connection, policy),
    pve: async (environment: string) => {
      if (environment !== SIM_ENVIRONMENT) throw new Error(`unknown environment '${environment}'`);
      return client;
    },
    close: () => client.close(),
  };
}
