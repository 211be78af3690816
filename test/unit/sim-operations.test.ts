import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { Cluster } from '../../sim/cluster.js';
import { CONTENT_BYTES, downloadContent } from '../../sim/downloads.js';
import { PveError } from '../../sim/errors.js';
import { cloneVm } from '../../sim/ops/clone.js';
import { createQemu, destroyGuest, updateConfig } from '../../sim/ops/config.js';
import { rebootGuest, startGuest, stopGuest } from '../../sim/ops/power.js';
import { createSnapshot, listSnapshots, rollbackSnapshot } from '../../sim/ops/snapshots.js';
import { downloadUrl } from '../../sim/ops/storage.js';
import { agentNetworkInterfaces, nextId } from '../../sim/ops/views.js';
import type { TaskRecord } from '../../sim/tasks.js';
import { API_CALLER, manualCluster, smallScenario } from './sim-fixtures.js';

const vm = (cluster: Cluster, vmid: number) => cluster.state.guests.get(vmid)!;

async function finish(cluster: Cluster, ...tasks: TaskRecord[]): Promise<void> {
  for (let i = 0; i < 6000 && tasks.some((t) => t.status === 'running'); i++) await cluster.clock.advance(100);
}

function pveError(fn: () => unknown): { status: number; message: string; errors?: Record<string, string> } {
  try {
    fn();
  } catch (err) {
    if (err instanceof PveError)
      return { status: err.status, message: err.message, ...(err.errors ? { errors: err.errors } : {}) };
    throw err;
  }
  throw new Error('expected a PveError');
}

describe('power operations', () => {
  it('accept a start of a running VM and fail its task', async () => {
    const cluster = manualCluster();
    const task = startGuest(cluster, API_CALLER, vm(cluster, 101));
    await finish(cluster, task);
    expect(task).toMatchObject({ type: 'qmstart', exitstatus: 'VM 101 already running' });
  });

  it('refuse to start a template in the task', async () => {
    const cluster = manualCluster();
    const task = startGuest(cluster, API_CALLER, vm(cluster, 100));
    await finish(cluster, task);
    expect(task.exitstatus).toBe("you can't start a vm if it's a template");
  });

  it('end a stop of a stopped VM OK, and refuse a reboot of it at once', async () => {
    const cluster = manualCluster();
    const task = stopGuest(cluster, API_CALLER, vm(cluster, 104));
    await finish(cluster, task);
    expect(task.exitstatus).toBe('OK');
    expect(pveError(() => rebootGuest(cluster, API_CALLER, vm(cluster, 104)))).toEqual({
      status: 500,
      message: 'VM 104 not running',
    });
  });

  it('can fail a start although the VM ended up running', async () => {
    const cluster = manualCluster();
    cluster.faults.failTask({
      type: 'qmstart',
      vmid: 104,
      when: 'after',
      message: 'start failed: timeout waiting on systemd',
    });
    const task = startGuest(cluster, API_CALLER, vm(cluster, 104));
    await finish(cluster, task);
    expect(task.exitstatus).toBe('start failed: timeout waiting on systemd');
    expect(vm(cluster, 104).status).toBe('running');
  });

  it('queue HA-managed starts with the HA manager', async () => {
    const cluster = manualCluster();
    vm(cluster, 105).status = 'stopped';
    const task = startGuest(cluster, API_CALLER, vm(cluster, 105));
    expect(task.type).toBe('hastart');
    await cluster.clock.advance(20_000);
    expect(vm(cluster, 105).status).toBe('running');
    expect(cluster.counters.tasks('qmstart', 105)).toBe(1);
  });

  it('refuse container starts and stops that make no sense, at once', () => {
    const cluster = manualCluster();
    expect(pveError(() => startGuest(cluster, API_CALLER, vm(cluster, 200))).message).toBe('CT 200 already running');
  });
});

