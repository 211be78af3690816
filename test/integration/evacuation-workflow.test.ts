import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  approveWhenPlanned,
  evacuationInput,
  startEvacuation,
  type EvacuationBody,
} from '../../testkit/evacuation-run.js';
import { withAutomationToken } from '../../testkit/scenarios.js';
import type { EvacuationPlan } from '../../lib/planning/evacuation.js';
import type { SimulatedCluster } from '../../sim/index.js';
import type { Scenario } from '../../sim/scenario.js';
import { statusQuery } from '../../workflows/definitions.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { type TestWorker } from '../support/temporal.js';
import { SIMULATED_POLLING, startEnvironmentWorker } from '../support/worker.js';
import { cancelWhen, stepRunning } from './lifecycle-helpers.js';

/** pve01 holds a bit of everything an evacuation meets; pve02 and pve03 have room. */
const scenario: Scenario = {
  nodes: [{ name: 'pve01' }, { name: 'pve02' }, { name: 'pve03' }],
  storages: [
    { id: 'local-lvm', type: 'lvmthin', content: ['images', 'rootdir'], size: '500G' },
    { id: 'local', type: 'dir', content: ['iso', 'vztmpl'], size: '100G', path: '/var/lib/vz' },
    { id: 'nfs', type: 'nfs', content: ['images', 'iso'], size: '4T' },
  ],
  content: [{ volid: 'local:iso/installer.iso', size: '600M', node: 'pve01' }],
  guests: [
    {
      vmid: 101,
      name: 'web',
      node: 'pve01',
      memory: 4096,
      disks: [{ storage: 'nfs', size: '32G' }],
      tags: ['anti-affinity-web'],
    },
    {
      vmid: 102,
      name: 'web2',
      node: 'pve01',
      memory: 4096,
      disks: [{ storage: 'nfs', size: '32G' }],
      tags: ['anti-affinity-web'],
    },
    { vmid: 103, name: 'db', node: 'pve01', memory: 8192, disks: [{ storage: 'local-lvm', size: '20G' }] },
    { vmid: 104, name: 'gpu', node: 'pve01', hostpci: ['0000:01:00.0'], disks: [{ storage: 'nfs', size: '32G' }] },
    {
      vmid: 105,
      name: 'installer',
      node: 'pve01',
      cdrom: 'local:iso/installer.iso',
      disks: [{ storage: 'nfs', size: '8G' }],
    },
    {
      vmid: 106,
      name: 'proxy',
      type: 'lxc',
      node: 'pve01',
      memory: 1024,
      disks: [{ storage: 'local-lvm', size: '8G' }],
    },
    { vmid: 107, name: 'archive', node: 'pve01', status: 'stopped', disks: [{ storage: 'nfs', size: '8G' }] },
    { vmid: 108, name: 'dns', node: 'pve01', ha: true, disks: [{ storage: 'nfs', size: '8G' }] },
    { vmid: 200, name: 'other', node: 'pve02', memory: 2048, disks: [{ storage: 'nfs', size: '8G' }] },
  ],
};

/** The scenario on the simulator, and a worker with the evacuation's activities. */
async function evacuationStack(speed: number): Promise<{ env: SimulatedEnvironment; worker: TestWorker }> {
  const env = await startSimulatedEnvironment({ scenario: withAutomationToken(scenario), speed });
  const worker = await startEnvironmentWorker(env.deps, { tuning: SIMULATED_POLLING });
  return { env, worker };
}

