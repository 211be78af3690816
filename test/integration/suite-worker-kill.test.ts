/**
 * The worker killed with SIGKILL — no graceful shutdown, no last heartbeat, like a host that
 * lost power — at random points of running operations, and started again. The worker is the
 * real entry point (`worker/main.ts` with PM_CONFIG) in its own process; the simulator runs in
 * this one so its counters can prove that nothing was done twice.
 *
 * Kill points are random but reproducible: the k-th PVE API call the simulator answers, k drawn
 * from PM_SUITE_SEED. Every operation must complete (or end in a state that says what to check),
 * every guest must end where its operation put it, and no PVE write or task may run twice.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import type { EvacuationPlan } from '../../lib/planning/evacuation.js';
import { startSuiteCluster, totalCalls, type SuiteCluster } from '../../testkit/stack/cluster.js';
import {
  approveWhenPlanned,
  completedValue,
  outcomeOf,
  startOperation,
  type Outcome,
  type Target,
} from '../support/suite/operations.js';
import { spawnWorker, type ChildService } from '../../testkit/stack/processes.js';
import { between, heavy, random, record, suiteSeed } from '../support/suite/report.js';
import { fleet, vmsOf } from '../../testkit/stack/scenarios.js';
import { combine, scanFiles, scanHistories, shareDone, shareSecrets } from '../../testkit/stack/secrets.js';
import { testConnection, uniqueTaskQueue } from '../support/temporal.js';

const seed = suiteSeed();
const next = random(seed);
/** 4 GiB guests on 10 GbE take a few simulated seconds each to migrate. */
const scenario = fleet({ nodes: 3, perNode: heavy ? 12 : 8, memory: 4096 });
const vms = vmsOf(scenario);

let cluster: SuiteCluster;
let target: Target;
let worker: ChildService | undefined;
const kills: { call: number; running: string; restartMs: number; resumed: Promise<number> }[] = [];

beforeAll(async () => {
  const taskQueue = uniqueTaskQueue('suite-kill');
  cluster = await startSuiteCluster({
    scenario,
    speed: 4,
    seed,
    temporal: { address: inject('temporalAddress'), namespace: inject('temporalNamespace'), taskQueue },
  });
  shareSecrets(inject('temporalAddress'), 'worker-kill', cluster.secrets);
  target = { client: await testConnection(), taskQueue };
  worker = await spawnWorker(cluster);
});

afterAll(async () => {
  shareDone(inject('temporalAddress'), 'worker-kill');
  await worker?.stop();
  if (cluster && target) {
    const own = combine(
      await scanHistories(target.client, `TaskQueue = '${target.taskQueue}'`, cluster.secrets),
      await scanFiles(cluster.logFiles, cluster.secrets),
    );
    record({
      section: 'secrets',
      name: 'worker-kill histories, worker logs, audit log',
      value: own.leaks.length,
      unit: 'hits',
      note: `${own.workflows} histories, ${own.events} events, ${own.files} files`,
    });
    expect(own.leaks).toEqual([]);
  }
  await cluster?.stop();
});

const callsSoFar = () => totalCalls(cluster.sim);

function runningTasks(): string {
  const running = cluster.sim.cluster.tasks.all().filter((t) => t.status === 'running');
  const byType = new Map<string, number>();
  for (const t of running) byType.set(t.type, (byType.get(t.type) ?? 0) + 1);
  return [...byType].map(([type, n]) => `${type}×${n}`).join(' ') || 'none';
}

/**
 * Kills the worker once the simulator has answered `call` more API calls than at `from`
 * (or when `done` says there is nothing left to interrupt), then starts a new one.
 */
async function killAndRestartAt(from: number, call: number, done: () => boolean): Promise<boolean> {
  while (callsSoFar() - from < call) {
    if (done()) return false;
    await new Promise((r) => setTimeout(r, 2));
  }
  await worker!.kill();
  const killedAt = Date.now();
  const atKill = callsSoFar();
  const running = runningTasks();
  worker = await spawnWorker(cluster);
  // Resumed: the new worker's first call to PVE. Until then every operation waits for Temporal
  // to give up on the attempts the dead worker held (their heartbeat or start-to-close timeout).
  const resumed = (async () => {
    while (callsSoFar() === atKill && !done()) await new Promise((r) => setTimeout(r, 20));
    return Date.now() - killedAt;
  })();
  kills.push({ call, running, restartMs: Date.now() - killedAt, resumed });
  return true;
}