describe('destroying guests', () => {
  it('refuses running, protected and HA-managed guests with PVE messages', () => {
    const cluster = manualCluster();
    expect(pveError(() => destroyGuest(cluster, API_CALLER, vm(cluster, 101), {}))).toEqual({
      status: 500,
      message: 'VM 101 is running - destroy failed',
    });
    expect(pveError(() => destroyGuest(cluster, API_CALLER, vm(cluster, 108), {})).message).toBe(
      "can't remove VM 108 - protection mode enabled",
    );
    vm(cluster, 105).status = 'stopped';
    expect(pveError(() => destroyGuest(cluster, API_CALLER, vm(cluster, 105), {})).message).toBe(
      'unable to remove VM 105 - used in HA resources and purge parameter not set.',
    );
  });

  it('removes the config and its disks, and with purge the HA resource', async () => {
    const cluster = manualCluster();
    vm(cluster, 105).status = 'stopped';
    const task = destroyGuest(cluster, API_CALLER, vm(cluster, 105), { purge: true });
    await finish(cluster, task);
    expect(task.exitstatus).toBe('OK');
    expect(cluster.state.guests.has(105)).toBe(false);
    expect(cluster.state.ha.has('vm:105')).toBe(false);
    expect(cluster.state.volume('shared:105/vm-105-disk-0.qcow2', 'pve2')).toBeUndefined();
  });

  it('says which config file is missing', () => {
    const cluster = manualCluster();
    expect(pveError(() => cluster.state.guestOn('pve2', 101, 'qemu')).message).toBe(
      "Configuration file 'nodes/pve2/qemu-server/101.conf' does not exist",
    );
  });
});

describe('configuration', () => {
  it('changes the digest on every write and refuses a stale one', async () => {
    const cluster = manualCluster();
    const guest = vm(cluster, 101);
    const before = guest.digest;
    await updateConfig(cluster, guest, { description: 'first' });
    expect(guest.digest).not.toBe(before);
    await expect(updateConfig(cluster, guest, { description: 'second', digest: before })).rejects.toThrow(
      'checksum mismatch (file change by other user?)',
    );
    await updateConfig(cluster, guest, { description: 'second', digest: guest.digest });
    expect(guest.config['description']).toBe('second');
  });

  it('refuses changes to a locked VM', async () => {
    const cluster = manualCluster();
    const guest = vm(cluster, 101);
    guest.update((c) => (c['lock'] = 'backup'));
    await expect(updateConfig(cluster, guest, { cores: 4 })).rejects.toThrow('VM is locked (backup)');
  });

  it('allocates disks from storage:size and turns removed disks into unused ones', async () => {
    const cluster = manualCluster();
    const guest = vm(cluster, 104);
    await updateConfig(cluster, guest, { scsi1: 'local-lvm:16' });
    expect(guest.config['scsi1']).toBe('local-lvm:vm-104-disk-1,size=16G');
    await updateConfig(cluster, guest, { delete: 'scsi1' });
    expect(guest.config['unused0']).toBe('local-lvm:vm-104-disk-1');
  });

  it('creates VMs with a config that appears at once and refuses used VMIDs', async () => {
    const cluster = manualCluster();
    const task = createQemu(cluster, API_CALLER, 'pve2', {
      vmid: 300,
      name: 'new',
      memory: '2048',
      scsi0: 'shared:20',
      agent: '1',
    });
    expect(vm(cluster, 300).lock).toBe('create');
    await finish(cluster, task);
    expect(vm(cluster, 300).lock).toBeUndefined();
    expect(vm(cluster, 300).config['scsi0']).toBe('shared:300/vm-300-disk-0.qcow2,size=20G');
    expect(pveError(() => createQemu(cluster, API_CALLER, 'pve1', { vmid: 101 })).message).toBe(
      "unable to create VM 101 - VM 101 already exists on node 'pve1'",
    );
  });

  it('hands out the lowest free VMID and refuses a used one', () => {
    const cluster = manualCluster();
    expect(nextId(cluster, undefined)).toBe('109');
    expect(pveError(() => nextId(cluster, 101))).toEqual({
      status: 400,
      message: 'Parameter verification failed.',
      errors: { vmid: 'VM 101 already exists' },
    });
  });
});

