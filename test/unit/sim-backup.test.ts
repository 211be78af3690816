/** The simulator's vzdump, restore and extractconfig, with PVE's refusals and privileges. */
import { describe, expect, it } from 'vitest';
import type { Cluster } from '../../sim/cluster.js';
import { PveError } from '../../sim/errors.js';
import { extractConfig, restoreGuest, vzdump, type RestoreRequest, type VzdumpRequest } from '../../sim/ops/backup.js';
import { destroyGuest } from '../../sim/ops/config.js';
import { createSnapshot } from '../../sim/ops/snapshots.js';
import { storageContent } from '../../sim/ops/storage.js';
import type { Can } from '../../sim/ops/views.js';
import type { TaskRecord } from '../../sim/tasks.js';
import { API_CALLER, manualCluster, smallScenario } from './sim-fixtures.js';

const base = smallScenario();
const scenario = smallScenario({
  storages: [
    ...base.storages!,
    { id: 'nfs', type: 'nfs', path: '/mnt/pve/nfs', content: ['backup'], size: '10T', link_gbps: 1 },
  ],
});
const all: Can = () => true;
const job = (vmids: number[], extra: Partial<VzdumpRequest> = {}): VzdumpRequest => ({
  vmids,
  storage: 'nfs',
  mode: 'snapshot',
  compress: 'zstd',
  lockwait: 180,
  ...extra,
});

async function finish(cluster: Cluster, ...tasks: TaskRecord[]): Promise<void> {
  for (let i = 0; i < 20_000 && tasks.some((t) => t.status === 'running'); i++) await cluster.clock.advance(100);
}

function refusal(fn: () => unknown): { status: number; message: string } {
  try {
    fn();
  } catch (err) {
    if (err instanceof PveError) return { status: err.status, message: err.message };
    throw err;
  }
  throw new Error('expected a PveError');
}

const backups = (cluster: Cluster, vmid?: number) =>
  storageContent(cluster, 'pve1', 'nfs', { content: 'backup', ...(vmid !== undefined ? { vmid } : {}) });

describe('vzdump', () => {
  it('writes an archive listed as backup content, with notes, protection and the guest type', async () => {
    const cluster = manualCluster(scenario);
    const task = vzdump(
      cluster,
      API_CALLER,
      'pve1',
      job([101], { notesTemplate: '{{guestname}} on {{node}}', protected: true }),
      all,
    );
    expect(task).toMatchObject({ type: 'vzdump', id: '101' });
    await finish(cluster, task);
    expect(task.exitstatus).toBe('OK');
    const [volume] = backups(cluster, 101);
    expect(volume).toMatchObject({
      volid: expect.stringMatching(/^nfs:backup\/vzdump-qemu-101-2025_01_01-12_00_\d\d\.vma\.zst$/),
      content: 'backup',
      format: 'vma.zst',
      subtype: 'qemu',
      notes: 'web1 on pve1',
      protected: 1,
      vmid: 101,
    });
    expect(volume!['size']).toBeGreaterThan(0);
    expect(task.lines).toContain('INFO: Backup job finished successfully');
  });

  it('locks the guest `backup` while it runs, so other changes are refused', async () => {
    const cluster = manualCluster(scenario);
    const task = vzdump(cluster, API_CALLER, 'pve1', job([101]), all);
    await cluster.clock.advance(1000);
    expect(cluster.state.guests.get(101)!.lock).toBe('backup');
    const snapshot = createSnapshot(cluster, API_CALLER, cluster.state.guests.get(101)!, 'during');
    await finish(cluster, task, snapshot);
    expect(snapshot.exitstatus).toBe('VM is locked (backup)');
    expect(cluster.state.guests.get(101)!.lock).toBeUndefined();
  });

  it('logs a locked guest as failed and ends the job with errors', async () => {
    const cluster = manualCluster(scenario);
    cluster.state.guests.get(102)!.update((c) => (c['lock'] = 'snapshot'));
    const task = vzdump(cluster, API_CALLER, 'pve1', job([101, 102]), all);
    await finish(cluster, task);
    expect(task.exitstatus).toBe('job errors');
    expect(task.lines).toContain('ERROR: Backup of VM 102 failed - VM is locked (snapshot)');
    expect(backups(cluster).map((v) => v['vmid'])).toEqual([101]);
  });

  it('runs one job per node at a time: a second waits for the global lock', async () => {
    const cluster = manualCluster(scenario);
    const first = vzdump(cluster, API_CALLER, 'pve1', job([101]), all);
    const second = vzdump(cluster, API_CALLER, 'pve1', job([102]), all);
    await finish(cluster, first);
    expect(second.lines).toContain('INFO: trying to get global lock - waiting...');
    expect(second.status).toBe('running');
    await finish(cluster, second);
    expect(second.exitstatus).toBe('OK');
  });

  it('shares the storage link between backups from different nodes', async () => {
    const alone = manualCluster(scenario);
    const one = vzdump(alone, API_CALLER, 'pve2', job([105]), all);
    await finish(alone, one);
    const shared = manualCluster(scenario);
    const both = [
      vzdump(shared, API_CALLER, 'pve2', job([105]), all),
      vzdump(shared, API_CALLER, 'pve1', job([101]), all),
    ];
    await finish(shared, ...both);
    expect(both[0]!.endtime! - both[0]!.starttime).toBeGreaterThan(one.endtime! - one.starttime);
  });

  it("refuses a storage without 'backup' content, and missing privileges with PVE's wording", () => {
    const cluster = manualCluster(scenario);
    expect(refusal(() => vzdump(cluster, API_CALLER, 'pve1', job([101], { storage: 'shared' }), all))).toEqual({
      status: 500,
      message: "can't use storage 'shared' for backups - wrong content type",
    });
    const noBackup: Can = (path, privs) => !(path === '/vms/101' && privs.includes('VM.Backup'));
    expect(refusal(() => vzdump(cluster, API_CALLER, 'pve1', job([101]), noBackup))).toEqual({
      status: 403,
      message: 'Permission check failed (/vms/101, VM.Backup)',
    });
    const noSpace: Can = (path) => path !== '/storage/nfs';
    expect(refusal(() => vzdump(cluster, API_CALLER, 'pve1', job([101]), noSpace)).message).toBe(
      'Permission check failed (/storage/nfs, Datastore.AllocateSpace)',
    );
    const noModify: Can = (path) => path !== '/';
    expect(refusal(() => vzdump(cluster, API_CALLER, 'pve1', job([101], { bwlimit: 10240 }), noModify)).message).toBe(
      'Permission check failed (/, Sys.Modify)',
    );
  });
  it('keeps a guest’s backups when the guest is destroyed, as PVE does', async () => {
    const cluster = manualCluster(scenario);
    await finish(cluster, vzdump(cluster, API_CALLER, 'pve1', job([104]), all));
    await finish(
      cluster,
      destroyGuest(cluster, API_CALLER, cluster.state.guests.get(104)!, {
        purge: true,
        destroyUnreferencedDisks: true,
      }),
    );
    expect(cluster.state.guests.has(104)).toBe(false);
    expect(backups(cluster, 104)).toHaveLength(1);
  });
});

