/**
 * An in-process worker on any Temporal server, from the run's pre-built workflow bundle.
 * Fault tests fail activities and workflows on purpose, hundreds of times: the runtime logs
 * only errors here, so the output shows what the tests say rather than every injected fault.
 */
import type { Info as ActivityInfo } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger, NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { inject } from 'vitest';
import { workerInterceptors } from '../../../worker/keep-alive.js';

let installed = false;

function installQuietRuntime(): void {
  if (installed) return;
  installed = true;
  Runtime.install({ logger: new DefaultLogger('ERROR') });
}

export interface InProcessWorker {
  taskQueue: string;
  worker: Worker;
  shutdown(): Promise<void>;
}

export async function startInProcessWorker(options: {
  address?: string;
  namespace?: string;
  taskQueue: string;
  activities: object;
  workerOptions?: Partial<WorkerOptions>;
}): Promise<InProcessWorker> {
  installQuietRuntime();
  const bundle = inject('workflowBundlePath');
  if (!bundle) throw new Error('no workflow bundle: workflows/index.ts did not exist when the test run started');
  const connection = await NativeConnection.connect({ address: options.address ?? inject('temporalAddress') });
  const worker = await Worker.create({
    interceptors: workerInterceptors,
    connection,
    namespace: options.namespace ?? inject('temporalNamespace'),
    taskQueue: options.taskQueue,
    activities: options.activities,
    workflowBundle: { codePath: bundle },
    shutdownGraceTime: '2s',
    ...options.workerOptions,
  });
  const running = worker.run();
  return {
    taskQueue: options.taskQueue,
    worker,
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
    },
  };
}

/**
 * An activity context without a worker (MockActivityEnvironment), for calling activities
 * directly — as attempt `info.attempt` of workflow `info.workflowExecution` — without logging
 * every failure the test provokes.
 */
export function activityEnvironment(info: Partial<ActivityInfo> = {}): MockActivityEnvironment {
  return new MockActivityEnvironment(info, { logger: new DefaultLogger('ERROR', () => undefined) });
}
