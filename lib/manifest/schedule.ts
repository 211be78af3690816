/**
 * The drift schedule: one Temporal Schedule per environment that runs `detectDrift` every
 * `manifests.drift_interval`. Idempotent — call it at worker or API start-up (or from a
 * script): a missing schedule is created, an existing one is brought up to date.
 *
 *   await ensureDriftSchedule(client, config);
 *   await client.schedule.getHandle(driftScheduleId('home')).trigger();   // check now
 */
import { ScheduleOverlapPolicy, type Client, type ScheduleOptions } from '@temporalio/client';
import type { AppConfig } from '../config/schema.js';
import { durationMs } from '../config/duration.js';
import type { DetectDriftInput } from './drift.js';
import { manifestSettings } from './settings.js';
import { upsertSchedule } from '../schedule-upsert.js';

export function driftScheduleId(environment: string): string {
  return `drift/${environment}`;
}

export interface DriftSchedule {
  environment: string;
  scheduleId: string;
  /** False when the schedule existed and was updated. */
  created: boolean;
}

export interface DriftScheduleOptions {
  /** Environments to schedule (all configured ones when absent). */
  environments?: string[];
  /** The worker's task queue (the configured one when absent). */
  taskQueue?: string;
  /** The manifest folder the runs read (the worker's configured one when absent). */
  manifests?: string;
}

export async function ensureDriftSchedule(
  client: Client,
  config: AppConfig,
  options: DriftScheduleOptions = {},
): Promise<DriftSchedule[]> {
  const { driftInterval } = manifestSettings(config);
  const schedules: DriftSchedule[] = [];
  for (const environment of options.environments ?? Object.keys(config.environments)) {
    const scheduleId = driftScheduleId(environment);
    const input: DetectDriftInput = { environment, ...(options.manifests ? { manifests: options.manifests } : {}) };
    const desired = {
      spec: { intervals: [{ every: durationMs(driftInterval) }] },
      action: {
        type: 'startWorkflow' as const,
        workflowType: 'detectDrift',
        workflowId: `drift/${environment}`,
        taskQueue: options.taskQueue ?? config.temporal.task_queue,
        args: [input],
        workflowExecutionTimeout: '30 minutes',
      },
      // A check still running when the next is due makes the next one pointless.
      policies: { overlap: ScheduleOverlapPolicy.SKIP, catchupWindow: '1 minute', pauseOnFailure: false },
    } satisfies Omit<ScheduleOptions, 'scheduleId'>;
    const note = `drift detection for ${environment}: plans against the manifest every ${driftInterval}, never applies`;
    const state = await upsertSchedule(client, scheduleId, desired, note);
    schedules.push({ environment, scheduleId, created: state === 'created' });
  }
  return schedules;
}
