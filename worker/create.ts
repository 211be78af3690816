/**
 * The one way this project builds a Temporal worker: the worker process (worker/main.ts), test
 * and benchmark workers alike. Each gets the keep-alive interceptor (worker/keep-alive.ts), so
 * every activity meets the heartbeat timeout its proxy preset sets; a caller cannot leave it out
 * or replace it. `Worker.create` anywhere else is an ESLint error (eslint.config.js).
 */
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { workerInterceptors } from './keep-alive.js';

export type CreateWorkerOptions = Omit<WorkerOptions, 'interceptors'>;

export function createWorker(options: CreateWorkerOptions): Promise<Worker> {
  // eslint-disable-next-line no-restricted-properties -- the one place that builds a Worker.
  return Worker.create({ ...options, interceptors: workerInterceptors });
}
