import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approveWhenPlanned, evacuationInput, startEvacuation } from '../../testkit/evacuation-run.js';
import { withAutomationToken } from '../../testkit/scenarios.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import type { TestWorker } from '../support/temporal.js';
import { SIMULATED_POLLING, startEnvironmentWorker } from '../support/worker.js';

const VMS = 520;
/** Temporal warns at this many events in one run's history (and fails at 51,200). */
const HISTORY_WARNING = 10_240;

describe('evacuating a node with 500+ VMs', () => {
  let env: SimulatedEnvironment;
  let worker: TestWorker;

  beforeAll(async () => {
    env = await startSimulatedEnvironment({
      scenario: withAutomationToken({
        nodes: [
          { name: 'pve01', memory: '1T', cores: 128 },
          ...['pve02', 'pve03', 'pve04', 'pve05'].map((name) => ({ name, memory: '512G', cores: 128 })),
        ],
        storages: [{ id: 'ceph', type: 'rbd', content: ['images'], size: '100T' }],
        guests: Array.from({ length: VMS }, (_, i) => ({
          vmid: 1000 + i,
          name: `vm${1000 + i}`,
          node: 'pve01',
          memory: 512,
          cores: 1,
          disks: [{ storage: 'ceph', size: '8G' }],
        })),
      }),
      speed: 200,
    });
    worker = await startEnvironmentWorker(env.deps, {
      tuning: SIMULATED_POLLING,
      workerOptions: { maxConcurrentActivityTaskExecutions: 64 },
    });
  });
  afterAll(async () => {
    await worker?.shutdown();
    await env?.stop();
  });

  it('completes, each VM migrated once, with every run of its history far below Temporal’s limits', async () => {
    const handle = await startEvacuation(
      worker.client,
      worker.taskQueue,
      evacuationInput({ environment: env.environment, node: 'pve01', maxParallel: 16, maxParallelPerTarget: 8 }),
    );
    await approveWhenPlanned(handle);
    const { result } = await handle.result();

    expect(result?.outcome).toBe('evacuated');
    expect(result?.guests.filter((g) => g.state === 'migrated')).toHaveLength(VMS);
    for (let vmid = 1000; vmid < 1000 + VMS; vmid++) {
      expect([vmid, env.sim.counters.tasks('qmigrate', vmid)]).toEqual([vmid, 1]);
    }

    // The migrations ran in several runs of one child workflow, each continued as new. Visibility
    // records each run's close a moment after it happens: wait until it shows none running.
    const childId = `${handle.workflowId}/migrations`;
    const runs: { status: string; historyLength: number }[] = [];
    await expect
      .poll(
        async () => {
          runs.length = 0;
          for await (const run of worker.client.workflow.list({ query: `WorkflowId = '${childId}'` })) {
            runs.push({ status: run.status.name, historyLength: run.historyLength });
          }
          return runs.some((r) => r.status === 'RUNNING')
            ? 'some still running'
            : runs.filter((r) => r.status === 'COMPLETED').length;
        },
        { timeout: 15_000, interval: 250 },
      )
      .toBe(1);
    expect(runs.filter((r) => r.status === 'CONTINUED_AS_NEW').length).toBeGreaterThanOrEqual(1);
    for (const run of runs) expect(run.historyLength).toBeLessThan(HISTORY_WARNING / 2);

    const parent = await handle.describe();
    expect(parent.historyLength).toBeLessThan(HISTORY_WARNING / 2);
  }, 300_000); // 520 migrations take minutes on a loaded 2-core machine: the test counts, bench:evacuation times
});
