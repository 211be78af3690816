/**
 * The worker killed with SIGKILL while a guest's vzdump runs, and while a restore drill's
 * restore runs: another worker picks the operation up by the task the dead one started (found
 * in the node's task list, or by its heartbeat) and follows it. Nothing is sent twice; the
 * backed-up guest ends unlocked with exactly one new archive, the drill's copy (a VM or a
 * container) is destroyed.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { findOperation } from '../../lib/operations/catalog.js';
import { ROOT } from '../../sim/cluster.js';
import { vzdump } from '../../sim/ops/backup.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { testConnection, uniqueTaskQueue } from '../support/temporal.js';
import { untilHolds } from '../support/until.js';
import { killWorkerProcess, startEnvironmentWorker, startWorkerProcess } from '../support/worker.js';
import { meta } from './lifecycle-helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** A worker process of its own, killed at the end of the test if the test did not kill it. */
async function childWorker(env: SimulatedEnvironment, taskQueue: string): Promise<ChildProcess> {
  const child = await startWorkerProcess(env.config, taskQueue);
  cleanup.push(() => killWorkerProcess(child));
  return child;
}

async function start(env: SimulatedEnvironment, taskQueue: string, kind: string, body: Record<string, unknown>) {
  const op = findOperation(kind)!;
  const parsed = op.body.parse({ environment: env.environment, ...body }) as Record<string, unknown>;
  const client = await testConnection();
  return client.workflow.start(op.workflowType, {
    taskQueue,
    workflowId: `test/${kind}-crash/${Date.now()}`,
    args: [{ ...parsed, meta: meta({ environment: env.environment }) }],
  });
}

describe('backups across a worker crash', () => {
  it('follows the vzdump the dead worker started instead of sending another', async () => {
    // gitlab's 100 GiB disk takes simulated seconds to cross the link: the kill lands inside it.
    const env = await startSimulatedEnvironment({ speed: 2, environment: 'backup-crash' });
    cleanup.push(() => env.stop());
    const sim = env.sim;
    const taskQueue = uniqueTaskQueue('backup-kill');
    const worker = await childWorker(env, taskQueue);

    const handle = await start(env, taskQueue, 'backup', { vmid: 1005, storage: 'shared' });

    const vzdumps = () => sim.cluster.tasks.all().filter((t) => t.type === 'vzdump' && t.id === '1005');
    await untilHolds('the vzdump of 1005 runs', () => vzdumps().some((t) => t.status === 'running'));
    await killWorkerProcess(worker);
    expect(sim.state.guests.get(1005)!.lock).toBe('backup');

    const next = await startEnvironmentWorker(env.deps, { taskQueue });
    cleanup.push(() => next.shutdown());
    const { result } = await handle.result();

    expect(vzdumps()).toHaveLength(1);
    expect(sim.counters.calls('vzdump')).toBe(1);
    expect(result).toEqual([
      expect.objectContaining({
        vmid: 1005,
        outcome: 'succeeded',
        volid: expect.stringMatching(/^shared:backup\/vzdump-qemu-1005-/),
      }),
    ]);
    expect(sim.state.guests.get(1005)!.lock).toBeUndefined();
    const archives = [...sim.state.pool('shared', 'pve01')!.volumes.values()].filter(
      (v) => v.content === 'backup' && v.vmid === 1005,
    );
    expect(archives).toHaveLength(1);
  }, 180_000);

  it.each([
    {
      guest: 'a VM',
      vmid: 1005,
      node: 'pve01',
      restoreTask: 'qmrestore',
      create: 'qemuCreate',
      destroyTask: 'qmdestroy',
    },
    {
      guest: 'a container',
      vmid: 2002,
      node: 'pve02',
      restoreTask: 'vzrestore',
      create: 'lxcCreate',
      destroyTask: 'vzdestroy',
    },
  ])(
    'resumes the restore drill of $guest on the restore the dead worker started, and destroys the copy once',
    async ({ vmid, node, restoreTask, create, destroyTask }) => {
      const env = await startSimulatedEnvironment({ speed: 2, environment: 'drill-crash' });
      cleanup.push(() => env.stop());
      const drills = await mkdtemp(join(tmpdir(), 'pm-drill-crash-'));
      cleanup.push(() => rm(drills, { recursive: true, force: true }));
      env.config.backups.drill_dir = drills;
      const sim = env.sim;
      // The archive the drill restores is made at a fast clock: making it is not under test.
      sim.clock.setSpeed(200);
      const backup = vzdump(
        sim.cluster,
        ROOT,
        node,
        { vmids: [vmid], storage: 'shared', mode: 'snapshot', compress: 'zstd', lockwait: 1 },
        () => true,
      );
      await backup.done;
      sim.clock.setSpeed(2);
      expect(backup.exitstatus).toBe('OK');
      const taskQueue = uniqueTaskQueue('drill-kill');
      const worker = await childWorker(env, taskQueue);
      const handle = await start(env, taskQueue, 'restore-drill', { vmid });

      const restores = () => sim.cluster.tasks.all().filter((t) => t.type === restoreTask);
      await untilHolds(`the drill restores ${vmid}`, () => restores().some((t) => t.status === 'running'));
      await killWorkerProcess(worker);

      const next = await startEnvironmentWorker(env.deps, { taskQueue });
      cleanup.push(() => next.shutdown());
      // What follows the restore the dead worker started (the copy booting, its removal) runs at a fast clock.
      await untilHolds(`the restore of ${vmid} ends`, () => restores().every((t) => t.status !== 'running'));
      sim.clock.setSpeed(100);
      const { result } = await handle.result();

      expect(result).toEqual([expect.objectContaining({ vmid, outcome: 'proven' })]);
      expect(restores()).toHaveLength(1);
      expect(sim.counters.calls(create)).toBe(1);
      expect(sim.cluster.tasks.all().filter((t) => t.type === destroyTask && t.id === restores()[0]!.id)).toHaveLength(
        1,
      );
      expect([...sim.state.guests.values()].filter((g) => g.name.startsWith('drill-'))).toEqual([]);
    },
    180_000,
  );
});
