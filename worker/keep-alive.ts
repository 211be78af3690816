/**
 * Heartbeats for every activity that has a heartbeat timeout (every activity proxy preset sets
 * one: workflows/activity-presets.ts), whatever the activity itself does. Temporal then notices
 * within that timeout that the worker running an attempt died, and lets another worker take the
 * activity over — instead of waiting out the start-to-close timeout, minutes for a plan or a
 * dispatch that never heartbeats on its own.
 *
 * A heartbeat carries details the next attempt reads (what a dispatch or a migration already
 * sent), so the keep-alive repeats the last details the activity reported, never blank ones.
 */
import type { Context } from '@temporalio/activity';
import type { ActivityInterceptors, WorkerInterceptors } from '@temporalio/worker';

/** Beats per heartbeat timeout: two may be lost before Temporal gives up on the attempt. */
const BEATS_PER_TIMEOUT = 3;

function keepAlive(ctx: Context): ActivityInterceptors {
  return {
    inbound: {
      async execute(input, next) {
        const timeoutMs = ctx.info.heartbeatTimeoutMs;
        if (!timeoutMs) return next(input);
        let last: unknown = ctx.info.heartbeatDetails;
        const report = ctx.heartbeat;
        // The activity's own heartbeats (ctx.heartbeat and the module-level heartbeat()) pass here.
        Object.defineProperty(ctx, 'heartbeat', {
          value: (details?: unknown) => {
            last = details;
            report(details);
          },
        });
        const timer = setInterval(() => report(last), Math.max(500, timeoutMs / BEATS_PER_TIMEOUT));
        try {
          return await next(input);
        } finally {
          clearInterval(timer);
        }
      },
    },
  };
}

/** Every worker of this project registers these, through createWorker() (worker/create.ts). */
export const workerInterceptors: WorkerInterceptors = { activity: [keepAlive] };
