/**
 * Operations can run for hours or wait a day for an approval, so a worker with new code must
 * replay their histories exactly. Every recorded history (test/histories/, one per workflow
 * type, made by `npm run histories:record`) is replayed against the current workflow code; a
 * change to a workflow's decisions that is not behind `patched()` fails here.
 */
import { inject, describe, expect, it } from 'vitest';
import { Worker } from '@temporalio/worker';
import * as workflows from '../../workflows/index.js';
import { loadHistories } from '../support/histories.js';

const recorded = loadHistories();

// Until the first `npm run histories:record` there is nothing to replay; from then on every
// workflow type must have its history.
describe.skipIf(recorded.length === 0)('recorded histories replay on the current workflow code', () => {
  it('holds a history for every workflow the worker runs', () => {
    expect(recorded.map((r) => r.workflowType).sort()).toEqual(Object.keys(workflows).sort());
  });

  it.each(recorded.map((r) => [r.workflowType, r] as const))('%s replays without nondeterminism', async (_type, { history, workflowType }) => {
    await Worker.runReplayHistory(
      { workflowBundle: { codePath: inject('workflowBundlePath')! }, replayName: workflowType },
      history,
      `replay-${workflowType}`,
    );
  });
});
