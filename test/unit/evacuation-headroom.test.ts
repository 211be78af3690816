/**
 * Before a migration starts, its target is checked against the plan's memory basis once more:
 * what the target's running guests are configured with (VMs and containers), or what it
 * reports in use. The check reads the target's own guest lists, whatever the cluster's size.
 */
import { MockActivityEnvironment } from '@temporalio/testing';
import { DefaultLogger } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEvacuationActivities, type MigrateGuestInput } from '../../activities/evacuation.js';
import type { GuestMove } from '../../lib/planning/evacuation.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { smallScenario } from './sim-fixtures.js';

const GiB = 1024 ** 3;
let env: SimulatedEnvironment;

beforeAll(async () => {
  const disks = [{ storage: 'shared', size: '8G' }];
  env = await startSimulatedEnvironment({
    scenario: smallScenario({
      // pve2: 40 GiB configured in running VMs and 8 GiB in a running container, of 64 GiB; a stopped 16 GiB VM counts for nothing.
      guests: [
        { vmid: 101, name: 'mover', node: 'pve1', memory: 8192, disks },
        ...[201, 202, 203, 204, 205].map((vmid) => ({ vmid, name: `busy${vmid}`, node: 'pve2', memory: 8192, disks })),
        { vmid: 206, type: 'lxc' as const, name: 'ct', node: 'pve2', memory: 8192, disks },
        { vmid: 207, name: 'off', node: 'pve2', status: 'stopped' as const, memory: 16384, disks },
      ],
    }),
    speed: 500,
  });
});
afterAll(() => env?.stop());

function input(memoryBasis: MigrateGuestInput['memoryBasis']): MigrateGuestInput {
  const move: GuestMove = {
    vmid: 101,
    name: 'mover',
    type: 'qemu',
    source: 'pve1',
    target: 'pve2',
    mode: 'online',
    priorStatus: 'running',
    haManaged: false,
    withLocalDisks: false,
    memoryBytes: 8 * GiB,
    localDiskBytes: 0,
    transferBytes: 8 * GiB,
    estimatedMs: 1000,
    why: 'test',
  };
  return {
    environment: env.environment,
    move,
    limits: { maxParallel: 1, maxParallelPerTarget: 1, containerShutdownTimeoutSeconds: 60 },
    memoryHeadroom: 0.2,
    memoryBasis,
    marker: { node: 'pve1', since: 0, upids: [] },
  };
}

const migrate = (memoryBasis: MigrateGuestInput['memoryBasis']) =>
  new MockActivityEnvironment({}, { logger: new DefaultLogger('ERROR', () => undefined) }).run(
    createEvacuationActivities({ ...env.deps, taskPolling: { pollMs: 20, maxPollMs: 50 } }).migrateGuest,
    input(memoryBasis),
  );

describe('the headroom check before a migration', () => {
  it("counts the configured memory of the target's running VMs and containers", async () => {
    await expect(migrate('configured')).rejects.toMatchObject({
      type: 'TargetHeadroom',
      message: expect.stringContaining('pve2 has running guests configured with 48.0 GiB of 64.0 GiB'),
    });
    expect(env.sim.counters.tasks('qmigrate', 101)).toBe(0);
  });

  it('counts what the target reports in use when the plan says so', async () => {
    await expect(migrate('used')).resolves.toMatchObject({ vmid: 101, node: 'pve2' });
    expect(env.sim.counters.tasks('qmigrate', 101)).toBe(1);
  });
});
