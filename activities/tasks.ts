import { Context } from '@temporalio/activity';
import { waitForTask } from '../lib/pve/tasks/wait.js';
import type { WorkerDeps } from '../worker/deps.js';
import { classified } from './failures.js';

export interface TaskOutcome {
  upid: string;
  exitstatus: string;
}

export function createTaskActivities(deps: Pick<WorkerDeps, 'pve'>) {
  return {
    /**
     * Waits for a PVE task to stop, heartbeating the last log line. Safe to retry: it only
     * reads the task, so a worker restart resumes waiting on the same UPID.
     */
    async awaitTask({ environment, upid }: { environment: string; upid: string }): Promise<TaskOutcome> {
      const client = await deps.pve(environment);
      const ctx = Context.current();
      return classified('write', async () => {
        const status = await waitForTask(client, upid, {
          signal: ctx.cancellationSignal,
          onProgress: (_status, tail) => ctx.heartbeat({ upid, log: tail.at(-1) }),
        });
        return { upid, exitstatus: status.exitstatus ?? 'OK' };
      });
    },
  };
}

export type TaskActivities = ReturnType<typeof createTaskActivities>;
