/**
 * The whole stack for the benchmarks, each part in the process it runs in for real: a Temporal
 * dev server, the simulator (in this process, for its counters), the worker and the API as
 * `worker/main.ts` and `api/main.ts` children reading one generated configuration file.
 */
import { ensureSigningKey } from '../approvals.js';
import { Client, Connection } from '@temporalio/client';
import type { Role } from '../../lib/config/schema.js';
import type { ResolvedScenario, Scenario } from '../../sim/index.js';
import { ensureTemporalCli } from '../../scripts/temporal-cli.js';
import { startDevServer, type DevServer } from '../../scripts/temporal-server.js';
import { startSuiteCluster, type SuiteCluster } from './cluster.js';
import { spawnApi, spawnWorker, type ChildService } from './processes.js';

export interface Stack {
  temporal: DevServer;
  client: Client;
  cluster: SuiteCluster;
  worker: ChildService;
  api?: ChildService & { url: string };
  /** Milliseconds each part took to come up. */
  startup: Record<string, number>;
  stop(): Promise<void>;
}

export async function startStack(options: {
  scenario: Scenario | ResolvedScenario;
  speed: number;
  actors?: { actor: string; roles: Role[] }[];
  api?: boolean;
  taskQueue?: string;
}): Promise<Stack> {
  ensureSigningKey(); // the API and worker processes it starts inherit it
  const startup: Record<string, number> = {};
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const began = Date.now();
    const value = await fn();
    startup[name] = Date.now() - began;
    return value;
  };
  const cli = await ensureTemporalCli();
  const temporal = await timed('temporal', () => startDevServer({ cli: cli.path }));
  const stops: (() => Promise<unknown>)[] = [() => temporal.stop()];
  const stop = async () => {
    for (const fn of stops.splice(0).reverse()) await fn().catch(() => undefined);
  };
  try {
    const connection = await Connection.connect({ address: temporal.address });
    stops.push(() => connection.close());
    const client = new Client({ connection, namespace: temporal.namespace });
    const cluster = await timed('simulator', () =>
      startSuiteCluster({
        scenario: options.scenario,
        speed: options.speed,
        ...(options.actors ? { actors: options.actors } : {}),
        temporal: {
          address: temporal.address,
          namespace: temporal.namespace,
          taskQueue: options.taskQueue ?? 'proxmox-manager',
        },
      }),
    );
    stops.push(() => cluster.stop());
    const worker = await timed('worker', () => spawnWorker(cluster));
    stops.push(() => worker.stop());
    const api = options.api ? await timed('api', () => spawnApi(cluster)) : undefined;
    if (api) stops.push(() => api.stop());
    return { temporal, client, cluster, worker, ...(api ? { api } : {}), startup, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The p-th percentile (0-100) of a list of numbers. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

/** A plain-text table: one header row, right-aligned numbers. */
export function table(rows: (string | number)[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => String(r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) =>
          typeof cell === 'number' ? String(cell).padStart(widths[i]!) : String(cell).padEnd(widths[i]!),
        )
        .join('  '),
    )
    .join('\n');
}
