/**
 * The worker process: configuration -> dependencies -> Temporal worker.
 *   PM_CONFIG=config/proxmox-manager.yaml npx tsx worker/main.ts
 */
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { createActivities } from '../activities/index.js';
import { ConfigError, loadConfig } from '../lib/config/load.js';
import type { AppConfig } from '../lib/config/schema.js';
import { temporalConnectOptions } from '../lib/config/temporal.js';
import { ensureDriftSchedule } from '../lib/manifest/schedule.js';
import { ensureDrillSchedules } from './drill-schedule.js';
import { buildWorkerDeps } from './deps.js';
import { createWorker } from './create.js';

export const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

async function main(): Promise<void> {
  const config = loadConfig();
  const deps = buildWorkerDeps(config);
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect(temporalConnectOptions(config.temporal));
  } catch {
    throw new StartupError(
      `Temporal at ${config.temporal.address} is not reachable: start the stack with 'npm run demo', or set temporal.address in ${process.env.PM_CONFIG ?? 'the config'}`,
    );
  }
  const worker = await createWorker({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.task_queue,
    workflowsPath,
    activities: createActivities(deps),
    maxConcurrentActivityTaskExecutions: config.temporal.max_concurrent_activities,
  });
  await scheduleDriftDetection(config);
  await scheduleRestoreDrills(config);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => worker.shutdown());
  console.log(`worker: polling task queue '${config.temporal.task_queue}' on ${config.temporal.address}`);
  await worker.run();
  await connection.close();
}

/** With `manifests.drift_interval` set, every environment gets its drift schedule (idempotent). */
async function scheduleDriftDetection(config: AppConfig): Promise<void> {
  if (!config.manifests.drift_interval) return;
  const connection = await Connection.connect(temporalConnectOptions(config.temporal));
  try {
    const client = new Client({ connection, namespace: config.temporal.namespace });
    const schedules = await ensureDriftSchedule(client, config);
    console.log(
      `worker: drift schedules ${schedules.map((s) => s.scheduleId).join(', ')} every ${config.manifests.drift_interval}`,
    );
  } finally {
    await connection.close();
  }
}

/** Every environment's restore-drill schedule, as `backups.drill_schedule` says (idempotent; removed when turned off). */
async function scheduleRestoreDrills(config: AppConfig): Promise<void> {
  const connection = await Connection.connect(temporalConnectOptions(config.temporal));
  try {
    const client = new Client({ connection, namespace: config.temporal.namespace });
    for (const s of await ensureDrillSchedules(client, config))
      console.log(`worker: restore-drill schedule ${s.scheduleId} ${s.state}`);
  } finally {
    await connection.close();
  }
}

class StartupError extends Error {}

main().catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof StartupError) {
    console.error(`worker: ${err.message}`);
  } else {
    console.error(`worker: stopped: ${err instanceof Error ? err.message : String(err)}`);
  }
  process.exit(1);
});
