import { describe, expect, it } from 'vitest';
import type { Cluster } from '../../sim/cluster.js';
import { MIGRATION_SETUP_SECONDS } from '../../sim/cost.js';
import { updateConfig } from '../../sim/ops/config.js';
import { migrateGuest, qemuMigratePreconditions, type MigrateRequest } from '../../sim/ops/migration.js';
import type { TaskRecord } from '../../sim/tasks.js';
import { API_CALLER, GiB, manualCluster, smallScenario } from './sim-fixtures.js';

const LINK = 1.25e9;

function migrate(cluster: Cluster, vmid: number, req: MigrateRequest): TaskRecord {
  return migrateGuest(cluster, API_CALLER, cluster.state.guests.get(vmid)!, req);
}

/** Advances the clock in small steps until the task stops; returns the simulated seconds it took. */
async function secondsUntilStopped(
  cluster: Cluster,
  task: TaskRecord,
  stepMs = 50,
  limitMs = 600_000,
): Promise<number> {
  const start = cluster.clock.now();
  while (task.status === 'running') {
    if (cluster.clock.now() - start > limitMs) throw new Error(`${task.upid} still running after ${limitMs} ms`);
    await cluster.clock.advance(stepMs);
  }
  return (cluster.clock.now() - start) / 1000;
}

describe('migration timing', () => {
  it('takes setup time plus memory over the link for a live migration', async () => {
    const cluster = manualCluster();
    const task = migrate(cluster, 101, { target: 'pve2', online: true });
    const seconds = await secondsUntilStopped(cluster, task);
    expect(task.exitstatus).toBe('OK');
    expect(seconds).toBeCloseTo(MIGRATION_SETUP_SECONDS.online + (8 * GiB) / LINK, 0);
    expect(cluster.state.guests.get(101)).toMatchObject({ node: 'pve2', status: 'running' });
  });

  it('shares the source link: two concurrent migrations each take about twice as long', async () => {
    const alone = manualCluster();
    const single = await secondsUntilStopped(alone, migrate(alone, 101, { target: 'pve2', online: true }));

    const cluster = manualCluster();
    const a = migrate(cluster, 101, { target: 'pve2', online: true });
    const b = migrate(cluster, 102, { target: 'pve3', online: true });
    const both = await secondsUntilStopped(cluster, a);
    await secondsUntilStopped(cluster, b);
    expect(b.exitstatus).toBe('OK');
    const transferAlone = single - MIGRATION_SETUP_SECONDS.online;
    const transferShared = both - MIGRATION_SETUP_SECONDS.online;
    expect(transferShared / transferAlone).toBeGreaterThan(1.9);
    expect(transferShared / transferAlone).toBeLessThan(2.1);
  });

  it('honours bwlimit (KiB/s)', async () => {
    const cluster = manualCluster();
    const task = migrate(cluster, 101, { target: 'pve2', online: true, bwlimit: 512 * 1024 });
    const seconds = await secondsUntilStopped(cluster, task, 200);
    expect(seconds).toBeCloseTo(MIGRATION_SETUP_SECONDS.online + 16, 0);
    expect(task.lines.some((l) => l.endsWith('migration speed limit: 512 MiB/s'))).toBe(true);
  });

  it('copies local disks of a stopped VM offline and moves them to the target', async () => {
    const cluster = manualCluster();
    const task = migrate(cluster, 104, { target: 'pve3' });
    const seconds = await secondsUntilStopped(cluster, task);
    expect(task.exitstatus).toBe('OK');
    expect(seconds).toBeCloseTo(MIGRATION_SETUP_SECONDS.offline + (10 * GiB) / LINK, 0);
    expect(cluster.state.volume('local-lvm:vm-104-disk-0', 'pve3')).toBeDefined();
    expect(cluster.state.volume('local-lvm:vm-104-disk-0', 'pve1')).toBeUndefined();
    expect(task.lines.some((l) => l.endsWith("found local disk 'local-lvm:vm-104-disk-0' (attached)"))).toBe(true);
  });

  it('reserves the memory on the target while a live migration runs', async () => {
    const cluster = manualCluster();
    const task = migrate(cluster, 101, { target: 'pve2', online: true });
    await cluster.clock.advance(0);
    expect(cluster.state.node('pve2').reservedMemory).toBe(8 * GiB);
    await secondsUntilStopped(cluster, task);
    expect(cluster.state.node('pve2').reservedMemory).toBe(0);
  });
});

