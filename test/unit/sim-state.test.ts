/**
 * State PVE keeps that a naive simulator would not: changes a running VM takes only at its
 * next start, each node's own clock, and the read-only endpoints common clients call.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type SimulatedCluster } from '../../sim/index.js';
import { checkConfigWrites } from '../../sim/ops/config-permissions.js';
import { GiB, smallScenario } from './sim-fixtures.js';
import { call, tokenAuth, waitForTask } from './sim-http.js';

let sim: SimulatedCluster;
let admin: string;
let own: string;

const FIVE_MINUTES = 300;

/** pve2's clock runs five minutes ahead, pve3's five minutes behind. */
function skewedScenario() {
  const scenario = smallScenario({
    tokens: [
      { id: 'automation@pve!pm', secret: 'sim-secret-0123', acl: [{ path: '/', roles: ['Administrator'] }] },
      { id: 'tenant@pve!one', secret: 'sim-secret-8910', acl: [{ path: '/vms/101', roles: ['PVEVMAdmin'] }] },
      {
        id: 'renamer@pve!opts',
        secret: 'sim-secret-1112',
        acl: [{ path: '/vms/101', privs: ['VM.Audit', 'VM.Config.Options'] }],
      },
    ],
  });
  const skew: Record<string, number> = { pve2: FIVE_MINUTES, pve3: -FIVE_MINUTES };
  return { ...scenario, nodes: scenario.nodes.map((n) => ({ ...n, clock_skew_seconds: skew[n.name] ?? 0 })) };
}

beforeAll(async () => {
  sim = await startSimulator({ speed: 200, authFailureDelayMs: 20, scenario: skewedScenario() });
  admin = tokenAuth(sim, 'automation@pve!pm');
  own = tokenAuth(sim, 'tenant@pve!one');
});
afterAll(() => sim.stop());

const get = async (path: string, auth = admin) => {
  const reply = await call(sim, 'GET', path, { auth });
  expect(reply.status, JSON.stringify(reply.body)).toBe(200);
  return reply.body?.data as never;
};
const put = (path: string, form: Record<string, string>) => call(sim, 'PUT', path, { auth: admin, form });
const post = (path: string, form: Record<string, string> = {}) => call(sim, 'POST', path, { auth: admin, form });

describe('a change a running VM cannot hot-plug', () => {
  const vm = '/nodes/pve1/qemu/102';

  it('is pending: GET pending shows old and new value, status/current and cluster/resources keep the old', async () => {
    expect(
      (await put(`${vm}/config`, { cores: '4', memory: '16384', cpu: 'x86-64-v3', description: 'web' })).status,
    ).toBe(200);

    const pending = (await get(`${vm}/pending`)) as { key: string; value?: unknown; pending?: unknown }[];
    const byKey = new Map(pending.map((p) => [p.key, p]));
    expect(byKey.get('memory')).toEqual({ key: 'memory', value: '8192', pending: '16384' });
    expect(byKey.get('cores')).toMatchObject({ key: 'cores', pending: '4' });
    expect(byKey.get('cpu')).toMatchObject({ key: 'cpu', pending: 'x86-64-v3' });
    // Options PVE applies live are not pending.
    expect(byKey.get('description')).toEqual({ key: 'description', value: 'web' });

    const status = (await get(`${vm}/status/current`)) as { maxmem: number; cpus: number };
    expect(status.maxmem).toBe(8 * GiB);
    const resource = ((await get('/cluster/resources?type=vm')) as { vmid: number; maxmem: number }[]).find(
      (r) => r.vmid === 102,
    )!;
    expect(resource.maxmem).toBe(8 * GiB);
  });

  it("shows in GET config by default (the next start's values) and not with current=1", async () => {
    expect(await get(`${vm}/config`)).toMatchObject({ memory: '16384', cores: 4 });
    expect(await get(`${vm}/config?current=1`)).toMatchObject({ memory: '8192' });
  });

  it('is taken by a reboot', async () => {
    const reboot = await post(`${vm}/status/reboot`);
    await waitForTask(sim, admin, (reboot.body as { data: string }).data);
    expect(((await get(`${vm}/status/current`)) as { maxmem: number }).maxmem).toBe(16 * GiB);
    const pending = (await get(`${vm}/pending`)) as { key: string; pending?: unknown }[];
    expect(pending.filter((p) => p.pending !== undefined || 'delete' in p)).toEqual([]);
  });

  it('is taken at once on a stopped VM, and a pending delete is marked delete: 1', async () => {
    expect((await put('/nodes/pve1/qemu/104/config', { cores: '3' })).status).toBe(200);
    expect(((await get('/nodes/pve1/qemu/104/status/current')) as { cpus: number }).cpus).toBe(3);

    expect((await put(`${vm}/config`, { delete: 'cpu' })).status).toBe(200);
    const pending = (await get(`${vm}/pending`)) as { key: string; delete?: number }[];
    expect(pending.find((p) => p.key === 'cpu')).toEqual({ key: 'cpu', value: 'x86-64-v3', delete: 1 });
    expect((await put(`${vm}/config`, { revert: 'cpu' })).status).toBe(200);
    expect(((await get(`${vm}/pending`)) as { key: string; delete?: number }[]).find((p) => p.key === 'cpu')).toEqual({
      key: 'cpu',
      value: 'x86-64-v3',
    });
  });

  it('of memory is live once the VM was started with memory hotplug', async () => {
    expect((await put('/nodes/pve1/qemu/103/config', { hotplug: 'network,disk,memory' })).status).toBe(200);
    expect(
      ((await get('/nodes/pve1/qemu/103/pending')) as { key: string; pending?: string }[]).find(
        (p) => p.key === 'hotplug',
      ),
    ).toEqual({
      key: 'hotplug',
      pending: 'network,disk,memory',
    });
    const reboot = await post('/nodes/pve1/qemu/103/status/reboot');
    await waitForTask(sim, admin, (reboot.body as { data: string }).data);
    expect((await put('/nodes/pve1/qemu/103/config', { memory: '6144' })).status).toBe(200);
    expect(((await get('/nodes/pve1/qemu/103/status/current')) as { maxmem: number }).maxmem).toBe(6 * GiB);
  });
});

