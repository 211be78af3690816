/**
 * The Proxmox VE client: typed methods grouped by API resource. Every call is built from its
 * definition in endpoints.ts, checked before it is sent (a bug in our code fails here, naming
 * the parameter, instead of as a 400 from PVE), and its answer is parsed into the declared type.
 */
import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EnvironmentConfig } from '../config/schema.js';
import { resolveApiToken } from '../config/secrets.js';
import {
  buildRequest,
  endpoints,
  type Endpoint,
  type EndpointName,
  type ParamsOf,
  type ResultOf,
  type WireRequest,
} from './endpoints.js';
import { isTransient, PveApiError } from './errors.js';
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

type ClientMethod<N extends EndpointName> =
  Record<never, never> extends ParamsOf<N>
    ? (params?: ParamsOf<N>) => Promise<ResultOf<N>>
    : (params: ParamsOf<N>) => Promise<ResultOf<N>>;

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

  async function send<N extends EndpointName>(name: N, params: ParamsOf<N> | undefined) {
    const endpoint: Endpoint = endpoints[name];
    const req = buildRequest(endpoint, (params ?? {}) as Record<string, unknown>);
    const envelope = await exchange(req);
    const parsed = endpoint.returns.safeParse(envelope.data);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue?.path.length ? ` at ${issue.path.join('.')}` : '';
      throw new PveApiError(
        { method: req.method, path: req.path },
        200,
        `answer does not have the shape ${name} expects${where}: ${issue?.message ?? 'invalid'}`,
      );
    }
    return { data: parsed.data as ResultOf<N>, total: envelope.total };
  }

  /** Calls any endpoint by name; the grouped methods below are this, named for their resource. */
  async function call<N extends EndpointName>(name: N, params?: ParamsOf<N>): Promise<ResultOf<N>> {
    return (await send(name, params)).data;
  }

  const method = <N extends EndpointName>(name: N) => ((params?: ParamsOf<N>) => call(name, params)) as ClientMethod<N>;

  return {
    call,
    cluster: {
      version: method('version'),
      resources: method('clusterResources'),
      status: method('clusterStatus'),
      /** The next free VMID (or, given `vmid`, whether that one is free: 400 when taken). */
      nextId: method('clusterNextId'),
      haResources: method('haResources'),
      haRules: method('haRules'),
      /** Recent tasks of every node. */
      tasks: method('clusterTasks'),
      options: method('clusterOptions'),
      pools: method('pools'),
      /** storage.cfg: every storage, whichever node has it. */
      storage: method('storageConfigs'),
    },
    nodes: {
      list: method('nodes'),
      status: method('nodeStatus'),
      network: method('nodeNetwork'),
      /** The node's own clock, which need not agree with ours. */
      time: method('nodeTime'),
    },
    qemu: {
      list: method('qemuList'),
      create: method('qemuCreate'),
      config: method('qemuConfig'),
      /** Synchronous config change (PUT). */
      updateConfig: method('qemuUpdateConfig'),
      /** Config change that may return a UPID (POST), e.g. when disks are allocated. */
      updateConfigAsync: method('qemuUpdateConfigAsync'),
      destroy: method('qemuDestroy'),
      status: method('qemuStatus'),
      start: method('qemuStart'),
      stop: method('qemuStop'),
      shutdown: method('qemuShutdown'),
      reboot: method('qemuReboot'),
      clone: method('qemuClone'),
      template: method('qemuTemplate'),
      resize: method('qemuResize'),
      snapshots: method('qemuSnapshots'),
      snapshot: method('qemuSnapshotCreate'),
      deleteSnapshot: method('qemuSnapshotDelete'),
      rollback: method('qemuSnapshotRollback'),
      migratePreconditions: method('qemuMigratePreconditions'),
      migrate: method('qemuMigrate'),
      agentNetworkInterfaces: method('qemuAgentNetworkInterfaces'),
      /** Changes that wait for the VM's next start. */
      pending: method('qemuPending'),
      snapshotConfig: method('qemuSnapshotConfig'),
    },
    lxc: {
      list: method('lxcList'),
      create: method('lxcCreate'),
      config: method('lxcConfig'),
      updateConfig: method('lxcUpdateConfig'),
      destroy: method('lxcDestroy'),
      status: method('lxcStatus'),
      start: method('lxcStart'),
      stop: method('lxcStop'),
      shutdown: method('lxcShutdown'),
      reboot: method('lxcReboot'),
      snapshots: method('lxcSnapshots'),
      snapshot: method('lxcSnapshotCreate'),
      deleteSnapshot: method('lxcSnapshotDelete'),
      rollback: method('lxcSnapshotRollback'),
      migratePreconditions: method('lxcMigratePreconditions'),
      migrate: method('lxcMigrate'),
      snapshotConfig: method('lxcSnapshotConfig'),
      interfaces: method('lxcInterfaces'),
    },
    storage: {
      list: method('storageList'),
      content: method('storageContent'),
      downloadUrl: method('storageDownloadUrl'),
      deleteVolume: method('storageDeleteVolume'),
      status: method('storageStatus'),
    },
    backup: {
      /** vzdump: back up guests of one node to a storage (a task). */
      vzdump: method('vzdump'),
      /** The guest config stored in a backup archive. */
      extractConfig: method('vzdumpExtractConfig'),
    },
    tasks: {
      status: method('taskStatus'),
      /** A window of the task log (`start` lines skipped, at most `limit`), with the log's length. */
      async log(params: ParamsOf<'taskLog'>): Promise<TaskLog> {
        const { data, total } = await send('taskLog', params);
        return { lines: data, total: total ?? data.length };
      },
      list: method('taskList'),
      stop: method('taskStop'),
    },
    access: {
      permissions: method('accessPermissions'),
    },
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
