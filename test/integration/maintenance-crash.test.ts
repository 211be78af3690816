/**
 * Workers die mid-node — SIGKILL, no goodbye — three times in one rollout: while the first
 * node's guests are migrating, while the second node's upgrade runs, while the third node
 * reboots. Each time another worker picks the rollout up where it was: no node is started
 * again, no guest migrates more than out and back, no upgrade or reboot runs twice.
 */
import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { approveWhenPlanned } from '../../testkit/evacuation-run.js';
import { maintenanceInput, maintenanceScenario, startMaintenance } from '../../testkit/maintenance-run.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { testConnection, uniqueTaskQueue } from '../support/temporal.js';
import { untilHolds } from '../support/until.js';
import { killWorkerProcess, SIMULATED_POLLING, startEnvironmentWorker, startWorkerProcess } from '../support/worker.js';

/** Simulated seconds per wall second while a kill is to land in a step, and between the kills. */
const SLOW = 20;
const FAST = 100;

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** A worker process of its own, killed at the end of the test if the test did not kill it. */
async function childWorker(env: SimulatedEnvironment, taskQueue: string): Promise<ChildProcess> {
  const child = await startWorkerProcess(env.config, taskQueue, SIMULATED_POLLING);
  cleanup.push(() => killWorkerProcess(child));
  return child;
}

describe('rolling maintenance across worker crashes', () => {
  it('never repeats a node, a migration, an upgrade or a reboot when the worker is killed mid-node', async () => {
    // A long upgrade (43 packages, 89 simulated seconds) so the kill lands inside it.
    const env = await startSimulatedEnvironment({
      scenario: maintenanceScenario({ rebootSeconds: 60, extraPackages: 40 }),
      speed: SLOW,
      environment: 'maint-crash',
    });
    cleanup.push(() => env.stop());
    const sim = env.sim;
    const taskQueue = uniqueTaskQueue('maintenance-kill');
    const before = new Map([...sim.state.guests.values()].map((g) => [g.vmid, g.node]));
    const running = [...sim.state.guests.values()].filter((g) => g.status === 'running').map((g) => g.vmid);
    /**
     * Between two kills the clock runs fast: from the moment what the worker died in has ended
     * (at the pace it began) until the next node begins the step the next kill lands in.
     */
    const fastBetween = async (ended: string, hasEnded: () => boolean, next: string, isNext: () => boolean) => {
      await untilHolds(ended, hasEnded);
      sim.clock.setSpeed(FAST);
      await untilHolds(next, isNext);
      sim.clock.setSpeed(SLOW);
    };
    const aptGets = (node: string) => sim.counters.sshCommands(node, 'apt-get');

    let worker = await childWorker(env, taskQueue);
    const handle = await startMaintenance(
      await testConnection(),
      taskQueue,
      maintenanceInput({ environment: env.environment }),
    );
    const planned = await approveWhenPlanned(handle);
    const [first, second, third] = planned.plan!.nodes as [string, string, string];

    // 1. The first node's guests are migrating.
    const migratingOff = (node: string) =>
      sim.cluster.tasks.all().some((t) => /^(qm|vz)migrate$/.test(t.type) && t.status === 'running' && t.node === node);
    await untilHolds(`${first}'s guests migrate`, () => migratingOff(first));
    await killWorkerProcess(worker);
    worker = await childWorker(env, taskQueue);
    await fastBetween(
      `the migrations off ${first} end`,
      () => !migratingOff(first),
      `${second} updates its package lists`,
      () => aptGets(second) >= 1,
    );

    // 2. The second node's upgrade is running (apt-get update done, dist-upgrade under way).
    await untilHolds(`${second} upgrades`, () => aptGets(second) >= 2 && sim.state.node(second).upgrade !== undefined);
    await killWorkerProcess(worker);
    worker = await childWorker(env, taskQueue);
    await fastBetween(
      `${second}'s upgrade ends`,
      () => sim.state.node(second).upgrade === undefined,
      `${third} updates its package lists`,
      () => aptGets(third) >= 1,
    );

    // 3. The third node is rebooting.
    await untilHolds(`${third} reboots`, () => !sim.state.node(third).online);
    await killWorkerProcess(worker);
    const last = await startEnvironmentWorker(env.deps, { taskQueue, tuning: SIMULATED_POLLING });
    cleanup.push(() => last.shutdown());
    // The reboot the dead worker started ends at the pace it began; bringing the guests home needs no slow clock.
    await untilHolds(`${third} is back`, () => sim.state.node(third).online);
    sim.clock.setSpeed(FAST);

    const { result } = await handle.result();
    expect(result?.outcome).toBe('completed');
    expect(result?.nodes.map((n) => [n.node, n.state])).toEqual([
      [first, 'maintained'],
      [second, 'maintained'],
      [third, 'maintained'],
    ]);
    // The upgrade whose worker died was not run again: apt was asked what was left instead.
    expect(result?.nodes[1]!.upgrade).toMatchObject({ resumed: true, versionAfter: '9.1.4' });

    for (const node of [first, second, third]) {
      // update + dist-upgrade once each; on the second node one more: the read-only `apt-get -s dist-upgrade`.
      expect([node, aptGets(node), sim.counters.sshCommands(node, 'reboot')]).toEqual([
        node,
        node === second ? 3 : 2,
        1,
      ]);
      expect([node, sim.state.node(node).pveversion, sim.state.node(node).kernel]).toEqual([
        node,
        '9.1.4',
        '6.17.4-1-pve',
      ]);
    }
    for (const vmid of running) {
      expect([vmid, sim.counters.tasks('qmigrate', vmid) + sim.counters.tasks('vzmigrate', vmid)]).toEqual([vmid, 2]);
    }
    expect(new Map([...sim.state.guests.values()].map((g) => [g.vmid, g.node]))).toEqual(before);
  }, 300_000);
});