describe('node clocks', () => {
  it("stamp tasks and answer /time with each node's own clock", async () => {
    // Time stands still here, so the clocks can be compared exactly; the skew comes as an option (sim/main.ts --clock-skew).
    const frozen = await startSimulator({
      manualClock: true,
      authFailureDelayMs: 20,
      scenario: smallScenario(),
      clockSkewSeconds: { pve2: FIVE_MINUTES, pve3: -FIVE_MINUTES },
    });
    try {
      const auth = tokenAuth(frozen, 'automation@pve!pm');
      const timeOf = async (node: string) =>
        ((await call(frozen, 'GET', `/nodes/${node}/time`, { auth })).body?.data as { time: number }).time;
      const [pve1, pve2, pve3] = [await timeOf('pve1'), await timeOf('pve2'), await timeOf('pve3')];
      expect([pve2 - pve1, pve3 - pve1]).toEqual([FIVE_MINUTES, -FIVE_MINUTES]);

      const stopped = await call(frozen, 'POST', '/nodes/pve3/qemu/108/status/stop', { auth });
      const upid = (stopped.body as { data: string }).data;
      expect(parseInt(upid.split(':')[4]!, 16)).toBe(pve3);
    } finally {
      await frozen.stop();
    }
  });
});

describe('endpoints common clients call', () => {
  it('list tasks cluster-wide, naming the token apart from the user as PVE 9 does', async () => {
    await waitForTask(sim, admin, ((await post('/nodes/pve3/qemu/108/status/stop')).body as { data: string }).data);
    const tasks = (await get('/cluster/tasks')) as { upid: string; user: string; tokenid?: string; node: string }[];
    expect(tasks.length).toBeGreaterThan(0);
    expect(tasks[0]).toMatchObject({ user: 'automation@pve', tokenid: 'pm' });
    expect(new Set(tasks.map((t) => t.node)).size).toBeGreaterThan(1);
    const onNode = (await get('/nodes/pve1/tasks')) as { user: string; tokenid?: string }[];
    expect(onNode[0]).toMatchObject({ user: 'automation@pve', tokenid: 'pm' });
    // Without Sys.Audit on / a caller sees only its own tasks.
    expect(await get('/cluster/tasks', own)).toEqual([]);
  });

  it("answer /storage, a storage's status, /pools and /cluster/options", async () => {
    const storages = (await get('/storage')) as { storage: string; type: string; shared?: number }[];
    expect(storages.map((s) => s.storage).sort()).toEqual(['local', 'local-lvm', 'shared']);
    expect(storages.find((s) => s.storage === 'shared')).toMatchObject({ type: 'nfs', shared: 1 });
    expect(await get('/storage', own)).toEqual([]);

    const status = (await get('/nodes/pve1/storage/local-lvm/status')) as Record<string, unknown>;
    expect(status).toMatchObject({
      type: 'lvmthin',
      content: 'images,rootdir',
      active: 1,
      enabled: 1,
      total: 1024 * GiB,
    });
    expect(status).not.toHaveProperty('storage');
    expect((await call(sim, 'GET', '/nodes/pve1/storage/nope/status', { auth: admin })).body?.message).toBe(
      "storage 'nope' does not exist\n",
    );

    expect(await get('/pools')).toEqual([]);
    expect(await get('/cluster/options')).toEqual(expect.any(Object));
    expect((await call(sim, 'GET', '/cluster/options', { auth: own })).status).toBe(403);
  });

  it("answer a node's network with the bridge guests use", async () => {
    const bridges = (await get('/nodes/pve1/network?type=any_bridge')) as { iface: string; type: string }[];
    expect(bridges).toEqual([expect.objectContaining({ iface: 'vmbr0', type: 'bridge', bridge_ports: 'eno1' })]);
    expect(((await get('/nodes/pve1/network')) as { iface: string }[]).map((i) => i.iface)).toEqual(['eno1', 'vmbr0']);
  });

  it("answer a snapshot's config and a running container's interfaces", async () => {
    const snap = await post('/nodes/pve1/qemu/101/snapshot', { snapname: 'before' });
    await waitForTask(sim, admin, (snap.body as { data: string }).data);
    expect(await get('/nodes/pve1/qemu/101/snapshot/before/config')).toMatchObject({
      name: 'web1',
      memory: '8192',
      snaptime: expect.any(Number),
    });
    expect((await call(sim, 'GET', '/nodes/pve1/qemu/101/snapshot/nope/config', { auth: admin })).status).toBe(500);

    const interfaces = (await get('/nodes/pve3/lxc/200/interfaces')) as {
      name: string;
      hwaddr: string;
      inet?: string;
    }[];
    expect(interfaces.map((i) => i.name)).toEqual(['lo', 'eth0']);
    expect(interfaces[1]!.inet).toMatch(/^\d+\.\d+\.\d+\.\d+\/24$/);
  });

  it('refuse deleting a protected running VM for its protection first', async () => {
    expect((await put('/nodes/pve1/qemu/101/config', { protection: '1' })).status).toBe(200);
    const reply = await call(sim, 'DELETE', '/nodes/pve1/qemu/101', { auth: admin });
    expect(reply.status).toBe(500);
    expect(reply.body?.message).toBe("can't remove VM 101 - protection mode enabled\n");
  });
});

