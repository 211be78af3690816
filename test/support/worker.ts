/**
 * Workers for an environment with every activity the worker process registers — never a
 * hand-picked subset, where a missing activity only shows when a workflow first calls it.
 *
 *   const worker = await startEnvironmentWorker(env.deps, { tuning: SIMULATED_POLLING });
 *   const stack = environmentForFile({ speed: 200 });   // stack.env, stack.worker in each test
 *   const child = await startWorkerProcess(env.config, taskQueue, SIMULATED_POLLING);  // to SIGKILL
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, inject } from 'vitest';
import { createActivities, type ActivityTuning } from '../../activities/index.js';
import type { ClusterVmActivityOptions } from '../../activities/cluster-vms.js';
import type { AppConfig } from '../../lib/config/schema.js';
import type { WorkerDeps } from '../../worker/deps.js';
import {
  startSimulatedEnvironment,
  type SimulatedEnvironment,
  type SimulatedEnvironmentOptions,
} from '../../testkit/simulated-env.js';
import { startTestWorker, type TestWorker, type TestWorkerOptions } from './temporal.js';

/** Polling that keeps up with a simulator running many times faster than real time. */
export const SIMULATED_POLLING: ActivityTuning = { taskPolling: { pollMs: 20, maxPollMs: 50 }, pollMs: 20 };

export interface EnvironmentWorkerOptions extends Omit<TestWorkerOptions, 'activities' | 'workflowsPath'> {
  tuning?: ActivityTuning;
  clusters?: ClusterVmActivityOptions;
  /** Activities replaced by the test's own (a fault injected around the real one). */
  overrides?: object;
}

export function startEnvironmentWorker(deps: WorkerDeps, options: EnvironmentWorkerOptions = {}): Promise<TestWorker> {
  const { tuning, clusters, overrides, ...worker } = options;
  return startTestWorker({
    ...worker,
    activities: { ...createActivities({ ...deps, ...tuning }, clusters), ...overrides },
  });
}

/**
 * One simulated environment and a full worker for the whole test file: started before its
 * first test, stopped after its last. Read `env` and `worker` inside tests and hooks.
 */
export function environmentForFile(
  options: SimulatedEnvironmentOptions = {},
  worker: EnvironmentWorkerOptions = {},
): { env: SimulatedEnvironment; worker: TestWorker } {
  const stack = {} as { env: SimulatedEnvironment; worker: TestWorker };
  beforeAll(async () => {
    stack.env = await startSimulatedEnvironment(options);
    stack.worker = await startEnvironmentWorker(stack.env.deps, worker);
  });
  afterAll(async () => {
    await stack.worker?.shutdown();
    await stack.env?.stop();
  });
  return stack;
}

/** What test/support/worker-process.ts reads from its TEST_WORKER environment variable. */
export interface WorkerProcessSettings {
  address: string;
  namespace: string;
  taskQueue: string;
  workflowBundlePath: string;
  /** The test's configuration: secrets are file references, read there as a real worker reads them. */
  config: AppConfig;
  tuning: ActivityTuning;
}

/**
 * The same worker in a process of its own, so a test can kill it with SIGKILL — no graceful
 * shutdown, no last heartbeat, like a crashed host. Resolves once it polls; the caller kills it.
 */
export async function startWorkerProcess(
  config: AppConfig,
  taskQueue: string,
  tuning: ActivityTuning = {},
): Promise<ChildProcess> {
  const settings: WorkerProcessSettings = {
    address: inject('temporalAddress'),
    namespace: inject('temporalNamespace'),
    taskQueue,
    workflowBundlePath: inject('workflowBundlePath')!,
    config,
    tuning,
  };
  const script = fileURLToPath(new URL('./worker-process.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: { ...process.env, TEST_WORKER: JSON.stringify(settings) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await Promise.race([
    once(child.stdout!, 'data'),
    once(child, 'exit').then(() => {
      throw new Error('worker process exited before it was ready');
    }),
  ])) as [Buffer];
  if (!line.toString().includes('ready')) throw new Error(`worker process said ${line.toString()} instead of ready`);
  return child;
}

/** Kills a worker process at once (SIGKILL) and waits until it is gone. */
export async function killWorkerProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGKILL');
  await once(child, 'exit');
}
