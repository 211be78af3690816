/**
 * VM and container lifecycle on a real Temporal dev server and the simulated homelab: create
 * (VMIDs, defaults, naming policy), clone, resize, container create and power, HA migration
 * followed to where the VM really is — with the refusals and failures an operator must see.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { startTestWorker, type TestWorker } from '../support/temporal.js';
import { approve, failureOf, startOperation, waitForPhase } from './lifecycle-helpers.js';

let env: SimulatedEnvironment;
let worker: TestWorker;

beforeAll(async () => {
  env = await startSimulatedEnvironment({ speed: 400 });
  worker = await startTestWorker({ activities: createActivities(env.deps) });
});
afterAll(async () => {
  await worker?.shutdown();
  await env?.stop();
});

const guest = (vmid: number) => env.sim.state.guests.get(vmid);
const vmids = () => new Set(env.sim.state.guests.keys());

describe('creating a VM', () => {
  it('takes a free VMID of the VM range, the cluster defaults, the naming policy and the tags', async () => {
    const before = vmids();
    const handle = await startOperation(worker, 'vm-create', { service: 'web', tags: ['web', 'dev'], start: true });
    const result = await handle.result();
    const vmid: number = result.result.vmid;
    expect(before.has(vmid)).toBe(false);
    expect(vmid).toBeGreaterThanOrEqual(1000);
    expect(result.result).toMatchObject({ name: `auto-web-${vmid}`, status: 'running', tags: ['web', 'dev'] });
    const created = guest(vmid)!;
    expect(created.config).toMatchObject({
      name: `auto-web-${vmid}`,
      cores: '2',
      memory: '2048',
      bios: 'ovmf',
      tags: 'web;dev',
      agent: '1',
    });
    expect(created.config['scsi0']).toMatch(/^local-lvm:vm-\d+-disk-\d+,iothread=1,size=32G$/);
    expect(created.config['description']).toContain(`operation ${handle.workflowId}`);
    expect(created.status).toBe('running');
  });

  it('never gives two creates running at once the same VMID', async () => {
    const handles = await Promise.all(
      Array.from({ length: 4 }, () => startOperation(worker, 'vm-create', { service: 'batch' })),
    );
    const created = await Promise.all(handles.map(async (h) => (await h.result()).result.vmid as number));
    expect(new Set(created).size).toBe(4);
    for (const vmid of created) expect(guest(vmid)?.name).toBe(`auto-batch-${vmid}`);
  });

  it('takes the next free VMID when the planned one is taken before the create runs', async () => {
    const handle = await startOperation(worker, 'vm-create', { service: 'race' }, { autoApprove: ['low'] });
    const planned = (await waitForPhase(handle, 'awaiting-approval')).plan!.vmids[0]!;
    // Someone else creates a VM with exactly that VMID while the plan waits for approval.
    const pve = await env.deps.pve('home');
    await pve.qemu.create({ node: 'pve03', vmid: planned, name: 'interloper', memory: '512' });
    await approve(handle);
    const { result } = await handle.result();
    expect(result.vmid).not.toBe(planned);
    expect(result.name).toBe(`auto-race-${result.vmid}`);
    expect(guest(planned)?.name).toBe('interloper');
  });

  it('refuses a VMID that exists, creating nothing', async () => {
    const before = vmids().size;
    const handle = await startOperation(worker, 'vm-create', { service: 'web', vmid: 1004 });
    expect(await failureOf(handle)).toMatchObject({
      type: 'PlanRefused',
      message: "vmid: 1004 already exists ('web01' on pve01); a VMID is never reused",
    });
    expect(vmids().size).toBe(before);
  });

  it('creates nothing when nobody approves the plan', async () => {
    const before = vmids().size;
    const handle = await startOperation(
      worker,
      'vm-create',
      { service: 'web' },
      { autoApprove: ['low'], approvalTimeoutMs: 500 },
    );
    expect((await handle.result()).outcome).toBe('rejected');
    expect(vmids().size).toBe(before);
  });

  it('leaves no VM behind when PVE fails the create task', async () => {
    const before = vmids().size;
    env.sim.faults.failTask({ type: 'qmcreate', times: 1 });
    const handle = await startOperation(worker, 'vm-create', { service: 'broken' });
    expect(await failureOf(handle)).toMatchObject({ message: expect.stringMatching(/qmcreate.*unable to create VM/) });
    expect(vmids().size).toBe(before);
  });
});

describe('containers', () => {
  it('are created from a template archive and started', async () => {
    const handle = await startOperation(worker, 'vm-create', {
      type: 'lxc',
      service: 'cache',
      ostemplate: 'local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst',
      memoryMb: 1024,
      start: true,
    });
    const { result } = await handle.result();
    const ct = guest(result.vmid)!;
    expect(ct.type).toBe('lxc');
    expect(ct.config).toMatchObject({ hostname: `auto-cache-${result.vmid}`, memory: '1024' });
    expect(ct.status).toBe('running');
  });

  it('shut down and start through the same single-guest action as VMs', async () => {
    const shutdown = await startOperation(worker, 'vm-action', { vmid: 2002, name: 'unifi', action: 'shutdown' });
    expect((await shutdown.result()).plan.summary).toMatch(
      /^shutdown CT 2002 'unifi' on pve02: running, up (\d+ s|\d+ min|\d+ h \d\d min), tags: infra$/,
    );
    expect(guest(2002)!.status).toBe('stopped');
    await (await startOperation(worker, 'vm-action', { vmid: 2002, name: 'unifi', action: 'start' })).result();
    expect(guest(2002)!.status).toBe('running');
  });
});

describe('cloning', () => {
  it('makes a linked clone of a template with the naming policy and its own tags', async () => {
    const handle = await startOperation(worker, 'vm-clone', {
      sourceVmid: 100,
      sourceName: 'tpl-debian-13',
      full: false,
      service: 'app',
      tags: ['app'],
    });
    const { result } = await handle.result();
    const clone = guest(result.vmid)!;
    expect(clone.name).toBe(`auto-app-${result.vmid}`);
    expect(clone.config['tags']).toBe('app');
    expect(clone.config['scsi0']).toMatch(/base-100-disk-0[^,]*\/vm-\d+-disk-0/);
  });

  it('refuses a linked clone of a VM that is not a template, and a source whose name does not match', async () => {
    expect(
      await failureOf(
        await startOperation(worker, 'vm-clone', {
          sourceVmid: 1004,
          sourceName: 'web01',
          full: false,
          service: 'app',
        }),
      ),
    ).toMatchObject({
      type: 'PlanRefused',
      message: "full: a linked clone needs a template, and VM 1004 'web01' is not one",
    });
    expect(
      await failureOf(
        await startOperation(worker, 'vm-clone', { sourceVmid: 100, sourceName: 'tpl-talos', service: 'app' }),
      ),
    ).toMatchObject({
      type: 'VmIdentityMismatch',
      message: "VM 100 is named 'tpl-debian-13', not 'tpl-talos': refusing to act on it",
    });
  });
});

describe('resizing', () => {
  it('snapshots first, then sets cores and memory — pending until the running VM restarts, and says so — and grows the disk', async () => {
    const handle = await startOperation(worker, 'vm-resize', {
      vmid: 1018,
      name: 'grafana',
      cores: 4,
      memoryMb: 4096,
      disk: { key: 'scsi0', sizeGb: 24 },
    });
    const result = await handle.result();
    expect(result.plan.steps.map((s: { id: string }) => s.id)).toEqual(['snapshot-before', 'configure', 'resize-disk']);
    const vm = guest(1018)!;
    expect(vm.status).toBe('running');
    expect(vm.configWithPending).toMatchObject({ cores: '4', memory: '4096' });
    expect(vm.config['cores']).not.toBe('4');
    expect(result.result.configure.detail).toMatch(
      /cores, memory need a restart of VM 1018 to take effect \(PVE keeps them pending\)$/,
    );
    expect(vm.config['scsi0']).toMatch(/size=24G/);
    expect([...vm.snapshots.keys()].some((s) => s.startsWith('pm_pre_resize_'))).toBe(true);
  });

  it('refuses a vmid/name pair that does not match, touching nothing', async () => {
    const handle = await startOperation(worker, 'vm-resize', { vmid: 1018, name: 'grafana-old', cores: 8 });
    expect(await failureOf(handle)).toMatchObject({ type: 'VmIdentityMismatch' });
    expect(guest(1018)!.configWithPending['cores']).toBe('4');
  });

  it('stops at the step that failed, keeping the safety snapshot and saying what happened', async () => {
    env.sim.faults.failTask({
      type: 'resize',
      vmid: 1026,
      times: 1,
      message: 'lvextend failed: insufficient free space',
    });
    const handle = await startOperation(worker, 'vm-resize', {
      vmid: 1026,
      name: 'wiki',
      memoryMb: 3072,
      disk: { key: 'scsi0', sizeGb: 40 },
    });
    expect((await failureOf(handle)).message).toMatch(/lvextend failed: insufficient free space/);
    const status = await waitForPhase(handle, 'failed');
    expect(status.steps.map((s) => [s.id, s.state])).toEqual([
      ['snapshot-before', 'succeeded'],
      ['configure', 'succeeded'],
      ['resize-disk', 'failed'],
    ]);
    expect(guest(1026)!.configWithPending['memory']).toBe('3072');
    expect(guest(1026)!.config['scsi0']).toMatch(/size=20G/);
  });
});

describe('migrating an HA-managed VM', () => {
  it('follows the HA manager until the VM really runs on the target', async () => {
    const handle = await startOperation(worker, 'vm-action', {
      vmid: 1008,
      name: 'ha-vault',
      action: 'migrate',
      target: 'pve02',
    });
    const planned = await approve(handle);
    expect(planned.plan!.steps[0]!.description).toMatch(/through the HA manager/);
    await handle.result();
    expect(env.sim.counters.tasks('hamigrate', 1008)).toBe(1);
    expect(env.sim.counters.tasks('qmigrate', 1008)).toBe(1);
    expect(guest(1008)).toMatchObject({ node: 'pve02', status: 'running' });
  });
});