describe('permission checks inside the config handlers', () => {
  const update = (auth: string, form: Record<string, string>) =>
    call(sim, 'PUT', '/nodes/pve1/qemu/101/config', { auth, form });

  it('check each property against its own privilege', async () => {
    const renamer = tokenAuth(sim, 'renamer@pve!opts');
    expect((await update(renamer, { description: 'renamed' })).status).toBe(200);
    const cores = await update(renamer, { cores: '2' });
    expect([cores.status, cores.body?.message]).toEqual([403, 'Permission check failed (/vms/101, VM.Config.CPU)\n']);
    const deleting = await update(renamer, { delete: 'memory' });
    expect([deleting.status, deleting.body?.message]).toEqual([
      403,
      'Permission check failed (/vms/101, VM.Config.Memory)\n',
    ]);
  });

  it("need Datastore.AllocateSpace on the storage a disk is allocated on, and SDN.Use on a NIC's bridge", async () => {
    const disk = await update(own, { scsi1: 'local-lvm:4' });
    expect([disk.status, disk.body?.message]).toEqual([
      403,
      'Permission check failed (/storage/local-lvm, Datastore.AllocateSpace)\n',
    ]);
    const nic = await update(own, { net1: 'virtio,bridge=vmbr0' });
    expect([nic.status, nic.body?.message]).toEqual([
      403,
      'Permission check failed (/sdn/zones/localnetwork/vmbr0, SDN.Use)\n',
    ]);
    // Options need only the VM's own privileges.
    expect((await update(own, { onboot: '1' })).status).toBe(200);
  });

  it('leave raw QEMU args and host devices to root@pam, whatever a token holds', async () => {
    for (const [form, message] of [
      [{ hostpci0: '0000:01:00.0' }, "only root can set 'hostpci0' config for non-mapped devices"],
      [{ serial0: '/dev/ttyS0' }, "only root can set 'serial0' config for real devices"],
    ] as const) {
      const reply = await update(admin, form);
      expect([reply.status, reply.body?.message]).toEqual([500, `${message}\n`]);
    }
    expect((await update(admin, { serial0: 'socket' })).status).toBe(200);
    // `args` is refused the same way (checked below the API's parameter schema).
    const everything = () => true;
    expect(() => checkConfigWrites(everything, 'qemu', 101, [['args', '-no-reboot']], [])).toThrow(
      "only root can set 'args' config",
    );
  });
});
