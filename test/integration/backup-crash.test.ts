/**
 * The worker killed with SIGKILL while a guest's vzdump runs, and while a restore drill's
 * restore runs: another worker picks the operation up by the task the dead one started (found
 * in the node's task list, or by its heartbeat) and follows it. Nothing is sent twice; the
 * backed-up guest ends unlocked with exactly one new archive, the drill's copy is destroyed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { findOperation } from '../../lib/operations/catalog.js';
import { ROOT } from '../../sim/cluster.js';
import { vzdump } from '../../sim/ops/backup.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { startTestWorker, testConnection, uniqueTaskQueue } from '../support/temporal.js';
import { meta } from './lifecycle-helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function childWorker(env: SimulatedEnvironment, taskQueue: string): Promise<ChildProcess> {
  const script = fileURLToPath(new URL('./backup-worker.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', script], {
    env: {
      ...process.env,
      BACKUP_WORKER: JSON.stringify({
        address: inject('temporalAddress'),
        namespace: inject('temporalNamespace'),
        taskQueue,
        workflowBundlePath: inject('workflowBundlePath'),
        config: env.config,
      }),
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  cleanup.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
  });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  expect(line.toString()).toContain('ready');
  return child;
}

async function until(what: string, condition: () => boolean, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
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
    await until('the vzdump of 1005 runs', () => vzdumps().some((t) => t.status === 'running'));
    worker.kill('SIGKILL');
    await once(worker, 'exit');
    expect(sim.state.guests.get(1005)!.lock).toBe('backup');

    const next = await startTestWorker({ taskQueue, activities: createActivities(env.deps) });
    cleanup.push(() => next.shutdown());
    const { result } = await handle.result();

    expect(vzdumps()).toHaveLength(1);
    expect(sim.counters.calls('vzdump')).toBe(1);
    expect(result).toEqual([expect.objectContaining({ vmid: 1005, outcome: 'succeeded', volid: expect.stringMatching(/^shared:backup\/vzdump-qemu-1005-/) })]);
    expect(sim.state.guests.get(1005)!.lock).toBeUndefined();
    const archives = [...sim.state.pool('shared', 'pve01')!.volumes.values()].filter((v) => v.content === 'backup' && v.vmid === 1005);
    expect(archives).toHaveLength(1);
  }, 180_000);

  it('resumes a restore drill on the restore the dead worker started, and destroys the copy once', async () => {
    const env = await startSimulatedEnvironment({ speed: 2, environment: 'drill-crash' });
    cleanup.push(() => env.stop());
    const sim = env.sim;
    const backup = vzdump(sim.cluster, ROOT, 'pve01', { vmids: [1005], storage: 'shared', mode: 'snapshot', compress: 'zstd', lockwait: 1 }, () => true);
    await backup.done;
    expect(backup.exitstatus).toBe('OK');
    const taskQueue = uniqueTaskQueue('drill-kill');
    const worker = await childWorker(env, taskQueue);
    const handle = await start(env, taskQueue, 'restore-drill', { vmid: 1005 });

    const restores = () => sim.cluster.tasks.all().filter((t) => t.type === 'qmrestore');
    await until('the drill restores 1005', () => restores().some((t) => t.status === 'running'));
    worker.kill('SIGKILL');
    await once(worker, 'exit');

    const next = await startTestWorker({ taskQueue, activities: createActivities(env.deps) });
    cleanup.push(() => next.shutdown());
    const { result } = await handle.result();

    expect(result).toEqual([expect.objectContaining({ vmid: 1005, outcome: 'proven' })]);
    expect(restores()).toHaveLength(1);
    expect(sim.counters.calls('qemuCreate')).toBe(1);
    expect(sim.cluster.tasks.all().filter((t) => t.type === 'qmdestroy' && t.id === restores()[0]!.id)).toHaveLength(1);
    expect([...sim.state.guests.values()].filter((g) => g.name.startsWith('drill-'))).toEqual([]);
  }, 180_000);
});