/** The PVE write and task type each action sends once. */
const DISPATCH: Record<string, { endpoint: string; task: string }> = {
  start: { endpoint: 'qemuStart', task: 'qmstart' },
  stop: { endpoint: 'qemuStop', task: 'qmstop' },
  shutdown: { endpoint: 'qemuShutdown', task: 'qmshutdown' },
  reboot: { endpoint: 'qemuReboot', task: 'qmreboot' },
  snapshot: { endpoint: 'qemuSnapshotCreate', task: 'qmsnapshot' },
  migrate: { endpoint: 'qemuMigrate', task: 'qmigrate' },
  // A resize's one task is its safety snapshot; the config change itself is a PUT that sets absolute values.
  resize: { endpoint: 'qemuSnapshotCreate', task: 'qmsnapshot' },
};

interface Tracked {
  label: string;
  handle: WorkflowHandle;
  settled: boolean;
  outcome?: Outcome;
}

/** Follows an operation to its end, approving its plan as a second person when it asks. */
function track(label: string, handle: WorkflowHandle): Tracked {
  const tracked: Tracked = { label, handle, settled: false };
  void (async () => {
    await approveWhenPlanned(handle, 'bob').catch(() => undefined);
    tracked.outcome = await outcomeOf(handle);
    tracked.settled = true;
  })();
  return tracked;
}