describe('migration refusals and failures', () => {
  it('refuses a running VM without online, at once', () => {
    const cluster = manualCluster();
    expect(() => migrate(cluster, 101, { target: 'pve2' })).toThrow("can't migrate running VM without --online");
    expect(() => migrate(cluster, 101, { target: 'pve1', online: true })).toThrow('Parameter verification failed.');
  });

  it('accepts a live migration with attached local disks but fails the task as PVE does', async () => {
    const cluster = manualCluster();
    const task = migrate(cluster, 103, { target: 'pve2', online: true });
    await secondsUntilStopped(cluster, task);
    expect(task.exitstatus).toBe('migration aborted');
    expect(task.lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /can't migrate local disk 'local-lvm:vm-103-disk-0': can't live migrate attached local disks without with-local-disks option$/,
        ),
        expect.stringMatching(/ERROR: migration aborted \(duration 00:00:0\d\): Problem found while scanning volumes/),
      ]),
    );
    expect(cluster.state.guests.get(103)).toMatchObject({ node: 'pve1', status: 'running' });
    expect(cluster.state.guests.get(103)!.lock).toBeUndefined();
  });

  it('mirrors local disks and memory with with-local-disks', async () => {
    const cluster = manualCluster();
    const task = migrate(cluster, 103, { target: 'pve2', online: true, withLocalDisks: true });
    const seconds = await secondsUntilStopped(cluster, task);
    expect(task.exitstatus).toBe('OK');
    expect(seconds).toBeCloseTo(MIGRATION_SETUP_SECONDS.online + (20 * GiB + 4 * GiB) / LINK, 0);
    expect(cluster.state.volume('local-lvm:vm-103-disk-0', 'pve2')).toBeDefined();
  });

  it('refuses PCI passthrough and local ISOs in the task', async () => {
    const cluster = manualCluster();
    const gpu = migrate(cluster, 106, { target: 'pve1', online: true });
    const iso = migrate(cluster, 107, { target: 'pve2' });
    await secondsUntilStopped(cluster, gpu);
    await secondsUntilStopped(cluster, iso);
    expect(gpu.exitstatus).toBe('migration aborted');
    expect(gpu.lines.some((l) => l.includes("can't migrate VM which uses local devices: hostpci0"))).toBe(true);
    expect(iso.exitstatus).toBe('migration aborted');
    expect(
      iso.lines.some((l) => l.endsWith("can't migrate local disk 'local:iso/debian.iso': local cdrom image")),
    ).toBe(true);
  });

  it('reports the local resources and disks in the preconditions', () => {
    const cluster = manualCluster();
    expect(qemuMigratePreconditions(cluster, cluster.state.guests.get(106)!)).toMatchObject({
      running: 1,
      local_resources: ['hostpci0'],
    });
    const pre = qemuMigratePreconditions(cluster, cluster.state.guests.get(107)!);
    expect(pre).toMatchObject({
      running: 0,
      allowed_nodes: ['pve2', 'pve3'],
      not_allowed_nodes: { pve2: {}, pve3: {} },
      local_disks: [{ volid: 'local:iso/debian.iso', cdrom: 1, is_unused: 0 }],
    });
  });

  it('keeps the VM running on the source when the target cannot hold its memory', async () => {
    const scenario = smallScenario();
    scenario.nodes![2] = { name: 'pve3', memory: '8G' };
    const cluster = manualCluster(scenario);
    const task = migrate(cluster, 101, { target: 'pve3', online: true });
    await secondsUntilStopped(cluster, task);
    expect(task.exitstatus).toBe('migration problems');
    expect(task.lines.some((l) => l.includes('Cannot allocate memory'))).toBe(true);
    expect(cluster.state.guests.get(101)).toMatchObject({ node: 'pve1', status: 'running' });
  });

  it('aborts when the target node cannot be reached', async () => {
    const cluster = manualCluster();
    await cluster.setNodeOnline('pve2', false);
    const task = migrate(cluster, 101, { target: 'pve2', online: true });
    await secondsUntilStopped(cluster, task);
    expect(task.exitstatus).toBe('migration aborted');
    expect(task.lines.some((l) => l.includes("Can't connect to destination address using public key"))).toBe(true);
  });

  it('locks the VM while it migrates: refused migrations, config writes time out on the lock file', async () => {
    const cluster = manualCluster();
    const guest = cluster.state.guests.get(101)!;
    // 8 GiB at 64 MiB/s: about two minutes of migration.
    const task = migrate(cluster, 101, { target: 'pve2', online: true, bwlimit: 64 * 1024 });
    await cluster.clock.advance(1_500);
    expect(guest.lock).toBe('migrate');
    expect(() => migrate(cluster, 101, { target: 'pve3', online: true })).toThrow('VM is locked (migrate)');
    const write = updateConfig(cluster, guest, { description: 'during migration' });
    const outcome = write.then(
      () => 'written',
      (err: Error) => err.message,
    );
    await cluster.clock.advance(10_000);
    expect(await outcome).toBe("can't lock file '/var/lock/qemu-server/lock-101.conf' - got timeout");
    await secondsUntilStopped(cluster, task, 1_000);
    expect(guest.lock).toBeUndefined();
  });
});

describe('HA-managed migration', () => {
  it('answers with an hamigrate task that only queues; the real qmigrate follows later', async () => {
    const cluster = manualCluster();
    const request = migrate(cluster, 105, { target: 'pve3', online: true });
    expect(request.type).toBe('hamigrate');
    await cluster.clock.advance(1_000);
    expect(request.exitstatus).toBe('OK');
    expect(request.lines[0]).toBe('Requesting HA migration for VM 105 to node pve3');
    expect(cluster.state.guests.get(105)!.node).toBe('pve2');
    expect(cluster.counters.tasks('qmigrate', 105)).toBe(0);

    await cluster.clock.advance(10_000);
    const real = cluster.tasks.onNode('pve2').find((t) => t.type === 'qmigrate' && t.id === '105')!;
    expect(real.user).toBe('root@pam');
    await secondsUntilStopped(cluster, real);
    expect(real.exitstatus).toBe('OK');
    expect(cluster.state.guests.get(105)!.node).toBe('pve3');
    expect(cluster.counters.tasks('qmigrate', 105)).toBe(1);
  });
});
