/**
 * How soon work resumes after the worker dies, per kind of activity it was running. The worker
 * (`worker/main.ts` in its own process) is SIGKILLed at a chosen moment — while a VM action is
 * planning, dispatching its request, waiting for its task, and while an evacuation migrates —
 * and a new one started at once. Until Temporal gives up on the attempt the dead worker held
 * (its heartbeat timeout, or its start-to-close timeout if it has none) nothing happens; the
 * figure is the time from the new worker polling to the next PVE call. Each operation must then
 * complete with its task run once.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { startSuiteCluster, totalCalls, type SuiteCluster } from '../../testkit/stack/cluster.js';
import { approveWhenPlanned, outcomeOf, startOperation, type Target } from '../support/suite/operations.js';
import { spawnWorker, type ChildService } from '../../testkit/stack/processes.js';
import { record, suiteSeed } from '../support/suite/report.js';
import { fleet, vmsOf } from '../../testkit/stack/scenarios.js';
import { testConnection, uniqueTaskQueue } from '../support/temporal.js';

const scenario = fleet({ nodes: 3, perNode: 4, memory: 4096 });
const vms = vmsOf(scenario);
/** Slow answers keep each request in flight long enough to kill the worker inside it. */
const LATENCY_MS = 400;
/** A slow clock keeps each task running long enough to kill the worker while it waits on it. */
const SPEED = 4;
const FINISH_SPEED = 100;

let cluster: SuiteCluster;
let target: Target;
let worker: ChildService | undefined;

beforeAll(async () => {
  const taskQueue = uniqueTaskQueue('suite-recovery');
  cluster = await startSuiteCluster({
    scenario,
    speed: SPEED,
    seed: suiteSeed(),
    temporal: { address: inject('temporalAddress'), namespace: inject('temporalNamespace'), taskQueue },
  });
  target = { client: await testConnection(), taskQueue };
  worker = await spawnWorker(cluster);
});

afterAll(async () => {
  await worker?.stop();
  await cluster?.stop();
});

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Kills the worker as soon as `reached` holds, starts a new one, and returns the seconds from
 * the new worker polling to the next PVE call (the dead worker's attempt given up and retried).
 */
async function killWhen(reached: () => Promise<boolean>): Promise<number> {
  while (!(await reached())) await pause(5);
  await worker!.kill();
  const atKill = totalCalls(cluster.sim);
  worker = await spawnWorker(cluster);
  const polling = Date.now();
  while (totalCalls(cluster.sim) === atKill) await pause(20);
  return (Date.now() - polling) / 1000;
}

interface Case {
  kind: string;
  /** The activity the kill interrupts. */
  activity: string;
  start: () => Promise<WorkflowHandle>;
  /** True once that activity is in the middle of its work: `since(endpoint, vmid)` counts calls made before the start. */
  reached: (handle: WorkflowHandle, since: Calls) => Promise<boolean>;
  /** The task type and guest whose task must have run exactly once. */
  once: { task: string; vmid: number };
}

const [stoppedA, stoppedB, stoppedC] = vms
  .filter((v) => v.node === 'pve2' && v.status === 'stopped')
  .concat(vms.filter((v) => v.node === 'pve3' && v.status === 'stopped'));
const evacuated = vms.find((v) => v.node === 'pve1' && v.status === 'running')!;
type Calls = (endpoint: string, vmid?: number) => number;
const calls: Calls = (endpoint, vmid) => cluster.sim.counters.calls(endpoint, vmid);
/** The call counts as they are now, frozen. */
function callsNow(): Calls {
  const frozen = cluster.sim.counters.snapshot().calls;
  return (endpoint, vmid) => frozen[vmid === undefined ? endpoint : `${endpoint}:${vmid}`] ?? 0;
}
const STARTED = temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;

/** The operation's activity of that name is running on a worker. */
const inside = (activity: string) => async (handle: WorkflowHandle) =>
  ((await handle.describe()).raw.pendingActivities ?? []).some(
    (a) => a.activityType?.name === activity && a.state === STARTED,
  );

/** More calls to the endpoint (for the guest) than before the operation started. */
const more = (since: Calls, endpoint: string, vmid?: number) => calls(endpoint, vmid) > since(endpoint, vmid);
const start = (vm: { vmid: number; name: string }) => () =>
  startOperation(target, 'vm-action', { vmid: vm.vmid, name: vm.name, action: 'start' });

const cases: Case[] = [
  {
    kind: 'vm-action',
    activity: 'planVmAction',
    start: start(stoppedA!),
    reached: inside('planVmAction'),
    once: { task: 'qmstart', vmid: stoppedA!.vmid },
  },
  {
    kind: 'vm-action',
    activity: 'dispatchVmStep',
    start: start(stoppedB!),
    reached: inside('dispatchVmStep'),
    once: { task: 'qmstart', vmid: stoppedB!.vmid },
  },
  {
    kind: 'vm-action',
    activity: 'awaitTask',
    start: start(stoppedC!),
    reached: inside('awaitTask'),
    once: { task: 'qmstart', vmid: stoppedC!.vmid },
  },
  {
    kind: 'evacuation',
    activity: 'migrateGuest',
    start: async () => {
      const handle = await startOperation(target, 'evacuation', { node: 'pve1', maxParallel: 4 });
      void approveWhenPlanned(handle).catch(() => undefined);
      return handle;
    },
    // migrateGuest runs in a child workflow: its migrate request marks it (the task runs for seconds after).
    reached: async (_handle, since) => more(since, 'qemuMigrate', evacuated.vmid),
    once: { task: 'qmigrate', vmid: evacuated.vmid },
  },
];

describe('the worker killed inside each kind of activity', () => {
  it(
    'resumes on a new worker and finishes each operation with its task run once',
    { timeout: 15 * 60_000 },
    async () => {
      for (const c of cases) {
        const before = callsNow();
        const tasksBefore = cluster.sim.counters.tasks(c.once.task, c.once.vmid);
        cluster.sim.faults.setApi({ latencyMs: LATENCY_MS });
        const handle = await c.start();
        let resumedS: number;
        try {
          resumedS = await killWhen(() => c.reached(handle, before));
        } finally {
          cluster.sim.faults.setApi({ latencyMs: 0 });
        }
        // Work has resumed: the rest of the operation runs at a fast clock, the next kill at the slow one.
        cluster.sim.clock.setSpeed(FINISH_SPEED);
        const outcome = await outcomeOf(handle).finally(() => cluster.sim.clock.setSpeed(SPEED));
        record({
          section: 'faults',
          name: `worker SIGKILL in ${c.activity} (${c.kind}): resumed`,
          value: resumedS.toFixed(1),
          unit: 's after the new worker polled',
          note: `then ${outcome.state}`,
        });
        expect([c.activity, outcome.state]).toEqual([c.activity, 'completed']);
        expect([c.activity, cluster.sim.counters.tasks(c.once.task, c.once.vmid) - tasksBefore]).toEqual([
          c.activity,
          1,
        ]);
      }
    },
  );
});
