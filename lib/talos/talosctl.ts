/**
 * The one adapter around the `talosctl` binary: every Talos step of the orchestrator runs one
 * of these commands, with the arguments written out here, so what the worker does can be read
 * (and replayed by hand) in one place. docs/clusters.md lists the commands.
 *
 * Secrets never pass through arguments or results: machine configs, the talosconfig and the
 * kubeconfig are files the binary reads and writes. Its standard output is parsed, never
 * reported; failures carry the command line and the end of standard error. The binary gets a
 * minimal environment (PATH, HOME and what the caller adds), not the worker's, which may hold
 * credentials.
 */
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';

export interface TalosctlOptions {
  /** The talosctl binary (a path, or a name looked up on PATH). */
  binary: string;
  /** Added to the binary's environment. */
  env?: Record<string, string>;
  /** Time limit of one invocation unless the call sets its own (default 2 minutes). */
  timeoutMs?: number;
}

export interface RunOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Each line of standard output as it arrives (long-running commands such as health). */
  onLine?: (line: string) => void;
}

/**
 * - `already-exists`: Talos answered AlreadyExists (bootstrap of an etcd that has data).
 * - `unavailable`: the node did not answer (booting, rebooting into its new config); worth retrying.
 * - `not-found`: the binary is missing.
 * - `failed`: anything else; repeating would fail the same way.
 */
export type TalosctlFailureKind = 'already-exists' | 'unavailable' | 'not-found' | 'failed';

export class TalosctlError extends Error {
  constructor(
    readonly command: string,
    readonly kind: TalosctlFailureKind,
    readonly exitCode: number | null,
    readonly stderrTail: string,
  ) {
    super(`${command} failed${exitCode !== null ? ` (exit ${exitCode})` : ''}: ${stderrTail || 'no error output'}`);
    this.name = 'TalosctlError';
  }
}

const UNAVAILABLE =
  /code = (Unavailable|DeadlineExceeded)|connection refused|i\/o timeout|no route to host|context deadline exceeded|connection reset/;

function classify(stderr: string): TalosctlFailureKind {
  if (/code = AlreadyExists/.test(stderr)) return 'already-exists';
  if (UNAVAILABLE.test(stderr)) return 'unavailable';
  return 'failed';
}

export interface GenConfigRequest {
  clusterName: string;
  /** `https://<host>:6443` */
  endpoint: string;
  outputDir: string;
  /** Talos release the configs are for (its `vX.Y` is the config contract). */
  talosVersion: string;
  kubernetesVersion?: string;
  installImage?: string;
  /** Patch files (strategic-merge YAML), by the machines they apply to. */
  patches: { all: string[]; controlPlane: string[]; worker: string[] };
}

export type Talosctl = ReturnType<typeof createTalosctl>;

