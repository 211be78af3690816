/**
 * Operations run for hours or wait a day for an approval, so a worker with new workflow code
 * must replay their histories exactly. Every recorded history (test/fixtures/histories/, one
 * per workflow type, made by `npm run histories:record`) is replayed against the current
 * workflow code: a change to a workflow's decisions that is not behind `patched()` fails here
 * (docs/deploy.md, "Upgrading the workflow code").
 */
import { Worker } from '@temporalio/worker';
import { describe, expect, inject, it } from 'vitest';
import { loadHistories, registeredWorkflowTypes } from '../support/histories.js';
import { installQuietRuntime } from '../support/quiet-runtime.js';

const recorded = loadHistories();

describe('recorded histories replay on the current workflow code', () => {
  it('has a recorded history for every workflow type the worker runs', () => {
    const missing = registeredWorkflowTypes().filter((type) => !recorded.some((r) => r.workflowType === type));
    expect(missing, 'workflow types without a history: run `npm run histories:record`').toEqual([]);
  });

  it('replays every recorded history without nondeterminism', async () => {
    installQuietRuntime();
    const typeOf = new Map(recorded.map((r) => [r.workflowId, r.workflowType]));
    const replayed: string[] = [];
    const failures: string[] = [];
    const replays = Worker.runReplayHistories(
      { workflowBundle: { codePath: inject('workflowBundlePath')! } },
      recorded,
    );
    for await (const { workflowId, error } of replays) {
      replayed.push(typeOf.get(workflowId)!);
      if (error) failures.push(`${typeOf.get(workflowId)}: ${error.message}`);
    }
    expect(failures).toEqual([]);
    expect(replayed).toEqual(recorded.map((r) => r.workflowType));
  });
});
