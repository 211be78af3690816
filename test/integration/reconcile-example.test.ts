/**
 * The shipped example manifest (manifests/example.yaml) on the simulator's homelab: it plans
 * without a problem, applies through the reconcile workflow, and then plans zero changes.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import type { ReconcileDetails } from '../../lib/manifest/plan.js';
import type { ReconcileInput } from '../../lib/operations/catalog.js';
import type { OperationPlan } from '../../lib/operations/plan.js';
import type { ReconcileResult } from '../../workflows/reconcile.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { startTestWorker, type TestWorker } from '../support/temporal.js';

const manifests = fileURLToPath(new URL('../../manifests', import.meta.url));

let env: SimulatedEnvironment;
let worker: TestWorker;

beforeAll(async () => {
  env = await startSimulatedEnvironment({ speed: 500 });
  worker = await startTestWorker({ activities: createActivities(env.deps) });
});
afterAll(async () => {
  await worker?.shutdown();
  await env?.stop();
});

let seq = 0;
async function reconcile(dryRun: boolean) {
  const input: ReconcileInput = {
    environment: 'home',
    dryRun,
    manifests,
    maxParallel: 4,
    meta: {
      requester: 'alice',
      environment: 'home',
      dryRun,
      approvalTimeoutMs: 60_000,
      autoApprove: ['low', 'medium'],
    },
  };
  const handle = await worker.client.workflow.start('reconcile', {
    taskQueue: worker.taskQueue,
    workflowId: `test/example/${Date.now()}-${seq++}`,
    args: [input],
  });
  return (await handle.result()) as {
    outcome: string;
    plan: OperationPlan<ReconcileDetails>;
    result?: ReconcileResult;
  };
}

it('plans, applies and then has nothing left to do', async () => {
  const first = await reconcile(true);
  expect(first.plan.details!.counts).toEqual({ create: 6, update: 1, replace: 0, delete: 0 });
  expect(first.plan.details!.changes.find((c) => c.key === 'dns01')!.fields).toEqual([
    { field: 'tags', from: 'dns, infra', to: 'dns, fleet, infra' },
  ]);
  expect(first.plan.warnings).toEqual([]);

  const applied = await reconcile(false);
  expect(applied.outcome).toBe('completed');
  expect(applied.result).toMatchObject({ outcome: 'applied', changed: 7, failed: 0, remaining: { changes: 0 } });
  const byName = (name: string) => [...env.sim.state.guests.values()].find((g) => g.name === name);
  expect(byName('auto-api-3010')?.status).toBe('running');
  expect(byName('pg-01')).toMatchObject({ node: 'pve01', status: 'running' });
  expect(byName('pg-01')!.config['ipconfig0']).toBe('ip=10.0.20.11/24,gw=10.0.20.1');
  expect(byName('web-01')!.node).not.toBe(byName('web-02')!.node);
  expect(byName('img-lab')).toMatchObject({ node: 'pve01', status: 'stopped' });

  const again = await reconcile(true);
  expect(again.plan.details!.changes).toEqual([]);
});
