/**
 * A worker with every activity in its own process, so a test can kill it with SIGKILL in the
 * middle of a backup — no graceful shutdown, no last heartbeat. Configured through the
 * BACKUP_WORKER environment variable (JSON); prints `ready` once it polls.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from '../../activities/index.js';
import type { AppConfig } from '../../lib/config/schema.js';
import { buildWorkerDeps } from '../../worker/deps.js';
import { installQuietRuntime } from '../support/quiet-runtime.js';
import { workerInterceptors } from '../../worker/keep-alive.js';

interface WorkerSettings {
  address: string;
  namespace: string;
  taskQueue: string;
  workflowBundlePath: string;
  /** The test's configuration: secrets are file references, read here as a real worker reads them. */
  config: AppConfig;
}

const settings = JSON.parse(process.env['BACKUP_WORKER'] ?? '') as WorkerSettings;
installQuietRuntime();
const worker = await Worker.create({
  interceptors: workerInterceptors,
  connection: await NativeConnection.connect({ address: settings.address }),
  namespace: settings.namespace,
  taskQueue: settings.taskQueue,
  workflowBundle: { codePath: settings.workflowBundlePath },
  activities: createActivities(buildWorkerDeps(settings.config)),
});
const running = worker.run();
console.log('ready');
await running;