describe('restore', () => {
  async function backedUp(cluster: Cluster, vmid: number, node = 'pve1'): Promise<string> {
    await finish(cluster, vzdump(cluster, API_CALLER, node, job([vmid]), all));
    return String(storageContent(cluster, node, 'nfs', { vmid })[0]!['volid']);
  }
  const restore = (archive: string, vmid: number, extra: Partial<RestoreRequest> = {}): RestoreRequest => ({
    vmid,
    archive,
    force: false,
    start: false,
    overrides: {},
    ...extra,
  });

  it('extracts the config the archive holds', async () => {
    const cluster = manualCluster(scenario);
    const archive = await backedUp(cluster, 101);
    const text = extractConfig(cluster, 'pve1', archive, all);
    expect(text).toContain('name: web1\n');
    expect(text).not.toContain('lock:');
  });

  it('restores as a new VMID with fresh disks and the overrides asked for', async () => {
    const cluster = manualCluster(scenario);
    const archive = await backedUp(cluster, 101);
    const task = restoreGuest(
      cluster,
      API_CALLER,
      'pve1',
      'qemu',
      restore(archive, 9001, { overrides: { name: 'drill-101' }, storage: 'local-lvm' }),
      all,
    );
    expect(task.type).toBe('qmrestore');
    await finish(cluster, task);
    expect(task.exitstatus).toBe('OK');
    const copy = cluster.state.guests.get(9001)!;
    expect(copy.name).toBe('drill-101');
    expect(copy.lock).toBeUndefined();
    expect(copy.drives.filter((d) => !d.cdrom).map((d) => d.volid)).toEqual(['local-lvm:vm-9001-disk-0']);
    expect(cluster.state.guests.get(101)!.drives[0]!.volid).not.toBe(copy.drives[0]!.volid);
  });

  it('refuses an existing VMID without force, and overwrites a stopped one with it', async () => {
    const cluster = manualCluster(scenario);
    const archive = await backedUp(cluster, 104);
    expect(refusal(() => restoreGuest(cluster, API_CALLER, 'pve1', 'qemu', restore(archive, 104), all))).toEqual({
      status: 500,
      message: "unable to restore VM 104 - VM 104 already exists on node 'pve1'",
    });
    cluster.state.guests.get(104)!.update((c) => (c['memory'] = '1024'));
    const task = restoreGuest(cluster, API_CALLER, 'pve1', 'qemu', restore(archive, 104, { force: true }), all);
    await finish(cluster, task);
    expect(task.exitstatus).toBe('OK');
    expect(cluster.state.guests.get(104)!.config['memory']).toBe('4096');
  });

  it('refuses to overwrite a running guest, and a container archive as a VM', async () => {
    const cluster = manualCluster(scenario);
    const archive = await backedUp(cluster, 101);
    expect(
      refusal(() => restoreGuest(cluster, API_CALLER, 'pve1', 'qemu', restore(archive, 101, { force: true }), all))
        .message,
    ).toBe('unable to restore VM 101 - VM is running');
    expect(refusal(() => restoreGuest(cluster, API_CALLER, 'pve1', 'lxc', restore(archive, 9002), all)).message).toBe(
      `archive '${archive}' is not a container backup`,
    );
  });
});
