/**
 * A worker in its own process, so a test can kill it with SIGKILL mid-evacuation — no
 * graceful shutdown, no last heartbeat, exactly like a crashed host. Configured through the
 * EVACUATION_WORKER environment variable (JSON); prints `ready` once it polls.
 */
import { createAuditActivities } from '../../activities/audit.js';
import { createMigrationActivities } from '../../activities/migration.js';
import { simDeps, type SimConnection } from '../../bench/sim-environment.js';
import { createAuditLog } from '../../lib/audit/log.js';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';

interface WorkerSettings {
  address: string;
  namespace: string;
  taskQueue: string;
  workflowBundlePath: string;
  auditPath: string;
  sim: SimConnection;
}

const settings = JSON.parse(process.env['EVACUATION_WORKER'] ?? '') as WorkerSettings;
Runtime.install({ logger: new DefaultLogger('WARN') });
const deps = simDeps(settings.sim);
const worker = await Worker.create({
  connection: await NativeConnection.connect({ address: settings.address }),
  namespace: settings.namespace,
  taskQueue: settings.taskQueue,
  workflowBundle: { codePath: settings.workflowBundlePath },
  activities: {
    ...createMigrationActivities({ ...deps, taskPolling: { pollMs: 50, maxPollMs: 100 } }),
    ...createAuditActivities(createAuditLog(settings.auditPath)),
  },
});
const running = worker.run();
console.log('ready');
await running;