describe('clones', () => {
  it('show the new VM locked while copying, then unlocked', async () => {
    const cluster = manualCluster();
    const task = cloneVm(cluster, API_CALLER, vm(cluster, 100), { newid: 300, name: 'clone1', full: true });
    expect(vm(cluster, 300).lock).toBe('clone');
    const early = startGuest(cluster, API_CALLER, vm(cluster, 300));
    await finish(cluster, task, early);
    expect(early.exitstatus).toBe('VM is locked (clone)');
    expect(task.exitstatus).toBe('OK');
    expect(vm(cluster, 300)).toMatchObject({ lock: undefined, template: false, node: 'pve1', name: 'clone1' });
    expect(vm(cluster, 300).config['scsi0']).toMatch(/^shared:300\/vm-300-disk-0\.qcow2,/);
  });

  it('of a template are linked by default', async () => {
    const cluster = manualCluster();
    const task = cloneVm(cluster, API_CALLER, vm(cluster, 100), { newid: 300 });
    await finish(cluster, task);
    expect(vm(cluster, 300).config['scsi0']).toMatch(/^shared:100\/base-100-disk-0\.qcow2\/300\/vm-300-disk-0\.qcow2,/);
  });

  it('of a stopped template run side by side: the source lock is shared, as in qemu-server', async () => {
    const cluster = manualCluster();
    const first = cloneVm(cluster, API_CALLER, vm(cluster, 100), { newid: 300, full: true });
    const second = cloneVm(cluster, API_CALLER, vm(cluster, 100), { newid: 301, full: true });
    await finish(cluster, first, second);
    expect([first.exitstatus, second.exitstatus]).toEqual(['OK', 'OK']);
    expect(Math.abs(second.endtime! - first.endtime!)).toBeLessThanOrEqual(1);
  });

  it('of a running VM hold its lock exclusively: an overlapping clone waits, and fails after the timeout', async () => {
    const cluster = manualCluster();
    // The 32 GiB copy at 400 MiB/s takes about 80 s, longer than the 10 s a second clone waits.
    const first = cloneVm(cluster, API_CALLER, vm(cluster, 101), { newid: 300, full: true });
    const second = cloneVm(cluster, API_CALLER, vm(cluster, 101), { newid: 301, full: true });
    await finish(cluster, first, second);
    expect(first.exitstatus).toBe('OK');
    expect(second.exitstatus).toBe("can't lock file '/var/lock/qemu-server/lock-101.conf' - got timeout");
    expect(cluster.state.guests.has(301)).toBe(false);
  });

  it('of a template make a config change to it wait until they are done', async () => {
    const scenario = smallScenario();
    scenario.guests![0] = { ...scenario.guests![0]!, disks: [{ storage: 'shared', size: '2G' }] };
    const cluster = manualCluster(scenario);
    const clone = cloneVm(cluster, API_CALLER, vm(cluster, 100), { newid: 300, full: true });
    const change = updateConfig(cluster, vm(cluster, 100), { description: 'golden' });
    await finish(cluster, clone);
    await change;
    expect(clone.exitstatus).toBe('OK');
    expect(vm(cluster, 100).config['description']).toBe('golden');
  });

  it('refuse a linked clone of a VM that is not a template', () => {
    const cluster = manualCluster();
    expect(pveError(() => cloneVm(cluster, API_CALLER, vm(cluster, 101), { newid: 300, full: false })).message).toBe(
      "Linked clone feature is not supported for 'shared:101/vm-101-disk-0.qcow2' (scsi0)",
    );
  });

  it('refuse a locked source at once', () => {
    const cluster = manualCluster();
    vm(cluster, 100).update((c) => (c['lock'] = 'clone'));
    expect(pveError(() => cloneVm(cluster, API_CALLER, vm(cluster, 100), { newid: 300 })).message).toBe(
      'VM is locked (clone)',
    );
  });
});

describe('snapshots', () => {
  it('are listed with the current state and can be rolled back', async () => {
    const cluster = manualCluster();
    const guest = vm(cluster, 104);
    await updateConfig(cluster, guest, { cores: 2 });
    await finish(cluster, createSnapshot(cluster, API_CALLER, guest, 'before'));
    await updateConfig(cluster, guest, { cores: 8 });
    expect(listSnapshots(guest).map((s) => s['name'])).toEqual(['before', 'current']);
    await finish(cluster, rollbackSnapshot(cluster, API_CALLER, guest, 'before'));
    expect(guest.config['cores']).toBe('2');
    expect(guest.lock).toBeUndefined();
  });
});

