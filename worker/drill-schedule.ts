/**
 * Restore drills on a schedule: one Temporal Schedule per environment whose configuration has
 * `backups.drill_schedule`, starting a `restore-drill` operation every `every` — the same
 * operation as one asked for through the API (planned, approved by policy: a drill is low
 * risk, listed among the operations, recorded in the drill history). Idempotent, like the
 * drift schedule: called at worker start-up, it creates a missing schedule, brings an existing
 * one up to date, and deletes the schedule of an environment whose drills were turned off.
 *
 *   await ensureDrillSchedules(client, config);
 *   await client.schedule.getHandle(drillScheduleId('home')).trigger();   // drill now
 */
import { ScheduleNotFoundError, ScheduleOverlapPolicy, type Client, type ScheduleOptions } from '@temporalio/client';
import type { AppConfig, DrillSchedule } from '../lib/config/schema.js';
import { durationMs } from '../lib/config/duration.js';
import { upsertSchedule } from '../lib/schedule-upsert.js';
import { restoreDrillOperation, type RestoreDrillInput } from '../lib/operations/catalog.js';
import { PmApprovalState, PmEnvironment, PmOperationKind, PmRequester } from '../workflows/search-attributes.js';

export function drillScheduleId(environment: string): string {
  return `restore-drill/${environment}/scheduled`;
}

/** Who the scheduled drills are requested by, in the operation list and the audit. */
export const DRILL_SCHEDULE_REQUESTER = 'schedule:restore-drill';

export interface DrillScheduleState {
  environment: string;
  scheduleId: string;
  state: 'created' | 'updated' | 'deleted';
}

/** The operation request a scheduled drill makes, checked as the API checks one. */
function drillInput(config: AppConfig, environment: string, drills: DrillSchedule): RestoreDrillInput {
  const body = restoreDrillOperation.body.parse({
    environment,
    ...(drills.vmid !== undefined ? { vmid: drills.vmid } : { tags: drills.tags }),
    bridge: drills.bridge,
    agentTimeoutSeconds: drills.agent_timeout_seconds,
    maxParallel: drills.max_parallel,
  });
  return {
    ...body,
    meta: {
      requester: DRILL_SCHEDULE_REQUESTER,
      environment,
      dryRun: false,
      approvalTimeoutMs: durationMs(config.approvals.timeout),
      autoApprove: config.approvals.auto_approve,
    },
  };
}

export async function ensureDrillSchedules(
  client: Client,
  config: AppConfig,
  options: { taskQueue?: string } = {},
): Promise<DrillScheduleState[]> {
  const states: DrillScheduleState[] = [];
  for (const [environment, env] of Object.entries(config.environments)) {
    const scheduleId = drillScheduleId(environment);
    const drills = env.backups.drill_schedule;
    if (!drills) {
      try {
        await client.schedule.getHandle(scheduleId).delete();
        states.push({ environment, scheduleId, state: 'deleted' });
      } catch (err) {
        if (!(err instanceof ScheduleNotFoundError)) throw err;
      }
      continue;
    }
    const desired = {
      spec: { intervals: [{ every: durationMs(drills.every) }] },
      action: {
        type: 'startWorkflow' as const,
        workflowType: restoreDrillOperation.workflowType,
        // Temporal appends the scheduled time, so each drill has its own operation id.
        workflowId: scheduleId,
        taskQueue: options.taskQueue ?? config.temporal.task_queue,
        args: [drillInput(config, environment, drills)],
        typedSearchAttributes: [
          { key: PmOperationKind, value: restoreDrillOperation.kind },
          { key: PmEnvironment, value: environment },
          { key: PmRequester, value: DRILL_SCHEDULE_REQUESTER },
          { key: PmApprovalState, value: 'planning' },
        ],
        staticSummary: `scheduled restore drill of ${drills.vmid ?? drills.tags} in ${environment}`,
      },
      // A drill still running when the next is due would only restore the same backups again.
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute', pauseOnFailure: false },
    } satisfies Omit<ScheduleOptions, 'scheduleId'>;
    const note = `restore drills of ${drills.vmid ?? drills.tags} in ${environment} every ${drills.every}`;
    states.push({ environment, scheduleId, state: await upsertSchedule(client, scheduleId, desired, note) });
  }
  return states;
}