export function createTalosctl(options: TalosctlOptions) {
  const env = {
    PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME ?? tmpdir(),
    ...options.env,
  };

  function run(args: string[], opts: RunOptions = {}): Promise<string> {
    const command = `talosctl ${args.join(' ')}`;
    return new Promise((resolve, reject) => {
      const child = spawn(options.binary, args, {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: opts.timeoutMs ?? options.timeoutMs ?? 120_000,
        ...(opts.signal ? { signal: opts.signal } : {}),
      });
      let stdout = '';
      let partial = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        if (stdout.length < 1 << 20) stdout += chunk;
        if (!opts.onLine) return;
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) opts.onLine(line);
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
        stderr = (stderr + chunk).slice(-4000);
      });
      child.on('error', (err: NodeJS.ErrnoException) => {
        if (err.code === 'ENOENT')
          reject(new TalosctlError(command, 'not-found', null, `no talosctl binary at '${options.binary}'`));
        else if (err.name === 'AbortError') reject(new TalosctlError(command, 'unavailable', null, 'cancelled'));
        else reject(new TalosctlError(command, 'failed', null, err.message));
      });
      child.on('close', (code, signal) => {
        if (code === 0) return resolve(stdout);
        const tail = stderr.trim().split('\n').slice(-6).join('\n');
        if (signal)
          return reject(
            new TalosctlError(
              command,
              'unavailable',
              null,
              `stopped by ${signal} (time limit or cancellation)${tail ? `: ${tail}` : ''}`,
            ),
          );
        reject(new TalosctlError(command, classify(stderr), code, tail));
      });
    });
  }

  /** Global flags of a command aimed at one node through its own API (`--endpoints` = `--nodes`). */
  const at = (talosconfig: string, node: string) => [
    '--talosconfig',
    talosconfig,
    '--nodes',
    node,
    '--endpoints',
    node,
  ];

  return {
    run,

    /** The client's release, e.g. `v1.11.3`. */
    async clientVersion(opts: RunOptions = {}): Promise<string> {
      const out = await run(['version', '--client'], opts);
      const tag = /Tag:\s*(v\S+)/.exec(out)?.[1];
      if (!tag) throw new TalosctlError('talosctl version --client', 'failed', 0, 'no Tag line in its output');
      return tag;
    },

    /** Writes controlplane.yaml, worker.yaml and talosconfig into `outputDir` (new PKI and tokens). */
    async genConfig(r: GenConfigRequest, opts: RunOptions = {}): Promise<void> {
      const contract = /^v?(\d+\.\d+)/.exec(r.talosVersion)?.[1];
      await run(
        [
          'gen',
          'config',
          r.clusterName,
          r.endpoint,
          '--output-dir',
          r.outputDir,
          '--with-docs=false',
          '--with-examples=false',
          ...(contract ? ['--talos-version', `v${contract}`] : []),
          ...(r.kubernetesVersion ? ['--kubernetes-version', r.kubernetesVersion] : []),
          ...(r.installImage ? ['--install-image', r.installImage] : []),
          ...r.patches.all.flatMap((p) => ['--config-patch', `@${p}`]),
          ...r.patches.controlPlane.flatMap((p) => ['--config-patch-control-plane', `@${p}`]),
          ...r.patches.worker.flatMap((p) => ['--config-patch-worker', `@${p}`]),
        ],
        opts,
      );
    },

    /**
     * Whether the node answers our talosconfig: it runs a config of this cluster. A node in
     * maintenance mode (no config yet) or still rebooting does not.
     */
    async answers(talosconfig: string, node: string, opts: RunOptions = {}): Promise<boolean> {
      try {
        await run([...at(talosconfig, node), 'version'], opts);
        return true;
      } catch (err) {
        if (err instanceof TalosctlError && err.kind !== 'not-found') return false;
        throw err;
      }
    },

    /** Hands a node in maintenance mode its machine config. */
    async applyConfigInsecure(node: string, file: string, opts: RunOptions = {}): Promise<void> {
      await run(['apply-config', '--insecure', '--nodes', node, '--file', file], opts);
    },

    /** The state of the etcd service on a control plane (`Running` once the cluster is bootstrapped). */
    async etcdState(talosconfig: string, node: string, opts: RunOptions = {}): Promise<string> {
      const out = await run([...at(talosconfig, node), 'service', 'etcd'], opts);
      return /^STATE\s+(\S+)/m.exec(out)?.[1] ?? 'Unknown';
    },

    /** Bootstraps etcd on one control plane; Talos refuses (AlreadyExists) when etcd has data. */
    async bootstrap(
      talosconfig: string,
      node: string,
      opts: RunOptions = {},
    ): Promise<'bootstrapped' | 'already-bootstrapped'> {
      try {
        await run([...at(talosconfig, node), 'bootstrap'], opts);
        return 'bootstrapped';
      } catch (err) {
        if (err instanceof TalosctlError && err.kind === 'already-exists') return 'already-bootstrapped';
        throw err;
      }
    },

    /** Waits (up to `waitTimeoutSeconds`) until etcd, the control plane and every listed node are healthy. */
    async health(
      r: { talosconfig: string; node: string; controlPlanes: string[]; workers: string[]; waitTimeoutSeconds: number },
      opts: RunOptions = {},
    ): Promise<void> {
      await run(
        [
          ...at(r.talosconfig, r.node),
          'health',
          '--control-plane-nodes',
          r.controlPlanes.join(','),
          ...(r.workers.length > 0 ? ['--worker-nodes', r.workers.join(',')] : []),
          '--wait-timeout',
          `${r.waitTimeoutSeconds}s`,
        ],
        { timeoutMs: (r.waitTimeoutSeconds + 60) * 1000, ...opts },
      );
    },

    /** Writes the cluster's admin kubeconfig to `path`, replacing what is there. */
    async kubeconfig(talosconfig: string, node: string, path: string, opts: RunOptions = {}): Promise<void> {
      await run([...at(talosconfig, node), 'kubeconfig', path, '--force'], opts);
    },

    /** Points the talosconfig at the control planes, so operators can use it as it is. */
    async setEndpoints(talosconfig: string, endpoints: string[], opts: RunOptions = {}): Promise<void> {
      await run(['--talosconfig', talosconfig, 'config', 'endpoint', ...endpoints], opts);
      await run(['--talosconfig', talosconfig, 'config', 'node', endpoints[0]!], opts);
    },
  };
}

/** Where the worker finds talosctl: the configuration's `talosctl` section, else `PM_TALOSCTL`, else `talosctl` on PATH. */
export function configuredTalosctl(config: {
  talosctl?: { binary: string; env: Record<string, string> };
}): TalosctlOptions {
  return config.talosctl ?? { binary: process.env.PM_TALOSCTL ?? 'talosctl' };
}
