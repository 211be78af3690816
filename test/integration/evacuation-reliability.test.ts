import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import {
  approveWhenPlanned,
  evacuationInput,
  startEvacuation,
  type EvacuationBody,
} from '../../testkit/evacuation-run.js';
import { withAutomationToken } from '../../testkit/scenarios.js';
import type { EvacuationPlan } from '../../lib/planning/evacuation.js';
import type { Scenario } from '../../sim/scenario.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { testConnection, uniqueTaskQueue, type TestWorker } from '../support/temporal.js';
import { untilHolds } from '../support/until.js';
import { killWorkerProcess, SIMULATED_POLLING, startEnvironmentWorker, startWorkerProcess } from '../support/worker.js';

/** Twelve VMs of 4-15 GiB on pve01, a third with local disks; three roomy targets. */
function twelveVms(): Scenario {
  return withAutomationToken({
    nodes: [{ name: 'pve01' }, { name: 'pve02' }, { name: 'pve03' }, { name: 'pve04' }],
    storages: [
      { id: 'local-lvm', type: 'lvmthin', content: ['images', 'rootdir'], size: '1T' },
      { id: 'ceph', type: 'rbd', content: ['images', 'rootdir'], size: '20T' },
    ],
    guests: Array.from({ length: 12 }, (_, i) => ({
      vmid: 1001 + i,
      name: `app${i + 1}`,
      node: 'pve01',
      memory: (4 + i) * 1024,
      disks: [{ storage: i % 3 === 0 ? 'local-lvm' : 'ceph', size: '16G' }],
    })),
  });
}

