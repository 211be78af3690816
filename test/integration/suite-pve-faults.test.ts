/**
 * Proxmox API faults, end to end (real Temporal, real worker activities, the simulator's
 * HTTPS API): 5xx answers and connection resets at random, answers slower than the client
 * waits, a node that goes away, a task that fails. Reads are repeated until they succeed;
 * a request that changes something is sent once — when its answer is lost, the node's task
 * list tells whether it acted, and a destructive one stops the operation saying so — and every
 * failure reaches the operator with PVE's own message.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { createPveClientForEnvironment, type PveClient } from '../../lib/pve/client.js';
import { startSuiteCluster, totalCalls, type SuiteCluster } from '../../testkit/stack/cluster.js';
import {
  approveWhenPlanned,
  completedValue,
  outcomeOf,
  startOperation,
  type Outcome,
  type Target,
} from '../support/suite/operations.js';
import { heavy, record, suiteSeed } from '../support/suite/report.js';
import { fleet, vmsOf } from '../../testkit/stack/scenarios.js';
import { combine, scanFiles, scanHistories, shareDone, shareSecrets } from '../../testkit/stack/secrets.js';
import { startTestWorker, testConnection, uniqueTaskQueue, type TestWorker } from '../support/temporal.js';

const scenario = fleet({ nodes: 3, perNode: 8 });
const vms = vmsOf(scenario);
/** The last two (stopped) VMs of each node are kept out of the batch for the single-fault tests. */
const reserved = (vm: (typeof vms)[number]) => vm.vmid % 100 >= 6;
const spare = (node: string) => {
  const vm = vms.find((v) => reserved(v) && v.node === node && !taken.has(v.vmid));
  if (!vm) throw new Error(`no spare VM left on ${node}`);
  taken.add(vm.vmid);
  return vm;
};
const taken = new Set<number>();
/** The client gives up on an answer after this long (30 s in production; short here so a test can wait it out). */
const CLIENT_TIMEOUT_MS = 1_500;

let cluster: SuiteCluster;
let worker: TestWorker;
let target: Target;

beforeAll(async () => {
  const taskQueue = uniqueTaskQueue('suite-pve');
  cluster = await startSuiteCluster({
    scenario,
    speed: 50,
    seed: suiteSeed(),
    temporal: { address: inject('temporalAddress'), namespace: inject('temporalNamespace'), taskQueue },
  });
  shareSecrets(inject('temporalAddress'), 'pve-faults', cluster.secrets);
  // The worker's own dependencies, but with a client that waits CLIENT_TIMEOUT_MS for an answer.
  const clients = new Map<string, Promise<PveClient>>();
  const pve = (environment: string) => {
    let client = clients.get(environment);
    if (!client)
      clients.set(
        environment,
        (client = createPveClientForEnvironment(cluster.config.environments[environment]!, {
          timeoutMs: CLIENT_TIMEOUT_MS,
        })),
      );
    return client;
  };
  worker = await startTestWorker({ taskQueue, activities: createActivities({ ...cluster.deps, pve }) });
  target = { client: await testConnection(), taskQueue };
});

afterAll(async () => {
  shareDone(inject('temporalAddress'), 'pve-faults');
  if (worker && cluster) {
    const scan = combine(
      await scanHistories(target.client, `TaskQueue = '${target.taskQueue}'`, cluster.secrets),
      await scanFiles(cluster.logFiles, cluster.secrets),
    );
    record({
      section: 'secrets',
      name: 'PVE-fault histories and audit log',
      value: scan.leaks.length,
      unit: 'hits',
      note: `${scan.workflows} histories, ${scan.events} events, ${scan.files} files`,
    });
    expect(scan.leaks).toEqual([]);
  }
  await worker?.shutdown();
  await cluster?.stop();
});

const counters = () => cluster.sim.counters;

/** The PVE request that does the work, and its task type, for each action. */
const DISPATCH: Record<string, { endpoint: string; task: string }> = {
  start: { endpoint: 'qemuStart', task: 'qmstart' },
  stop: { endpoint: 'qemuStop', task: 'qmstop' },
  reboot: { endpoint: 'qemuReboot', task: 'qmreboot' },
  snapshot: { endpoint: 'qemuSnapshotCreate', task: 'qmsnapshot' },
  migrate: { endpoint: 'qemuMigrate', task: 'qmigrate' },
};

type Failed = Extract<Outcome, { state: 'failed' }>;

/** A write's own failure: PVE's answer to it, or an answer that never came. */
const WRITE_FAILURE =
  /: (OutcomeUnknown: \w+ of VM \d+ was sent but PVE did not answer; check its task list before retrying|PveApiError: POST \/nodes\/pve\d\/qemu\/\d+\/[\w/]+ failed \(500\): Internal Server Error)/;
