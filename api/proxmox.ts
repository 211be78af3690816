/**
 * The API's read-only view of each environment's Proxmox, over lib/pve. Clients are created
 * on first use (credentials are resolved then, inside this process) and reused; a failed
 * creation is retried on the next call rather than cached.
 */
import type { AppConfig, EnvironmentConfig } from '../lib/config/schema.js';
import { readInventory } from '../lib/inventory.js';
import { createPveClientForEnvironment, type PveClient } from '../lib/pve/client.js';
import { PveAuthError, PvePermissionError, PveTlsError } from '../lib/pve/errors.js';
import type { NodeReachability, ReadOnlyProxmox } from './deps.js';

export interface ReadOnlyProxmoxOptions {
  /** Per request, for probes. */
  pingTimeoutMs?: number;
  /** Builds the client of an environment (tests hand in the simulator here). */
  connect?: (env: EnvironmentConfig, opts: { timeoutMs?: number }) => Promise<PveClient>;
}

function cached(create: () => Promise<PveClient>): () => Promise<PveClient> {
  let client: Promise<PveClient> | undefined;
  return () => {
    if (!client) {
      client = create();
      client.catch(() => (client = undefined));
    }
    return client;
  };
}

/**
 * Why a node did not answer, in words safe for a public probe: no token ids, hosts or
 * secret references.
 */
function reachability(node: string, err: unknown): NodeReachability {
  if (err instanceof PveAuthError || err instanceof PvePermissionError) {
    return { node, status: 'unauthorized', detail: 'the node refused the configured API token' };
  }
  if (err instanceof PveTlsError) {
    return {
      node,
      status: 'unreachable',
      detail: 'TLS verification failed (certificate does not match the pinned one)',
    };
  }
  if (err instanceof Error && err.name === 'SecretError') {
    return { node, status: 'unauthorized', detail: 'the API token could not be read from its configured source' };
  }
  return { node, status: 'unreachable', detail: 'no answer' };
}

export function createReadOnlyProxmox(config: AppConfig, options: ReadOnlyProxmoxOptions = {}): ReadOnlyProxmox {
  const connect = options.connect ?? createPveClientForEnvironment;
  const pingTimeoutMs = options.pingTimeoutMs ?? 3_000;
  const environment = (name: string) => {
    const env = Object.hasOwn(config.environments, name) ? config.environments[name] : undefined;
    if (!env) throw new Error(`unknown environment '${name}'`);
    return env;
  };

  const clusterClients = new Map<string, () => Promise<PveClient>>();
  // One client per node for probes: the cluster client fails over, which would hide a down node.
  const nodeClients = new Map<string, () => Promise<PveClient>>();

  const clusterClient = (name: string) => {
    let get = clusterClients.get(name);
    if (!get) {
      const env = environment(name);
      get = cached(() => connect(env, {}));
      clusterClients.set(name, get);
    }
    return get();
  };

  const nodeClient = (name: string, node: EnvironmentConfig['cluster']['nodes'][number]) => {
    const key = `${name}/${node.name}`;
    let get = nodeClients.get(key);
    if (!get) {
      const env = environment(name);
      const single: EnvironmentConfig = { ...env, cluster: { ...env.cluster, nodes: [node] } };
      get = cached(() => connect(single, { timeoutMs: pingTimeoutMs }));
      nodeClients.set(key, get);
    }
    return get();
  };

  return {
    client: clusterClient,
    async inventory(name) {
      return readInventory(await clusterClient(name));
    },
    async ping(name) {
      return Promise.all(
        environment(name).cluster.nodes.map(async (node): Promise<NodeReachability> => {
          try {
            await (await nodeClient(name, node)).cluster.version();
            return { node: node.name, status: 'ok' };
          } catch (err) {
            return reachability(node.name, err);
          }
        }),
      );
    },
  };
}
