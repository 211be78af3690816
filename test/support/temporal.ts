/**
 * Integration-test access to the one Temporal dev server started by test/globalSetup.ts.
 *
 *   const client = await testConnection();
 *   const worker = await startTestWorker({ activities: createActivities(deps) });
 *   afterAll(() => worker.shutdown());
 *   await client.workflow.execute(vmAction, { taskQueue: worker.taskQueue, ... });
 *
 * Each worker polls its own task queue, so test files running in parallel never pick up
 * each other's workflows.
 */
import { randomUUID } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import { inject } from 'vitest';
import { installQuietRuntime } from './quiet-runtime.js';
import { createWorker, type CreateWorkerOptions } from '../../worker/create.js';

let client: Promise<Client> | undefined;

/** A client on the shared dev server; one connection per test file (process). */
export function testConnection(): Promise<Client> {
  client ??= Connection.connect({ address: inject('temporalAddress') }).then(
    (connection) => new Client({ connection, namespace: inject('temporalNamespace') }),
  );
  return client;
}

export function uniqueTaskQueue(label = 'test'): string {
  return `${label}-${randomUUID().slice(0, 8)}`;
}

export interface TestWorker {
  taskQueue: string;
  client: Client;
  worker: Worker;
  /** Stops polling, lets running tasks finish, closes the worker's connection. */
  shutdown(): Promise<void>;
}

export interface TestWorkerOptions {
  /** Activities the workflows call; tests build them from the simulator or fakes. */
  activities?: object;
  /** A fresh unique queue when absent. */
  taskQueue?: string;
  /**
   * Bundle this workflows file instead of using the run's pre-built bundle of
   * workflows/index.ts (slower: webpack runs for this worker).
   */
  workflowsPath?: string;
  /** Anything else createWorker accepts (sinks, concurrency limits); the interceptors are always the project's. */
  workerOptions?: Partial<CreateWorkerOptions>;
}

export async function startTestWorker(options: TestWorkerOptions = {}): Promise<TestWorker> {
  installQuietRuntime();
  const taskQueue = options.taskQueue ?? uniqueTaskQueue();
  const workflowBundlePath = inject('workflowBundlePath');
  if (!options.workflowsPath && !workflowBundlePath) {
    throw new Error('no workflow bundle: workflows/index.ts did not exist when the test run started');
  }
  const connection = await NativeConnection.connect({ address: inject('temporalAddress') });
  const worker = await createWorker({
    connection,
    namespace: inject('temporalNamespace'),
    taskQueue,
    activities: options.activities,
    ...(options.workflowsPath
      ? { workflowsPath: options.workflowsPath }
      : { workflowBundle: { codePath: workflowBundlePath! } }),
    shutdownGraceTime: '2s',
    ...options.workerOptions,
  });
  const running = worker.run();
  return {
    taskQueue,
    client: await testConnection(),
    worker,
    async shutdown() {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await running;
      await connection.close();
    },
  };
}