/**
 * What ended an operation out of attempts: a read that kept failing (PVE's answer, or the
 * connection that broke), or a task request whose answer was lost on every attempt (each
 * attempt looked for its task in the node's task list before sending, so none acted twice).
 */
const OUT_OF_ATTEMPTS = new RegExp(
  [
    String.raw`PveApiError: GET \/[\w/-]+ failed \(500\): Internal Server Error$`,
    String.raw`PveUnavailableError: PVE unavailable for GET \/[\w/-]+: .+$`,
    String.raw`TaskUnanswered: \w+ of VM \d+ was sent but PVE did not answer; the next attempt follows its task if it started one \(.+\)$`,
  ]
    .map((p) => `: ${p}`)
    .join('|'),
);

interface Run {
  vmid: number;
  action: string;
  outcome: Outcome;
}

/** One operation per VM (`pick` chooses the action), all at once, approved by a second person where needed. */
async function runBatch(pick: (vm: (typeof vms)[number], i: number) => string | undefined): Promise<Run[]> {
  const started = vms.flatMap((vm, i) => {
    const action = pick(vm, i);
    if (!action) return [];
    const body = {
      vmid: vm.vmid,
      name: vm.name,
      action,
      ...(action === 'snapshot' ? { snapshot: `suite${vm.vmid}` } : {}),
      ...(action === 'migrate' ? { target: vm.node === 'pve3' ? 'pve1' : 'pve3' } : {}),
    };
    return [{ vm, action, handle: startOperation(target, 'vm-action', body, { autoApprove: ['low', 'medium'] }) }];
  });
  return Promise.all(
    started.map(async ({ vm, action, handle }) => {
      const h = await handle;
      await approveWhenPlanned(h).catch(() => undefined);
      return { vmid: vm.vmid, action, outcome: await outcomeOf(h) };
    }),
  );
}

/** Operations whose request PVE acted on more than once, or whose task ran more than once. */
function countDuplicates(runs: Run[], before: Record<string, number>): string[] {
  return runs.flatMap((run) => {
    const { endpoint, task } = DISPATCH[run.action]!;
    const calls = counters().calls(endpoint, run.vmid) - (before[`${endpoint}:${run.vmid}`] ?? 0);
    const tasks = counters().tasks(task, run.vmid) - (before[`${task}:${run.vmid}`] ?? 0);
    return calls > 1 || tasks > 1
      ? [`${run.action} ${run.vmid}: ${calls} ${endpoint} calls, ${tasks} ${task} tasks`]
      : [];
  });
}

function snapshotCounters(): Record<string, number> {
  const { calls, tasks } = counters().snapshot();
  return { ...calls, ...tasks };
}

describe('PVE answering 5xx and resetting connections at random', () => {
  it('repeats reads until they succeed, sends each change once, and names what failed', async () => {
    const before = snapshotCounters();
    // PM_SUITE_ERROR_RATE / PM_SUITE_RESET_RATE: the share of calls answered 500 / reset.
    const errorRate = Number(process.env.PM_SUITE_ERROR_RATE ?? 0.1);
    const resetRate = Number(process.env.PM_SUITE_RESET_RATE ?? 0.02);
    cluster.sim.faults.setApi({ errorRate, resetRate, errorStatus: 500 });
    const callsBefore = totalCalls(cluster.sim);
    let runs: Run[];
    try {
      runs = await runBatch((vm, i) =>
        reserved(vm) ? undefined : vm.status === 'stopped' ? 'start' : ['snapshot', 'reboot', 'migrate', 'stop'][i % 4],
      );
    } finally {
      cluster.sim.faults.setApi({ errorRate: 0, resetRate: 0 });
    }
    const callsAfter = totalCalls(cluster.sim);

    const failed = runs
      .filter((r) => r.outcome.state === 'failed')
      .map((r) => ({ ...r, failure: r.outcome as Failed }));
    const onTheirWrite = failed.filter((r) => r.failure.activity?.retryState === 'NON_RETRYABLE_FAILURE');
    const outOfRetries = failed.filter((r) => r.failure.activity?.retryState === 'MAXIMUM_ATTEMPTS_REACHED');
    const duplicates = countDuplicates(runs, before);
    const completed = runs.length - failed.length;
    record({
      section: 'faults',
      name: 'PVE 5xx/resets: operations',
      value: `${completed}/${runs.length} completed; ${onTheirWrite.length} stopped at their write, ${outOfRetries.length} out of read retries`,
      note:
        `error rate ${errorRate}, reset rate ${resetRate}, ${callsAfter - callsBefore} calls answered` +
        // Which activities ran out of attempts: their retry policies bound how many faults in a row an operation survives.
        (outOfRetries.length
          ? `; out of retries in ${outOfRetries.map((r) => r.failure.activity?.type).join(', ')}`
          : ''),
    });
    record({
      section: 'faults',
      name: 'PVE 5xx/resets: duplicate writes',
      value: duplicates.length,
      unit: 'duplicates',
      note: duplicates.join('; ') || undefined,
    });

    for (const { vmid, action, failure } of onTheirWrite) {
      // The one request that changes something is never repeated: it ends the operation with
      // what PVE said to it, or with the notice that its outcome is unknown.
      expect(`${vmid} ${action}: ${failure.type}: ${failure.message}`).toMatch(WRITE_FAILURE);
    }
    for (const { vmid, action, failure } of outOfRetries) {
      // A read, or a task request whose answer was lost, is tried as often as the activity's
      // retry policy allows, then reported with PVE's last answer.
      expect(`${vmid} ${action}: ${failure.type}: ${failure.message}`).toMatch(OUT_OF_ATTEMPTS);
    }
    expect(onTheirWrite.length + outOfRetries.length).toBe(failed.length);
    expect(duplicates).toEqual([]);
    // A completed operation ran its task exactly once.
    for (const run of runs.filter((r) => r.outcome.state === 'completed')) {
      expect([
        run.vmid,
        counters().tasks(DISPATCH[run.action]!.task, run.vmid) -
          (before[`${DISPATCH[run.action]!.task}:${run.vmid}`] ?? 0),
      ]).toEqual([run.vmid, 1]);
    }
    // At the default rates most operations get through; higher rates are for exploring.
    if (errorRate <= 0.1 && resetRate <= 0.02) expect(completed).toBeGreaterThan(runs.length / 2);
  });
});

