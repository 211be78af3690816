/**
 * Runs a Temporal dev server (`temporal server start-dev`) with the project's search
 * attributes registered, waits until its frontend answers, and stops it cleanly.
 * Used by the test suite's global setup and by the demo launcher.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { dirname } from 'node:path';
import { Connection } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import { searchAttributes } from '../workflows/search-attributes.js';

/** The names `--search-attribute KEY=TYPE` accepts. */
const cliTypeName: Record<SearchAttributeType, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

export function searchAttributeFlags(): string[] {
  return searchAttributes.flatMap((key) => ['--search-attribute', `${key.name}=${cliTypeName[key.type]}`]);
}

export class PortInUseError extends Error {
  constructor(
    readonly host: string,
    readonly port: number,
    what: string,
  ) {
    super(`port ${port} on ${host} (${what}) is already in use — stop whatever holds it, or choose another port`);
    this.name = 'PortInUseError';
  }
}

/** A port the kernel says is free right now (bind to 0, read it, release it). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export function assertPortFree(host: string, port: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(err.code === 'EADDRINUSE' ? new PortInUseError(host, port, what) : err),
    );
    server.listen(port, host, () => server.close(() => resolve()));
  });
}

export interface DevServerOptions {
  /** Path of the Temporal CLI (see ensureTemporalCli). */
  cli: string;
  ip?: string;
  /** Frontend gRPC port; a free one when absent. */
  port?: number;
  /** Web UI port; no UI when absent. */
  uiPort?: number;
  /** SQLite file that keeps workflow history across restarts; in memory when absent. */
  dbFilename?: string;
  namespace?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  /**
   * Lines the server prints (at `logLevel`) while it serves. Startup and shutdown chatter
   * (connection-refused warnings while its services find each other) is kept back, and
   * shown only if startup fails.
   */
  onOutput?: (line: string) => void;
  startTimeoutMs?: number;
}

export interface DevServer {
  address: string;
  namespace: string;
  uiUrl?: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * The dev server's SQLite file holds every workflow's history (plans, approvers, results):
 * its folder is made the owner's alone, and the file (with SQLite's -wal and -shm beside it)
 * readable by its owner only — before the server starts and again once it has created them.
 */
export async function restrictDbFile(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await chmod(dirname(path), 0o700);
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    await chmod(file, 0o600).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
}

export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const ip = options.ip ?? '127.0.0.1';
  const namespace = options.namespace ?? 'default';
  const port = options.port ?? (await freePort(ip));
  await assertPortFree(ip, port, 'Temporal frontend');
  if (options.uiPort !== undefined) await assertPortFree(ip, options.uiPort, 'Temporal UI');
  if (options.dbFilename) await restrictDbFile(options.dbFilename);

  const args = [
    'server',
    'start-dev',
    '--ip',
    ip,
    '--port',
    String(port),
    ...(options.uiPort !== undefined ? ['--ui-port', String(options.uiPort)] : ['--headless']),
    ...(options.dbFilename ? ['--db-filename', options.dbFilename] : []),
    '--namespace',
    namespace,
    '--log-level',
    options.logLevel ?? 'warn',
    ...searchAttributeFlags(),
  ];
  // Its own process group: a terminal's Ctrl-C reaches only the process that started it,
  // which stops the server after the workers that depend on it.
  const child = spawn(options.cli, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const startupLines: string[] = [];
  let serving = false;
  const onLine = (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n').filter(Boolean)) {
      if (serving) {
        options.onOutput?.(line);
      } else {
        startupLines.push(line);
        if (startupLines.length > 400) startupLines.shift();
      }
    }
  };
  child.stdout.on('data', onLine);
  child.stderr.on('data', onLine);

  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // Whatever ends this process (error, Ctrl-C handled elsewhere), the server does not outlive it.
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);

  const address = `${ip}:${port}`;
  const stop = async () => {
    serving = false;
    process.removeListener('exit', killOnExit);
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };

  try {
    await Promise.race([
      waitUntilServing(address, namespace, options.startTimeoutMs ?? 60_000),
      exited.then((code) => {
        throw new Error(`temporal server start-dev exited (code ${code}) before serving:\n${diagnosis(startupLines)}`);
      }),
    ]);
  } catch (err) {
    await stop();
    throw err;
  }
  serving = true;
  if (options.dbFilename) await restrictDbFile(options.dbFilename);

  return {
    address,
    namespace,
    uiUrl: options.uiPort !== undefined ? `http://${ip}:${options.uiPort}` : undefined,
    pid: child.pid!,
    stop,
  };
}

/** What a failed start printed, without Go stack frames and the expected connection-refused noise. */
function diagnosis(lines: string[]): string {
  return lines
    .filter((l) => !/^\s|^goroutine |^[\w./*()-]+\(.*\)$|network dial error/.test(l))
    .slice(-15)
    .join('\n');
}

/** The frontend is up and the namespace exists with our search attributes registered. */
async function waitUntilServing(address: string, namespace: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    let connection: Connection | undefined;
    try {
      connection = await Connection.connect({ address, connectTimeout: 2_000 });
      const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
      const missing = searchAttributes.filter((key) => !(key.name in customAttributes));
      if (missing.length === 0) return;
      lastError = new Error(`search attributes not registered yet: ${missing.map((k) => k.name).join(', ')}`);
    } catch (err) {
      lastError = err;
    } finally {
      await connection?.close();
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`Temporal dev server at ${address} did not become ready in ${timeoutMs} ms: ${String(lastError)}`);
}