describe('evacuation reliability', () => {
  const cleanup: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
  });

  async function simulated(scenario: Scenario, speed: number): Promise<SimulatedEnvironment> {
    const env = await startSimulatedEnvironment({ scenario, speed });
    cleanup.push(() => env.stop());
    return env;
  }

  const request = (env: SimulatedEnvironment, body: Omit<EvacuationBody, 'environment'>) =>
    evacuationInput({ environment: env.environment, ...body });

  async function inProcessWorker(env: SimulatedEnvironment, taskQueue?: string): Promise<TestWorker> {
    const worker = await startEnvironmentWorker(env.deps, {
      tuning: SIMULATED_POLLING,
      ...(taskQueue ? { taskQueue } : {}),
    });
    cleanup.push(() => worker.shutdown());
    return worker;
  }

  /** A worker process of its own, killed at the end of the test if the test did not kill it. */
  async function childWorker(env: SimulatedEnvironment, taskQueue: string): Promise<ChildProcess> {
    const child = await startWorkerProcess(env.config, taskQueue, SIMULATED_POLLING);
    cleanup.push(() => killWorkerProcess(child));
    return child;
  }

  it('resumes after the worker is killed mid-evacuation: every VM ends where planned, migrated exactly once', async () => {
    const env = await simulated(twelveVms(), 10);
    const sim = env.sim;
    const taskQueue = uniqueTaskQueue('evacuation-kill');
    const child = await childWorker(env, taskQueue);

    const handle = await startEvacuation(
      await testConnection(),
      taskQueue,
      request(env, { node: 'pve01', maxParallel: 4 }),
    );
    const planned = await approveWhenPlanned(handle);
    const plan = planned.plan!.details as EvacuationPlan;
    expect(plan.moves).toHaveLength(12);

    // Kill it while some migrations have finished and others are under way.
    const migrations = () => sim.cluster.tasks.all().filter((t) => t.type === 'qmigrate');
    let runningAtKill: number[] = [];
    await expect
      .poll(
        () => {
          const tasks = migrations();
          runningAtKill = tasks.filter((t) => t.status === 'running').map((t) => Number(t.id));
          return tasks.filter((t) => t.status === 'stopped').length >= 2 && runningAtKill.length > 0;
        },
        { timeout: 60_000, interval: 5 },
      )
      .toBe(true);
    await killWorkerProcess(child);

    await inProcessWorker(env, taskQueue);
    // The migrations the dead worker left running end at the pace they began; the ones started
    // after them need no slow clock.
    await untilHolds('the migrations running at the kill end', () =>
      migrations().every((t) => !runningAtKill.includes(Number(t.id)) || t.status !== 'running'),
    );
    sim.clock.setSpeed(100);
    const { result } = await handle.result();

    expect(result?.outcome).toBe('evacuated');
    for (const move of plan.moves) {
      expect([move.vmid, sim.state.guests.get(move.vmid)!.node]).toEqual([move.vmid, move.target]);
      expect([move.vmid, sim.counters.tasks('qmigrate', move.vmid)]).toEqual([move.vmid, 1]);
      expect([move.vmid, sim.counters.calls('qemuMigrate', move.vmid)]).toEqual([move.vmid, 1]);
    }
    // The migrations the dead worker had started were picked up again, not started anew.
    for (const vmid of runningAtKill) {
      expect(result?.guests.find((g) => g.vmid === vmid)).toMatchObject({ state: 'migrated', attached: true });
    }
  });

  it('reports a failed migration with its task log, finishes the others, and repeats only safe calls', async () => {
    const env = await simulated(twelveVms(), 20);
    const sim = env.sim;
    // The migration task of 1003 fails; PVE's answer to 1005's migrate request is lost after it
    // acted; 1006's request fails before it reaches PVE; one API call in ten fails at random.
    sim.faults.failTask({ type: 'qmigrate', vmid: 1003 });
    sim.faults.failCalls({ kind: 'reset-after', match: 'POST /nodes/pve01/qemu/1005/migrate' });
    sim.faults.failCalls({ kind: 'error', match: 'POST /nodes/pve01/qemu/1006/migrate' });
    sim.faults.setApi({ errorRate: 0.1 });
    const worker = await inProcessWorker(env);

    const handle = await startEvacuation(
      worker.client,
      worker.taskQueue,
      request(env, { node: 'pve01', onFailure: 'continue' }),
    );
    await approveWhenPlanned(handle);
    const { result } = await handle.result();
    sim.faults.setApi({ errorRate: 0 });

    expect(result?.outcome).toBe('incomplete');
    const failed = result?.guests.find((g) => g.vmid === 1003);
    expect(failed).toMatchObject({
      state: 'failed',
      errorType: 'MigrationFailed',
      upid: expect.stringContaining(':qmigrate:1003:'),
    });
    expect(failed && 'log' in failed ? failed.log : []).toContain('TASK ERROR: migration aborted');
    expect(result?.guests.filter((g) => g.state === 'migrated').map((g) => g.vmid)).toHaveLength(11);
    expect(result?.verification.unexpectedOnSource).toEqual([{ vmid: 1003, name: 'app3' }]);

    for (let vmid = 1001; vmid <= 1012; vmid++) {
      // One migration task per VM — the failed one included: a failed migration is not retried.
      expect([vmid, sim.counters.tasks('qmigrate', vmid)]).toEqual([vmid, 1]);
      // One migrate request that PVE acted on per VM, even where an answer was lost.
      expect([vmid, sim.counters.calls('qemuMigrate', vmid)]).toEqual([vmid, 1]);
    }
    expect(result?.guests.find((g) => g.vmid === 1005)).toMatchObject({ state: 'migrated', attached: true });
  });

  it('starts nothing new after a failure when told to stop', async () => {
    const scenario = twelveVms();
    // The largest VM starts first; its migration fails.
    scenario.guests![0] = { ...scenario.guests![0]!, memory: 16384 };
    const env = await simulated(scenario, 20);
    const sim = env.sim;
    sim.faults.failTask({ type: 'qmigrate', vmid: 1001 });
    const worker = await inProcessWorker(env);

    const handle = await startEvacuation(
      worker.client,
      worker.taskQueue,
      request(env, { node: 'pve01', maxParallel: 2, onFailure: 'stop' }),
    );
    await approveWhenPlanned(handle);
    const { result } = await handle.result();

    expect(result?.outcome).toBe('incomplete');
    expect(result?.guests.find((g) => g.vmid === 1001)?.state).toBe('failed');
    const notStarted = result?.guests.filter((g) => g.state === 'not-started') ?? [];
    expect(notStarted.length).toBeGreaterThan(0);
    for (const g of notStarted) {
      expect([g.vmid, sim.counters.tasks('qmigrate', g.vmid), sim.state.guests.get(g.vmid)!.node]).toEqual([
        g.vmid,
        0,
        'pve01',
      ]);
      expect('error' in g ? g.error : '').toMatch(
        /^VM 1001 \(app1\) failed: migration of VM 1001 \(app1\) to pve0\d failed: migration aborted$/,
      );
    }
  });
});