describe('evacuation on the simulator', () => {
  let env: SimulatedEnvironment;
  let sim: SimulatedCluster;
  let worker: TestWorker;
  const request = (body: Omit<EvacuationBody, 'environment'>) =>
    evacuationInput({ environment: env.environment, ...body });

  beforeAll(async () => {
    ({ env, worker } = await evacuationStack(20));
    sim = env.sim;
  });
  afterAll(async () => {
    await worker?.shutdown();
    await env?.stop();
  });

  it('shows the plan and moves nothing on a dry run', async () => {
    const handle = await startEvacuation(worker.client, worker.taskQueue, request({ node: 'pve01', dryRun: true }));
    const result = await handle.result();

    expect(result.outcome).toBe('dry-run');
    expect(result.plan.risk).toBe('high');
    expect(sim.counters.tasks('qmigrate') + sim.counters.tasks('vzmigrate')).toBe(0);
  });

  it('waits for approval, moves every movable guest once, reports incomplete with the guests that stay and why, and keeps HA maintenance off a node that is not empty, saying why', async () => {
    const handle = await startEvacuation(
      worker.client,
      worker.taskQueue,
      request({ node: 'pve01', containers: 'restart', haMaintenance: true }),
    );
    const planned = await approveWhenPlanned(handle);
    const plan = planned.plan!.details as EvacuationPlan;

    expect(planned.requester).toBe('operator');
    expect(plan.leftBehind.map((l) => [l.vmid, l.reason])).toEqual([
      [104, 'uses host-bound device hostpci0, which pins it to pve01'],
      [105, 'local ISO local:iso/installer.iso is attached (ide2); eject it or keep the ISO on shared storage'],
    ]);
    const modes = Object.fromEntries(plan.moves.map((m) => [m.vmid, m.mode]));
    expect(modes).toEqual({
      101: 'online',
      102: 'online',
      103: 'online',
      106: 'restart',
      107: 'offline',
      108: 'online',
    });
    const target = (vmid: number) => plan.moves.find((m) => m.vmid === vmid)!.target;
    expect(target(101)).not.toBe(target(102));

    const { result } = await handle.result();
    // Every move checks out, but two guests the request covers are still there: not evacuated.
    expect(result?.outcome).toBe('incomplete');
    expect(result?.stayed.map((g) => [g.vmid, g.reason])).toEqual([
      [104, 'uses host-bound device hostpci0, which pins it to pve01; to move it: remove hostpci0 from its config'],
      [
        105,
        expect.stringMatching(
          /^local ISO local:iso\/installer.iso is attached \(ide2\); .*; to move it: eject the ISO \(ide2: none\)$/,
        ),
      ],
    ]);
    expect(result?.verification).toEqual({ ok: true, unexpectedOnSource: [], misplaced: [], wrongState: [] });
    expect(result?.guests.map((g) => [g.vmid, g.state])).toEqual([
      [101, 'migrated'],
      [102, 'migrated'],
      [103, 'migrated'],
      [104, 'left-behind'],
      [105, 'left-behind'],
      [106, 'migrated'],
      [107, 'migrated'],
      [108, 'migrated'],
    ]);
    for (const move of plan.moves) {
      const guest = sim.state.guests.get(move.vmid)!;
      expect([move.vmid, guest.node, guest.status]).toEqual([move.vmid, move.target, move.priorStatus]);
      const type = move.type === 'qemu' ? 'qmigrate' : 'vzmigrate';
      expect([move.vmid, sim.counters.tasks(type, move.vmid)]).toEqual([move.vmid, 1]);
    }
    expect(sim.state.guests.get(104)!.node).toBe('pve01');

    // PVE answers for the HA-managed guest with an `hamigrate` request; HA runs the real migration.
    const dns = result?.guests.find((g) => g.vmid === 108);
    expect(dns).toMatchObject({
      haUpid: expect.stringContaining(':hamigrate:108:'),
      upid: expect.stringContaining(':qmigrate:108:'),
    });
    expect(sim.counters.tasks('hamigrate', 108)).toBe(1);

    const status = await handle.query(statusQuery);
    expect(status.phase).toBe('completed');
    expect(status.steps.filter((s) => s.id.startsWith('migrate-')).map((s) => s.state)).toEqual(
      Array(6).fill('succeeded'),
    );
    expect(status.steps.find((s) => s.id === 'verify')?.state).toBe('succeeded');
    // Two guests stay, so the node is not empty and must not go into HA maintenance.
    expect(result?.haMaintenance).toBe('skipped');
    expect(result?.haMaintenanceSkipped).toMatch(/^pve01 is not empty: 2 guests stay \(104 \(.+\), 105 \(.+\)\)/);
    expect(status.steps.find((s) => s.id === 'ha-maintenance')).toMatchObject({
      state: 'skipped',
      detail: result?.haMaintenanceSkipped,
    });
  });
});

describe('a cancelled evacuation', () => {
  let env: SimulatedEnvironment;
  let worker: TestWorker;

  beforeAll(async () => {
    ({ env, worker } = await evacuationStack(10));
  });
  afterAll(async () => {
    await worker?.shutdown();
    await env?.stop();
  });

  it('starts no further migration, follows the running one to its end, and ends cancelled saying which guests moved', async () => {
    const handle = await startEvacuation(
      worker.client,
      worker.taskQueue,
      evacuationInput({ environment: env.environment, node: 'pve01', maxParallel: 1 }),
    );
    const plan = (await approveWhenPlanned(handle)).plan!.details as EvacuationPlan;
    const { status, runningAtCancel, approvalState } = await cancelWhen(handle, stepRunning('migrate-'));

    expect(status.phase).toBe('cancelled');
    expect(approvalState).toBe('approved');
    expect(status.steps.filter((s) => s.state === 'running' || s.state === 'failed')).toEqual([]);
    const report = status.cancelled!;
    // The migration under way when the cancel came was followed to its end: the guest is on its target.
    expect(runningAtCancel).toHaveLength(1);
    expect(report.done).toEqual(runningAtCancel.concat(report.done.filter((id) => !runningAtCancel.includes(id))));
    expect(report.notStarted).toContain('verify');
    const where = (vmid: number) => env.sim.state.guests.get(vmid)!.node;
    for (const move of plan.moves) {
      expect([move.vmid, where(move.vmid)]).toEqual([
        move.vmid,
        report.done.includes(`migrate-${move.vmid}`) ? move.target : 'pve01',
      ]);
    }
    expect(report.notStarted.filter((id) => id.startsWith('migrate-')).length).toBeGreaterThan(0);
    expect(env.sim.cluster.tasks.all().filter((t) => t.status === 'running')).toEqual([]);
    // The child that ran the migrations ended too, with every guest's outcome.
    const child = worker.client.workflow.getHandle(`${handle.workflowId}/migrations`);
    expect((await child.describe()).status.name).toBe('COMPLETED');
  });
});