describe('PVE answering slower than the client waits', () => {
  it('repeats the reads that timed out and carries on once PVE answers in time', async () => {
    const vm = spare('pve3');
    const latencyMs = CLIENT_TIMEOUT_MS + 1_000;
    const before = counters().calls('clusterResources');
    cluster.sim.faults.setApi({ latencyMs });
    const began = Date.now();
    const handle = await startOperation(target, 'vm-action', { vmid: vm.vmid, name: vm.name, action: 'start' });
    // Every read times out while the latency lasts; the activity is retried with backoff.
    await expect
      .poll(() => counters().calls('clusterResources') - before, { timeout: 30_000, interval: 50 })
      .toBeGreaterThanOrEqual(2);
    cluster.sim.faults.setApi({ latencyMs: 0 });
    const outcome = await outcomeOf(handle);

    expect(outcome.state).toBe('completed');
    expect(counters().tasks('qmstart', vm.vmid)).toBe(1);
    expect(cluster.sim.state.guests.get(vm.vmid)!.status).toBe('running');
    record({
      section: 'faults',
      name: 'PVE slower than the client timeout',
      value: 'completed, started once',
      note: `${latencyMs} ms answers against a ${CLIENT_TIMEOUT_MS} ms client timeout until 2 reads had timed out; done in ${Date.now() - began} ms`,
    });
  });

  it('finds a start whose answer was lost in the node’s task list and follows it, sending it once', async () => {
    const vm = spare('pve1');
    // PVE acts on the request, then the connection drops before the answer (as after a client timeout).
    cluster.sim.faults.failCalls({ kind: 'reset-after', match: `POST /nodes/pve1/qemu/${vm.vmid}/status/start` });
    const outcome = await outcomeOf(
      await startOperation(target, 'vm-action', { vmid: vm.vmid, name: vm.name, action: 'start' }),
    );

    expect(outcome.state).toBe('completed');
    expect(counters().calls('qemuStart', vm.vmid)).toBe(1);
    expect(counters().tasks('qmstart', vm.vmid)).toBe(1);
    expect(cluster.sim.state.guests.get(vm.vmid)!.status).toBe('running');
    record({
      section: 'faults',
      name: 'PVE write answer lost (start)',
      value: 'completed, sent once',
      note: 'reset after PVE acted on POST .../status/start; the retry found its qmstart task and followed it',
    });
  });

  it('never sends a destructive write again when its answer was lost: the operation stops and says to check the task list', async () => {
    // Any guest the batch above left stopped (a delete needs one).
    const vm = vms.find((v) => !reserved(v) && cluster.sim.state.guests.get(v.vmid)?.status === 'stopped');
    if (!vm) throw new Error('no stopped guest to delete');
    cluster.sim.faults.failCalls({ kind: 'reset-after', match: `DELETE /nodes/${vm.node}/qemu/${vm.vmid}` });
    const handle = await startOperation(target, 'vm-action', { vmid: vm.vmid, name: vm.name, action: 'delete' });
    await approveWhenPlanned(handle);
    const outcome = await outcomeOf(handle);

    expect(outcome).toMatchObject({
      state: 'failed',
      type: 'OutcomeUnknown',
      message: expect.stringMatching(
        new RegExp(`^destroy of VM ${vm.vmid} was sent but PVE did not answer; check its task list before retrying`),
      ),
      activity: { type: 'dispatchVmStep', retryState: 'NON_RETRYABLE_FAILURE' },
    });
    expect(counters().calls('qemuDestroy', vm.vmid)).toBe(1);
    record({
      section: 'faults',
      name: 'PVE write answer lost (delete)',
      value: 'failed OutcomeUnknown, sent once',
      note: 'reset after PVE acted on DELETE .../qemu/{vmid}: a destructive write is never sent again',
    });
  });
});