describe('guest agent', () => {
  it('reports an address only some seconds after boot, and only when configured', async () => {
    const cluster = manualCluster();
    const guest = vm(cluster, 104);
    expect(() => agentNetworkInterfaces(cluster, vm(cluster, 107))).toThrow('VM 107 is not running');
    guest.update((c) => delete c['agent']);
    expect(() => agentNetworkInterfaces(cluster, guest)).toThrow('No QEMU guest agent configured');
    guest.update((c) => (c['agent'] = '1'));
    await finish(cluster, startGuest(cluster, API_CALLER, guest));
    expect(() => agentNetworkInterfaces(cluster, guest)).toThrow('QEMU guest agent is not running');
    await cluster.clock.advance(20_000);
    const result = agentNetworkInterfaces(cluster, guest) as {
      result: { name: string; 'ip-addresses': { 'ip-address': string }[] }[];
    };
    expect(result.result[1]!['ip-addresses'][0]!['ip-address']).toBe(guest.ip);
  });
});

describe('download-url', () => {
  const url = 'https://cloud.example.org/debian-13-genericcloud-amd64.qcow2';
  const digest = (algorithm: string) => createHash(algorithm).update(downloadContent(url)).digest('hex');
  const sha256 = digest('sha256');

  it('serves the same real bytes for a URL every time, and other bytes for another URL', () => {
    const content = downloadContent(url);
    expect(content).toHaveLength(CONTENT_BYTES);
    expect(downloadContent(url).equals(content)).toBe(true);
    expect(downloadContent(`${url}?v=2`).equals(content)).toBe(false);
  });

  it.each(['sha512', 'md5'])('verifies a %s checksum against the digest of the bytes served', async (algorithm) => {
    const cluster = manualCluster();
    const task = downloadUrl(cluster, API_CALLER, 'pve1', {
      storage: 'local',
      url,
      content: 'iso',
      filename: 'debian.iso',
      checksum: digest(algorithm),
      checksumAlgorithm: algorithm,
    });
    await finish(cluster, task);
    expect(task.exitstatus).toBe('OK');
  });

  it('applies PVE extension rules per content type', () => {
    const cluster = manualCluster();
    const request = (content: 'iso' | 'import', filename: string) =>
      pveError(() => downloadUrl(cluster, API_CALLER, 'pve1', { storage: 'local', url, content, filename }));
    expect(request('iso', 'debian.qcow2')).toMatchObject({ status: 400, errors: { filename: 'wrong file extension' } });
    expect(request('import', 'debian.iso')).toMatchObject({
      status: 400,
      errors: { filename: 'invalid filename or wrong extension' },
    });
  });

  it('refuses storage not configured for the content type', () => {
    const cluster = manualCluster();
    expect(
      pveError(() =>
        downloadUrl(cluster, API_CALLER, 'pve1', { storage: 'local-lvm', url, content: 'iso', filename: 'x.iso' }),
      ).message,
    ).toBe("storage 'local-lvm' is not configured for content-type 'iso'");
  });

  it('verifies checksums: a match stores the volume, a mismatch fails the task', async () => {
    const cluster = manualCluster();
    const good = downloadUrl(cluster, API_CALLER, 'pve1', {
      storage: 'local',
      url,
      content: 'import',
      filename: 'debian 13.qcow2',
      checksum: sha256,
      checksumAlgorithm: 'sha256',
    });
    const bad = downloadUrl(cluster, API_CALLER, 'pve2', {
      storage: 'local',
      url,
      content: 'import',
      filename: 'debian.qcow2',
      checksum: '0'.repeat(64),
      checksumAlgorithm: 'sha256',
    });
    await finish(cluster, good, bad);
    expect(good.exitstatus).toBe('OK');
    expect(good.id).toBe('debian_13.qcow2');
    expect(cluster.state.volume('local:import/debian_13.qcow2', 'pve1')).toMatchObject({ sha256 });
    expect(bad.exitstatus).toBe(`checksum mismatch: got '${sha256}' != expect '${'0'.repeat(64)}'`);
    expect(cluster.state.volume('local:import/debian.qcow2', 'pve2')).toBeUndefined();
  });

  it('refuses to overwrite an existing file without a checksum', async () => {
    const cluster = manualCluster();
    const task = downloadUrl(cluster, API_CALLER, 'pve1', {
      storage: 'local',
      url,
      content: 'iso',
      filename: 'debian.iso',
    });
    await finish(cluster, task);
    expect(task.exitstatus).toBe("refusing to override existing file '/var/lib/vz/template/iso/debian.iso'");
  });
});