async function settled(ops: Tracked[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (ops.some((o) => !o.settled)) {
    if (Date.now() > deadline)
      throw new Error(
        `not settled in ${timeoutMs} ms: ${ops
          .filter((o) => !o.settled)
          .map((o) => o.label)
          .join(', ')}`,
      );
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('the worker killed at random points and restarted', () => {
  it('finishes every VM action and evacuation exactly once', { timeout: 15 * 60_000 }, async () => {
    // Heavier runs add resizes (a safety snapshot, then a config change) to the mix.
    const actions = ['snapshot', 'reboot', 'migrate', 'stop', 'shutdown', ...(heavy ? ['resize'] : [])];
    const pve1 = vms.filter((v) => v.node === 'pve1');
    const others = vms.filter((v) => v.node !== 'pve1');
    const began = Date.now();
    const from = callsSoFar();

    // VM actions on pve2/pve3 guests (stopped ones are started, running ones get the rest).
    let i = 0;
    const vmOps = await Promise.all(
      others.map(async (vm) => {
        const action = vm.status === 'stopped' ? 'start' : actions[i++ % actions.length]!;
        const body = {
          vmid: vm.vmid,
          name: vm.name,
          ...(action === 'resize' ? { cores: 4 } : { action, shutdownTimeoutSeconds: 60 }),
          ...(action === 'snapshot' ? { snapshot: `suite${vm.vmid}` } : {}),
          ...(action === 'migrate' ? { target: vm.node === 'pve2' ? 'pve3' : 'pve2' } : {}),
        };
        const kind = action === 'resize' ? 'vm-resize' : 'vm-action';
        return {
          vm,
          action,
          op: track(
            `${action} ${vm.vmid}`,
            await startOperation(target, kind, body, { autoApprove: ['low', 'medium'] }),
          ),
        };
      }),
    );
    // Read-only inventories, in the heavy run.
    const inventories = heavy
      ? await Promise.all(
          [0, 1].map(async (n) => track(`inventory ${n}`, await startOperation(target, 'inventory', {}))),
        )
      : [];
    // And an evacuation of pve1 (its running and stopped guests) onto pve2 and pve3.
    const evacuation = track(
      'evacuate pve1',
      await startOperation(target, 'evacuation', { node: 'pve1', maxParallel: 4 }),
    );
    const everything = [...vmOps.map((o) => o.op), ...inventories, evacuation];

    // Kill points: distinct call indices over the calls a run like this makes (about 20 per
    // operation). One by default: each kill costs up to the longest start-to-close timeout of
    // the activities it interrupts (docs/suite.md, finding 5).
    const killCount = heavy ? 5 : 1;
    const span = 20 * everything.length;
    const points = [...new Set(Array.from({ length: killCount }, () => between(next, 1, span)))].sort((a, b) => a - b);
    for (const point of points) {
      if (!(await killAndRestartAt(from, point, () => everything.every((o) => o.settled)))) break;
    }
    await settled(everything, (heavy ? 12 : 6) * 60_000);

    // What happened, recorded before it is judged.
    const plan =
      evacuation.outcome?.state === 'completed'
        ? completedValue<{ plan: { details: EvacuationPlan } }>(evacuation.outcome).plan.details
        : undefined;
    const moves = plan?.moves ?? [];
    // Nothing ran twice: one write and one task per guest and action.
    const duplicates: string[] = [];
    const once = (label: string, endpoint: string, task: string, vmid: number) => {
      const calls = cluster.sim.counters.calls(endpoint, vmid);
      const tasks = cluster.sim.counters.tasks(task, vmid);
      if (calls !== 1 || tasks !== 1) duplicates.push(`${label}: ${calls} ${endpoint} calls, ${tasks} ${task} tasks`);
    };
    for (const { vm, action } of vmOps)
      once(`${action} ${vm.vmid}`, DISPATCH[action]!.endpoint, DISPATCH[action]!.task, vm.vmid);
    for (const move of moves) once(`evacuate ${move.vmid}`, 'qemuMigrate', 'qmigrate', move.vmid);

    const wallS = Math.round((Date.now() - began) / 1000);
    const resumed = await Promise.all(kills.map((k) => k.resumed));
    record({
      section: 'faults',
      name: 'worker SIGKILL + restart',
      value: kills.length,
      unit: 'kills',
      note: `seed ${seed}; ${kills.map((k, n) => `after PVE call ${k.call} (tasks running: ${k.running}): new worker up in ${(k.restartMs / 1000).toFixed(1)} s, work resumed after ${(resumed[n]! / 1000).toFixed(1)} s`).join('; ')}`,
    });
    record({
      section: 'faults',
      name: 'worker SIGKILL: operations completed',
      value: `${everything.filter((o) => o.outcome?.state === 'completed').length}/${everything.length}`,
      note: `${vmOps.length} VM actions (${[...new Set(vmOps.map((o) => o.action))].join(', ')}), ${inventories.length} inventories and an evacuation moving ${moves.length} of ${pve1.length} guests, all done in ${wallS} s`,
    });
    record({
      section: 'faults',
      name: 'worker SIGKILL: duplicate PVE writes or tasks',
      value: duplicates.length,
      unit: 'duplicates',
      note: duplicates.join('; ') || undefined,
    });

    // Every operation completed, and left its guest where it should be.
    for (const op of everything) expect([op.label, op.outcome?.state]).toEqual([op.label, 'completed']);
    expect(evacuation.outcome).toMatchObject({ value: { outcome: 'completed', result: { outcome: 'evacuated' } } });
    const guests = cluster.sim.state.guests;
    for (const { vm, action } of vmOps) {
      const g = guests.get(vm.vmid)!;
      if (action === 'start' || action === 'reboot') expect([vm.vmid, g.status]).toEqual([vm.vmid, 'running']);
      if (action === 'stop' || action === 'shutdown') expect([vm.vmid, g.status]).toEqual([vm.vmid, 'stopped']);
      if (action === 'migrate') expect([vm.vmid, g.node]).toEqual([vm.vmid, vm.node === 'pve2' ? 'pve3' : 'pve2']);
      if (action === 'snapshot') expect([vm.vmid, g.snapshots.has(`suite${vm.vmid}`)]).toEqual([vm.vmid, true]);
      if (action === 'resize') expect([vm.vmid, g.cores]).toEqual([vm.vmid, 4]);
    }
    for (const move of moves) expect([move.vmid, guests.get(move.vmid)!.node]).toEqual([move.vmid, move.target]);
    expect(duplicates).toEqual([]);
  });
});
