/**
 * What a failed step leaves, and what each decision does about it. The failure: the second
 * node's SSH host key no longer matches the pinned one (a reinstalled node, or someone in
 * between), so its upgrade is refused before anything runs on it — while its guests are away.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { approveWhenPlanned } from '../../testkit/evacuation-run.js';
import {
  maintenanceInput,
  maintenanceScenario,
  startMaintenance,
  waitForMaintenance,
  type MaintenanceBody,
} from '../../testkit/maintenance-run.js';
import { maintenanceDecisions } from '../../workflows/maintenance-definitions.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { type TestWorker } from '../support/temporal.js';
import { SIMULATED_POLLING, startEnvironmentWorker } from '../support/worker.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** The order the plan picks for maintenanceScenario(): the small node first, then by name. */
const [FIRST, SECOND, THIRD] = ['pve03', 'pve01', 'pve02'] as const;
const WRONG_KEY = `SHA256:${'A'.repeat(43)}`;

async function rollout(environment: string, body: Omit<MaintenanceBody, 'environment'> = {}) {
  const env = await startSimulatedEnvironment({
    scenario: maintenanceScenario({ rebootSeconds: 60 }),
    speed: 100,
    environment,
  });
  cleanup.push(() => env.stop());
  const deps = {
    ...env.deps,
    sshTarget: async (environment: string, node: string) => {
      const target = await env.deps.sshTarget(environment, node);
      return node === SECOND ? { ...target, hostKeySha256: WRONG_KEY } : target;
    },
  };
  const worker: TestWorker = await startEnvironmentWorker(deps, { tuning: SIMULATED_POLLING });
  cleanup.push(() => worker.shutdown());
  const handle = await startMaintenance(worker.client, worker.taskQueue, maintenanceInput({ environment, ...body }));
  const planned = await approveWhenPlanned(handle);
  expect(planned.plan!.nodes).toEqual([FIRST, SECOND, THIRD]);
  return { env, handle, before: placement(env) };
}

function placement(env: SimulatedEnvironment): Map<number, string> {
  return new Map([...env.sim.state.guests.values()].map((g) => [g.vmid, g.node]));
}

const migrations = (env: SimulatedEnvironment, vmid: number) =>
  env.sim.counters.tasks('qmigrate', vmid) + env.sim.counters.tasks('vzmigrate', vmid);
const guestsOf = (env: SimulatedEnvironment, node: string, before: Map<number, string>) =>
  [...before]
    .filter(([vmid, n]) => n === node && env.sim.state.guests.get(vmid)!.status === 'running')
    .map(([vmid]) => vmid);

describe('a failed step on the second node', () => {
  it('halts with the guests away; abort-and-return brings them home and stops before the third node', async () => {
    const { env, handle, before } = await rollout('maint-abort');
    const sim = env.sim;

    const halted = await waitForMaintenance(handle, (p) => p.state === 'halted');
    const report = halted.nodes.find((n) => n.node === SECOND)!;
    expect(report).toMatchObject({ state: 'halted', step: 'upgrade' });
    expect(report.halted!.error).toMatch(
      /^refusing SSH to 127\.0\.0\.1:\d+: host key SHA256:\S+ does not match the pinned SHA256:A{43}/,
    );
    expect(report.away.map((g) => g.vmid)).toEqual(guestsOf(env, SECOND, before));
    for (const g of report.away) expect(sim.state.guests.get(g.vmid)!.node).toBe(g.at);
    expect(report.halted!.options['abort-and-return']).toBe(
      `bring its ${report.away.length} guest(s) back to ${SECOND} if it is up, and stop the rolling maintenance`,
    );

    await handle.executeUpdate(maintenanceDecisions['abort-and-return'].update, {
      args: [{ by: 'anna', node: SECOND, reason: 'host key changed' }],
    });
    const { result } = await handle.result();

    expect(result?.outcome).toBe('aborted');
    expect(result?.stoppedBecause).toBe(`abort-and-return at ${SECOND} by anna: host key changed`);
    expect(result?.nodes.map((n) => [n.node, n.state])).toEqual([
      [FIRST, 'maintained'],
      [SECOND, 'aborted'],
      [THIRD, 'not-started'],
    ]);
    expect(result?.nodes[1]).toMatchObject({ away: [], notReturned: [], returned: report.away.length });
    expect(placement(env)).toEqual(before);
    // Nothing ran on the second node (the host was refused before authentication) nor on the third.
    expect([sim.state.node(SECOND).pveversion, sim.counters.sshCommands(SECOND)]).toEqual(['9.1.2', 0]);
    expect([sim.state.node(THIRD).pveversion, sim.counters.sshCommands(THIRD)]).toEqual(['9.1.2', 0]);
    for (const vmid of guestsOf(env, THIRD, before)) expect([vmid, migrations(env, vmid)]).toEqual([vmid, 0]);
    for (const vmid of [...guestsOf(env, FIRST, before), ...guestsOf(env, SECOND, before)])
      expect([vmid, migrations(env, vmid)]).toEqual([vmid, 2]);
  });

  it('skips the node by itself when stopOnFailure is off, bringing its guests home, and goes on', async () => {
    const { env, handle, before } = await rollout('maint-skip', { stopOnFailure: false });
    const { result } = await handle.result();

    expect(result?.outcome).toBe('completed-with-skips');
    expect(result?.nodes.map((n) => [n.node, n.state])).toEqual([
      [FIRST, 'maintained'],
      [SECOND, 'skipped'],
      [THIRD, 'maintained'],
    ]);
    expect(result?.nodes[1]!.decisions).toMatchObject([{ action: 'skip-node', by: 'policy' }]);
    expect(placement(env)).toEqual(before);
    expect([FIRST, SECOND, THIRD].map((n) => env.sim.state.node(n).pveversion)).toEqual(['9.1.4', '9.1.2', '9.1.4']);
  });
});
