/**
 * A worker in its own process, so a test can kill it with SIGKILL in the middle of a node's
 * maintenance — no graceful shutdown, no last heartbeat, exactly like a crashed host.
 * Configured through the MAINTENANCE_WORKER environment variable (JSON); prints `ready`
 * once it polls.
 */
import { NativeConnection, Worker } from '@temporalio/worker';
import { installQuietRuntime } from '../support/quiet-runtime.js';
import { createApprovalActivities } from '../../activities/approvals.js';
import { createAuditActivities } from '../../activities/audit.js';
import { createRollingMaintenanceActivities } from '../../activities/rolling-maintenance.js';
import { createEvacuationActivities } from '../../activities/evacuation.js';
import type { AppConfig } from '../../lib/config/schema.js';
import { buildWorkerDeps } from '../../worker/deps.js';

interface WorkerSettings {
  address: string;
  namespace: string;
  taskQueue: string;
  workflowBundlePath: string;
  /** The test's configuration: secrets are file references, read here as a real worker reads them. */
  config: AppConfig;
}

const settings = JSON.parse(process.env['MAINTENANCE_WORKER'] ?? '') as WorkerSettings;
installQuietRuntime();
const deps = buildWorkerDeps(settings.config);
const worker = await Worker.create({
  connection: await NativeConnection.connect({ address: settings.address }),
  namespace: settings.namespace,
  taskQueue: settings.taskQueue,
  workflowBundle: { codePath: settings.workflowBundlePath },
  activities: {
    ...createEvacuationActivities({ ...deps, taskPolling: { pollMs: 20, maxPollMs: 50 } }),
    ...createRollingMaintenanceActivities({ ...deps, pollMs: 20 }),
    ...createAuditActivities(deps.audit),
    ...createApprovalActivities(deps),
  },
});
const running = worker.run();
console.log('ready');
await running;