describe('a node going away', () => {
  it('fails over for cluster-wide reads and rides out the outage for the node’s own guests', async () => {
    const onOther = spare('pve2');
    const onOffline = spare('pve1');
    // pve1 is the first node the client talks to.
    await cluster.sim.faults.nodeOffline('pve1');
    let online = false;
    try {
      const inventory = await outcomeOf(await startOperation(target, 'inventory', {}));
      expect(inventory.state).toBe('completed');
      const summary = completedValue<{ nodes: { name: string; online: boolean }[] }>(inventory);
      expect(summary.nodes.find((n) => n.name === 'pve1')?.online).toBe(false);

      const elsewhere = await outcomeOf(
        await startOperation(target, 'vm-action', { vmid: onOther.vmid, name: onOther.name, action: 'start' }),
      );
      expect(elsewhere.state).toBe('completed');

      const waiting = await startOperation(target, 'vm-action', {
        vmid: onOffline.vmid,
        name: onOffline.name,
        action: 'start',
      });
      await new Promise((r) => setTimeout(r, 3_000));
      expect(cluster.sim.counters.tasks('qmstart', onOffline.vmid)).toBe(0);
      await cluster.sim.faults.nodeOnline('pve1');
      online = true;
      expect((await outcomeOf(waiting)).state).toBe('completed');
      expect(cluster.sim.counters.tasks('qmstart', onOffline.vmid)).toBe(1);
    } finally {
      if (!online) await cluster.sim.faults.nodeOnline('pve1');
    }
    record({
      section: 'faults',
      name: 'PVE node offline (3 s)',
      value: '3/3 operations completed',
      note: 'inventory and a start elsewhere by failover; a start on the node after it returned',
    });
  });
});

describe('a node that stays away', () => {
  it.runIf(heavy)('fails the operation on its guest after the reads’ retries, naming PVE’s 595', async () => {
    const vm = spare('pve3');
    await cluster.sim.faults.nodeOffline('pve3');
    let outcome: Outcome;
    try {
      outcome = await outcomeOf(
        await startOperation(target, 'vm-action', { vmid: vm.vmid, name: vm.name, action: 'start' }),
      );
    } finally {
      await cluster.sim.faults.nodeOnline('pve3');
    }
    expect(outcome).toMatchObject({
      state: 'failed',
      message: expect.stringMatching(/^PVE unavailable for GET \/nodes\/pve3\/.+: 595 No route to host/),
      activity: { type: 'planVmAction', retryState: 'MAXIMUM_ATTEMPTS_REACHED' },
    });
    expect(counters().tasks('qmstart', vm.vmid)).toBe(0);
    record({
      section: 'faults',
      name: 'PVE node offline for good',
      value: 'failed after retries: 595 No route to host',
      note: 'nothing sent to the guest',
    });
  });
});

describe('a PVE task that fails', () => {
  it('fails the operation with the task’s exit status and log, and is never run again', async () => {
    const vm = spare('pve2');
    cluster.sim.faults.failTask({ type: 'qmstart', vmid: vm.vmid, times: 1 });
    const outcome = await outcomeOf(
      await startOperation(target, 'vm-action', { vmid: vm.vmid, name: vm.name, action: 'start' }),
    );

    expect(outcome).toMatchObject({
      state: 'failed',
      type: 'PveTaskFailedError',
      message: expect.stringMatching(
        new RegExp(
          `^task qmstart ${vm.vmid} on ${vm.node} \\(UPID:.+\\) failed: start failed: QEMU exited with code 1`,
        ),
      ),
      activity: { type: 'awaitTask', retryState: 'NON_RETRYABLE_FAILURE' },
    });
    expect(outcome.state === 'failed' && outcome.message).toContain(
      'TASK ERROR: start failed: QEMU exited with code 1',
    );
    expect(counters().tasks('qmstart', vm.vmid)).toBe(1);
    expect(cluster.sim.state.guests.get(vm.vmid)!.status).toBe('stopped');
    record({
      section: 'faults',
      name: 'PVE task fails',
      value: 'failed with PVE’s exit status and log, run once',
      note: 'qmstart: "start failed: QEMU exited with code 1"',
    });
  });
});
