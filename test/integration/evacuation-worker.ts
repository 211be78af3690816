/**
 * A worker in its own process, so a test can kill it with SIGKILL mid-evacuation — no
 * graceful shutdown, no last heartbeat, exactly like a crashed host. Configured through the
 * EVACUATION_WORKER environment variable (JSON); prints `ready` once it polls.
 */
import { createApprovalActivities } from '../../activities/approvals.js';
import { createAuditActivities } from '../../activities/audit.js';
import { createEvacuationActivities } from '../../activities/evacuation.js';
import type { AppConfig } from '../../lib/config/schema.js';
import { buildWorkerDeps } from '../../worker/deps.js';
import { NativeConnection, Worker } from '@temporalio/worker';
import { installQuietRuntime } from '../support/quiet-runtime.js';

interface WorkerSettings {
  address: string;
  namespace: string;
  taskQueue: string;
  workflowBundlePath: string;
  /** The test's configuration: secrets are file references, read here as a real worker reads them. */
  config: AppConfig;
}

const settings = JSON.parse(process.env['EVACUATION_WORKER'] ?? '') as WorkerSettings;
installQuietRuntime();
const deps = buildWorkerDeps(settings.config);
const worker = await Worker.create({
  connection: await NativeConnection.connect({ address: settings.address }),
  namespace: settings.namespace,
  taskQueue: settings.taskQueue,
  workflowBundle: { codePath: settings.workflowBundlePath },
  activities: {
    ...createEvacuationActivities({ ...deps, taskPolling: { pollMs: 50, maxPollMs: 100 } }),
    ...createAuditActivities(deps.audit),
    ...createApprovalActivities(deps),
  },
});
const running = worker.run();
console.log('ready');
await running;
