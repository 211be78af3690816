/**
 * A worker with every activity in a process of its own (started by startWorkerProcess in
 * ./worker.ts), so a test can kill it with SIGKILL. Configured through the TEST_WORKER
 * environment variable (JSON); prints `ready` once it polls.
 */
import { NativeConnection } from '@temporalio/worker';
import { createActivities } from '../../activities/index.js';
import { buildWorkerDeps } from '../../worker/deps.js';
import { createWorker } from '../../worker/create.js';
import { installQuietRuntime } from './quiet-runtime.js';
import type { WorkerProcessSettings } from './worker.js';

const settings = JSON.parse(process.env['TEST_WORKER'] ?? '') as WorkerProcessSettings;
installQuietRuntime();
const worker = await createWorker({
  connection: await NativeConnection.connect({ address: settings.address }),
  namespace: settings.namespace,
  taskQueue: settings.taskQueue,
  workflowBundle: { codePath: settings.workflowBundlePath },
  activities: createActivities({ ...buildWorkerDeps(settings.config), ...settings.tuning }),
});
const running = worker.run();
console.log('ready');
await running;
