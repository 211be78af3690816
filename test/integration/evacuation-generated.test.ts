/**
 * An evacuation on a generated mid-size cluster — 48 nodes, 1,500 guests with containers,
 * HA-managed and passthrough VMs, local disks — runs to its end through the real workflow:
 * every guest planned to move is on its planned target, migrated exactly once, and no other
 * guest was touched. (bench:scale runs the same at 500 nodes / 15,000 guests.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApprovalActivities } from '../../activities/approvals.js';
import { createAuditActivities } from '../../activities/audit.js';
import { createEvacuationActivities } from '../../activities/evacuation.js';
import { approveWhenPlanned, evacuationInput, startEvacuation } from '../../testkit/evacuation-run.js';
import { generateScenario } from '../../sim/index.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { startTestWorker, type TestWorker } from '../support/temporal.js';

const scenario = generateScenario({ nodes: 48, vms: 1500, seed: 11 });
const perNode = new Map<string, number>();
for (const g of scenario.guests ?? []) perNode.set(g.node, (perNode.get(g.node) ?? 0) + 1);
const [source] = [...perNode].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]!;

describe('evacuating the fullest node of a generated 48-node, 1,500-guest cluster', () => {
  let env: SimulatedEnvironment;
  let worker: TestWorker;

  beforeAll(async () => {
    env = await startSimulatedEnvironment({ scenario, speed: 200 });
    worker = await startTestWorker({
      activities: {
        ...createEvacuationActivities({ ...env.deps, taskPolling: { pollMs: 20, maxPollMs: 50 } }),
        ...createAuditActivities(env.deps.audit),
        ...createApprovalActivities(env.deps),
      },
    });
  });
  afterAll(async () => {
    await worker?.shutdown();
    await env?.stop();
  });

  it('moves every planned guest to its target exactly once and touches no other guest', async () => {
    const before = new Map([...env.sim.state.guests.values()].map((g) => [g.vmid, g.node]));
    const handle = await startEvacuation(
      worker.client,
      worker.taskQueue,
      evacuationInput({
        environment: env.environment,
        node: source,
        maxParallel: 8,
        maxParallelPerTarget: 2,
        includeStopped: true,
        containers: 'restart',
        onFailure: 'continue',
      }),
    );
    await approveWhenPlanned(handle);
    const { result } = await handle.result();

    const migrated = result!.guests.flatMap((g) => (g.state === 'migrated' ? [g] : []));
    expect(migrated.length).toBeGreaterThan(10);
    expect(result!.guests.filter((g) => g.state === 'failed' || g.state === 'not-started')).toEqual([]);
    const migrations = (vmid: number) =>
      env.sim.counters.tasks('qmigrate', vmid) + env.sim.counters.tasks('vzmigrate', vmid);
    for (const g of migrated) {
      expect({ vmid: g.vmid, node: env.sim.state.guests.get(g.vmid)?.node, migrations: migrations(g.vmid) }).toEqual({
        vmid: g.vmid,
        node: g.target,
        migrations: 1,
      });
    }
    const moved = new Set(migrated.map((g) => g.vmid));
    const touched = [...env.sim.state.guests.values()].filter(
      (g) => !moved.has(g.vmid) && (g.node !== before.get(g.vmid) || migrations(g.vmid) > 0),
    );
    expect(touched.map((g) => g.vmid)).toEqual([]);
  });
});
