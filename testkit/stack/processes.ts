/**
 * The real entry points as child processes — `worker/main.ts`, `api/main.ts` — started with
 * PM_CONFIG the way an operator starts them, so the suite can SIGKILL them like a crashed host
 * (no graceful shutdown, no last heartbeat) and start them again. Their output goes to a log
 * file that the secrets scan reads afterwards.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

export interface ChildService {
  name: string;
  process: ChildProcess;
  logFile: string;
  /** Output so far (stdout and stderr interleaved). */
  output(): string;
  /** SIGKILL, and wait until it is gone. */
  kill(): Promise<void>;
  /** SIGTERM (graceful), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  name: string;
  /** Entry point relative to the repository root. */
  entry: string;
  configPath: string;
  /** Where the log goes; `<dir>/<name>-<n>.log`. */
  logDir: string;
  /** A line that says the service is up. */
  ready: RegExp;
  readyTimeoutMs?: number;
  env?: NodeJS.ProcessEnv;
}

let started = 0;

export async function spawnService(options: SpawnOptions): Promise<ChildService> {
  const logFile = join(options.logDir, `${options.name}-${++started}.log`);
  const log = createWriteStream(logFile);
  const child = spawn(process.execPath, ['--import', 'tsx', options.entry], {
    cwd: repoRoot,
    env: { ...process.env, PM_CONFIG: options.configPath, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const onData = (chunk: Buffer) => {
    output += chunk.toString();
    log.write(chunk);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = once(child, 'exit');
  const gone = () => child.exitCode !== null || child.signalCode !== null;

  const service: ChildService = {
    name: options.name,
    process: child,
    logFile,
    output: () => output,
    async kill() {
      if (!gone()) {
        child.kill('SIGKILL');
        await exited;
      }
      await new Promise<void>((done) => log.end(done));
    },
    async stop(graceMs = 10_000) {
      if (!gone()) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      await new Promise<void>((done) => log.end(done));
    },
  };

  const deadline = Date.now() + (options.readyTimeoutMs ?? 90_000);
  while (!options.ready.test(output)) {
    if (gone()) {
      await service.kill();
      throw new Error(
        `${options.name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output.slice(-2_000)}`,
      );
    }
    if (Date.now() > deadline) {
      await service.kill();
      throw new Error(
        `${options.name} was not ready within ${options.readyTimeoutMs ?? 90_000} ms:\n${output.slice(-2_000)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return service;
}

/** `npx tsx worker/main.ts` with PM_CONFIG: bundles the workflows, connects, polls. */
export function spawnWorker(cluster: { configPath: string; dir: string; logFiles: string[] }): Promise<ChildService> {
  return spawnService({
    name: 'worker',
    entry: 'worker/main.ts',
    configPath: cluster.configPath,
    logDir: cluster.dir,
    ready: /worker: polling task queue/,
  }).then((worker) => {
    cluster.logFiles.push(worker.logFile);
    return worker;
  });
}

/** `npx tsx api/main.ts` with PM_CONFIG; resolves with its base URL once it listens. */
export async function spawnApi(cluster: {
  configPath: string;
  dir: string;
  logFiles: string[];
}): Promise<ChildService & { url: string }> {
  const api = await spawnService({
    name: 'api',
    entry: 'api/main.ts',
    configPath: cluster.configPath,
    logDir: cluster.dir,
    ready: /api: listening on http:\/\/[^\s]+:\d+/,
  });
  cluster.logFiles.push(api.logFile);
  const url = /api: listening on (http:\/\/[^\s]+:\d+)/.exec(api.output())![1]!;
  return Object.assign(api, { url });
}
