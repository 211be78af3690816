/**
 * The activity-proxy presets: every proxy a workflow uses comes from one of them, and each
 * carries the bounds that let a new worker take an activity over within seconds of the old
 * one dying, and the failure types that are never retried.
 */
import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { msToNumber } from '@temporalio/common/lib/time.js';
import { describe, expect, it } from 'vitest';
import { Failure, NEVER_RETRIED, RETRIED } from '../../lib/operations/failures.js';
import { optionsFor, PRESETS } from '../../workflows/activity-presets.js';

const roles = Object.keys(PRESETS) as (keyof typeof PRESETS)[];
const workflowsDir = fileURLToPath(new URL('../../workflows/', import.meta.url));

describe('activity-proxy presets', () => {
  it.each(roles)(
    '%s: a dead worker’s attempt is given up within 10 s of its last heartbeat, however long an attempt may run',
    (role) => {
      for (const tuning of [{}, { startToCloseTimeout: '24 hours' }]) {
        const options = optionsFor(role, tuning);
        expect(msToNumber(options.heartbeatTimeout!)).toBeLessThanOrEqual(10_000);
        expect(msToNumber(options.startToCloseTimeout!)).toBeGreaterThan(msToNumber(options.heartbeatTimeout!));
      }
    },
  );

  it('dispatch: a short attempt, few of them', () => {
    const options = optionsFor('dispatch');
    expect(msToNumber(options.startToCloseTimeout!)).toBeLessThanOrEqual(2 * 60_000);
    expect(options.retry?.maximumAttempts).toBeLessThanOrEqual(3);
  });

  it.each(roles)('%s: never retries a refusal, a lost destructive write or a failed task', (role) => {
    const nonRetryable = optionsFor(role, { maximumAttempts: 7 }).retry?.nonRetryableErrorTypes;
    expect(nonRetryable).toEqual(
      expect.arrayContaining([
        Failure.PlanRefused,
        Failure.OutcomeUnknown,
        Failure.VmIdentityMismatch,
        Failure.PveTaskFailed,
      ]),
    );
    expect(nonRetryable).toEqual([...NEVER_RETRIED]);
    for (const type of RETRIED) expect(nonRetryable).not.toContain(type);
  });

  it('are the only activity proxies in the workflows', async () => {
    const files = (await readdir(workflowsDir)).filter((f) => f.endsWith('.ts') && f !== 'activity-presets.ts');
    const direct: string[] = [];
    for (const file of files) {
      if (/\bproxyActivities\b/.test(await readFile(`${workflowsDir}${file}`, 'utf8'))) direct.push(file);
    }
    expect(direct).toEqual([]);
  });
});
