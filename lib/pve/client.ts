/**
 * The Proxmox VE client: typed methods grouped by API resource. Every call is built from its
 * definition in lib/pve/<resource>/endpoints.ts, checked before it is sent (a bug in our code fails here, naming
 * the parameter, instead of as a 400 from PVE), and its answer is parsed into the declared type.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EnvironmentConfig } from '../config/schema.js';
import { resolveApiToken } from '../config/secrets.js';
import { access } from './access/endpoints.js';
import { backup } from './backup/endpoints.js';
import { cluster } from './cluster/endpoints.js';
import {
  buildRequest,
  type Endpoint,
  type ParamsOfEndpoint,
  type ResultOfEndpoint,
  type WireRequest,
} from './endpoint.js';
import { isTransient, PveApiError } from './errors.js';
import { ha } from './ha/endpoints.js';
import { lxc } from './lxc/endpoints.js';
import { nodes } from './nodes/endpoints.js';
import { pools } from './pools/endpoints.js';
import { qemu } from './qemu/endpoints.js';
import { endpoints, type EndpointName, type ParamsOf, type ResultOf } from './registry.js';
import { storage, storageConfig } from './storage/endpoints.js';
import { tasks } from './tasks/endpoints.js';
import {
  createHttpTransport,
  type PveCredential,
  type PveEnvelope,
  type PveNodeAddress,
  type PveTlsOptions,
  type PveTransport,
} from './transport.js';

export interface PveClientOptions {
  nodes: readonly PveNodeAddress[];
  tls: PveTlsOptions;
  credential: PveCredential;
  timeoutMs?: number;
  preferredNode?: string;
  /** Replaces HTTPS (tests record or script requests here); nodes/tls/credential are then unused. */
  transport?: PveTransport;
  /** How a read (GET) that failed transiently is repeated in place; writes never are. */
  readRetry?: ReadRetry;
}

/**
 * A GET that met a passing hiccup (no answer, a bare 5xx, a lock timeout) is sent again here,
 * after growing pauses, so one dropped read does not fail — and repeat — a whole activity.
 * Bounded: after `attempts` the error goes to the caller, whose activity fails retryably.
 */
export interface ReadRetry {
  /** Sends in all, the first included; 1 turns repetition off. */
  attempts: number;
  /** Pause before the second send; doubled before each further one. */
  pauseMs: number;
}

export const DEFAULT_READ_RETRY: ReadRetry = { attempts: 4, pauseMs: 200 };

type ClientMethod<E extends Endpoint> =
  Record<never, never> extends ParamsOfEndpoint<E>
    ? (params?: ParamsOfEndpoint<E>) => Promise<ResultOfEndpoint<E>>
    : (params: ParamsOfEndpoint<E>) => Promise<ResultOfEndpoint<E>>;

type ClientMethods<G extends Record<string, Endpoint>> = { [K in keyof G]: ClientMethod<G[K]> };

export interface TaskLog {
  lines: { n: number; t: string }[];
  /** Lines in the whole log. */
  total: number;
}

export type PveClient = ReturnType<typeof createPveClient>;

export function createPveClient(opts: PveClientOptions) {
  const transport = opts.transport ?? createHttpTransport(opts);
  const readRetry = opts.readRetry ?? DEFAULT_READ_RETRY;

  /** Writes are sent once: whether PVE acted on an unanswered one is for the caller to find out. */
  async function exchange(req: WireRequest): Promise<PveEnvelope> {
    if (req.method !== 'GET') return transport.send(req);
    for (let attempt = 1; ; attempt++) {
      try {
        return await transport.send(req);
      } catch (err) {
        if (attempt >= readRetry.attempts || !isTransient(err)) throw err;
        await sleep(readRetry.pauseMs * 2 ** (attempt - 1));
      }
    }
  }

  async function send<E extends Endpoint>(endpoint: E, params: ParamsOfEndpoint<E> | undefined) {
    const req = buildRequest<Endpoint>(endpoint, (params ?? {}) as Record<string, unknown>);
    const envelope = await exchange(req);
    const parsed = endpoint.returns.safeParse(envelope.data);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
      throw new PveApiError(
        { method: req.method, path: req.path },
        200,
        `answer does not have the shape ${endpoint.name} expects${where}: ${issue?.message ?? 'invalid'}`,
      );
    }
    return { data: parsed.data as ResultOfEndpoint<E>, total: envelope.total };
  }

  /** Calls any endpoint by name (runbooks name theirs); the methods below are this, grouped by resource. */
  async function call<N extends EndpointName>(name: N, params?: ParamsOf<N>): Promise<ResultOf<N>> {
    return (await send(endpoints[name] as Endpoint, params)).data as ResultOf<N>;
  }

  /** One client method per endpoint of a resource, under the same keys. */
  const methods = <G extends Record<string, Endpoint>>(group: G): ClientMethods<G> =>
    Object.fromEntries(
      Object.entries(group).map(([key, endpoint]) => [
        key,
        async (params?: Record<string, unknown>) => (await send(endpoint as Endpoint, params)).data,
      ]),
    ) as ClientMethods<G>;

  return {
    call,
    cluster: {
      ...methods({
        ...cluster,
        haResources: ha.resources,
        pools: pools.list,
        /** storage.cfg: every storage, whichever node has it. */
        storage: storageConfig.list,
      }),
      /** PVE 9's HA rules; PVE 8 has no such endpoint (501), which means it has no rules. */
      async haRules(params?: ParamsOfEndpoint<typeof ha.rules>): Promise<ResultOfEndpoint<typeof ha.rules>> {
        try {
          return (await send(ha.rules, params)).data as ResultOfEndpoint<typeof ha.rules>;
        } catch (err) {
          if (err instanceof PveApiError && err.status === 501) return [];
          throw err;
        }
      },
    },
    nodes: methods(nodes),
    qemu: methods(qemu),
    lxc: methods(lxc),
    storage: methods(storage),
    backup: methods(backup),
    tasks: {
      ...methods(tasks),
      /** A window of the task log (`start` lines skipped, at most `limit`), with the log's length. */
      async log(params: ParamsOfEndpoint<typeof tasks.log>): Promise<TaskLog> {
        const { data, total } = await send(tasks.log, params);
        return { lines: data, total: total ?? data.length };
      },
    },
    access: methods(access),
    close: () => transport.close(),
  };
}

/**
 * A client for a configured environment. The token is resolved here, inside the worker or API
 * process, and lives only in the transport's Authorization header.
 */
export async function createPveClientForEnvironment(
  env: EnvironmentConfig,
  opts: { timeoutMs?: number; preferredNode?: string; readRetry?: ReadRetry } = {},
): Promise<PveClient> {
  const credential = await resolveApiToken(env);
  const ca = env.tls.ca_file ? await readCa(env.tls.ca_file) : undefined;
  return createPveClient({
    nodes: env.cluster.nodes.map((n) => ({ name: n.name, host: n.host, port: n.port, fingerprint: n.tls_fingerprint })),
    tls: { ca, fingerprint: env.tls.fingerprint, insecure: env.tls.insecure },
    credential,
    ...opts,
  });
}

async function readCa(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`tls.ca_file ${path} cannot be read (${(err as NodeJS.ErrnoException).code})`, { cause: err });
  }
}
