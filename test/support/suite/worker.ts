/**
 * Activities called directly in suite tests (their workers come from ../temporal.ts).
 */
import type { Info as ActivityInfo } from '@temporalio/activity';
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';

/**
 * An activity context without a worker (MockActivityEnvironment), for calling activities
 * directly — as attempt `info.attempt` of workflow `info.workflowExecution` — without logging
 * every failure the test provokes.
 */
export function activityEnvironment(info: Partial<ActivityInfo> = {}): MockActivityEnvironment {
  return new MockActivityEnvironment(info, { logger: new DefaultLogger('ERROR', () => undefined) });
}
