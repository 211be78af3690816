/**
 * Ansible's community.proxmox modules, run by the real ansible-playbook, against the
 * simulated cluster: what a playbook written for a real PVE 9.1 cluster does must work here
 * the same way, and fail the same way. Connection details reach the modules as their
 * documented PROXMOX_* environment variables, so each task shows only what it does. The
 * tests run in order on one cluster and build on each other (a clone is then started,
 * resized, deleted), as a playbook's tasks would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadChecksum } from '../../sim/downloads.js';
import { READ_ONLY_TOKEN, startConformanceCluster, type ConformanceCluster, type TaskResult } from './clients.js';

/**
 * Cases that need another branch's simulator work: a NIC created without a MAC gets one
 * (proxmox_kvm reads it back), and `GET /storage` answered instead of 501. The lead enables
 * them by emptying this set after merging.
 */

let cluster: ConformanceCluster;

beforeAll(async () => {
  cluster = await startConformanceCluster();
});
afterAll(() => cluster?.stop());

const kvm = (args: Record<string, unknown>) => ({ 'community.proxmox.proxmox_kvm': { timeout: 60, ...args } });
const guest = (vmid: number) => cluster.sim.state.guests.get(vmid);

/** Runs the tasks and returns their results, each of which must have succeeded. */
async function succeeds(...tasks: Record<string, unknown>[]): Promise<TaskResult[]> {
  const results = await cluster.ansible(tasks);
  for (const result of results) expect(result.failed, result.msg).toBeFalsy();
  return results;
}

describe('guests', () => {
  it('lists the VMs of every node with their current config and digest', async () => {
    const [info] = await succeeds({ 'community.proxmox.proxmox_vm_info': { type: 'qemu', config: 'current' } });
    const vms = info!['proxmox_vms'] as { vmid: number; node: string; template: boolean; config: { digest: string } }[];
    const expected = [...cluster.sim.state.guests.values()].filter((g) => g.type === 'qemu');
    expect(vms.map((v) => v.vmid).sort()).toEqual(expected.map((g) => g.vmid).sort());
    expect(vms.find((v) => v.vmid === 100)).toMatchObject({ node: 'pve01', template: true });
    for (const vm of vms) expect(vm.config.digest).toBe(guest(vm.vmid)!.digest);
  });

  it('clones a template fully and linked', async () => {
    const [full, linked, again] = await succeeds(
      kvm({ node: 'pve01', clone: 'tpl-debian-13', newid: 130, name: 'ansible-full', full: true }),
      kvm({ node: 'pve01', clone: 'tpl-debian-13', newid: 131, name: 'ansible-linked', full: false }),
      kvm({ node: 'pve01', clone: 'tpl-debian-13', newid: 131, name: 'ansible-linked', full: false }),
    );
    expect(full).toMatchObject({ changed: true, vmid: 130 });
    expect(guest(130)!.config).toMatchObject({
      name: 'ansible-full',
      scsi0: expect.stringMatching(/^shared:130\/vm-130-disk-0\.qcow2,/),
    });
    expect(linked).toMatchObject({ changed: true, vmid: 131 });
    expect(guest(131)!.config['scsi0']).toMatch(/^shared:100\/base-100-disk-0\.qcow2\/131\/vm-131-disk-0\.qcow2,/);
    expect(again).toMatchObject({ changed: false, msg: 'vmid 131 with VM name ansible-linked already exists' });
  });

  it('starts, restarts and shuts down a VM, changing nothing when it already is as asked', async () => {
    const [started, already, restarted, stopped] = await succeeds(
      kvm({ vmid: 130, state: 'started' }),
      kvm({ vmid: 130, state: 'started' }),
      kvm({ vmid: 130, state: 'restarted' }),
      kvm({ vmid: 130, state: 'stopped' }),
    );
    expect(started).toMatchObject({ changed: true, msg: 'VM 130 started' });
    expect(already).toMatchObject({ changed: false, msg: 'VM 130 is already running' });
    expect(restarted).toMatchObject({ changed: true, msg: 'VM 130 is restarted' });
    expect(stopped).toMatchObject({ changed: true, msg: 'VM 130 is shutting down' });
    expect(guest(130)!.status).toBe('stopped');
  });

  it('migrates a running VM to another node', async () => {
    const [migrated] = await succeeds(kvm({ vmid: 110, node: 'pve02', migrate: true }));
    expect(migrated).toMatchObject({ changed: true, msg: 'VM 110 has been migrated from pve01 to pve02' });
    expect(guest(110)).toMatchObject({ node: 'pve02', status: 'running' });
  });

  it('updates a config only when the digest it read is still current', async () => {
    const [info] = await succeeds({ 'community.proxmox.proxmox_vm_info': { vmid: 131, config: 'current' } });
    const digest = (info!['proxmox_vms'] as { config: { digest: string } }[])[0]!.config.digest;
    const [updated, stale] = await cluster.ansible([
      kvm({ vmid: 131, node: 'pve01', update: true, cores: 3, digest }),
      kvm({ vmid: 131, node: 'pve01', update: true, cores: 4, digest }),
    ]);
    expect(updated).toMatchObject({ changed: true });
    expect(stale).toMatchObject({
      failed: true,
      msg: expect.stringContaining('500 Internal Server Error: checksum mismatch (file change by other user?)'),
    });
    expect(guest(131)!.config['cores']).toBe('3');
  });

  it('takes a snapshot, rolls back to it and removes it', async () => {
    const [taken, rolledBack, removed] = await succeeds(
      {
        'community.proxmox.proxmox_snap': {
          vmid: 131,
          snapname: 'before',
          description: 'by Ansible',
          state: 'present',
        },
      },
      { 'community.proxmox.proxmox_snap': { vmid: 131, snapname: 'before', state: 'rollback' } },
      { 'community.proxmox.proxmox_snap': { vmid: 131, snapname: 'before', state: 'absent' } },
    );
    expect(taken).toMatchObject({ changed: true, msg: 'Snapshot before created' });
    expect(rolledBack).toMatchObject({ changed: true, msg: 'Snapshot before rolled back' });
    expect(removed).toMatchObject({ changed: true, msg: 'Snapshot before removed' });
    expect(guest(131)!.snapshots.size).toBe(0);
  });

  it('grows a disk and waits for the resize task', async () => {
    const [resized] = await succeeds({
      'community.proxmox.proxmox_disk': { vmid: 130, disk: 'scsi0', size: '+4G', state: 'resized' },
    });
    expect(resized).toMatchObject({ changed: true, msg: 'Disk scsi0 resized in VM 130' });
    expect(guest(130)!.config['scsi0']).toMatch(/,size=12G(,|$)/);
  });

  it('deletes a VM with purge, its disks included', async () => {
    const disk = String(guest(130)!.config['scsi0']).split(',')[0]!;
    const [removed] = await succeeds(kvm({ vmid: 130, state: 'absent', purge: true }));
    expect(removed).toMatchObject({ changed: true, msg: 'VM 130 removed' });
    expect(guest(130)).toBeUndefined();
    expect(cluster.sim.state.volume(disk, 'pve01')).toBeUndefined();
  });

  it('creates a VM whose NIC has no MAC, and reads the generated MAC back', async () => {
    const [created] = await succeeds(
      kvm({
        node: 'pve01',
        vmid: 140,
        name: 'ansible-new',
        memory: 1024,
        cores: 1,
        net: { net0: 'virtio,bridge=vmbr0' },
        scsi: { scsi0: 'local-lvm:8' },
      }),
    );
    expect(created).toMatchObject({
      changed: true,
      vmid: 140,
      mac: { net0: expect.stringMatching(/^BC:24:11(:[0-9A-F]{2}){3}$/) },
    });
  });
});

describe('storage and tasks', () => {
  it('downloads an ISO by URL, checking its checksum, and changes nothing the second time', async () => {
    const url = 'https://releases.ubuntu.com/24.04/ubuntu-24.04.3-live-server-amd64.iso';
    const download = {
      'community.proxmox.proxmox_template': {
        node: 'pve01',
        storage: 'local',
        content_type: 'iso',
        url,
        checksum_algorithm: 'sha256',
        checksum: downloadChecksum(url),
        timeout: 60,
      },
    };
    const [fetched, again] = await succeeds(download, download);
    expect(fetched).toMatchObject({ changed: true });
    expect(again).toMatchObject({
      changed: false,
      msg: 'template with volid=local:iso/ubuntu-24.04.3-live-server-amd64.iso already exists',
    });
    expect(cluster.sim.state.volume('local:iso/ubuntu-24.04.3-live-server-amd64.iso', 'pve01')).toBeDefined();
  });

  it('reads the task list, flagging failed tasks', async () => {
    const [info] = await succeeds({ 'community.proxmox.proxmox_tasks_info': { node: 'pve01' } });
    const tasks = info!['proxmox_tasks'] as { type: string; status: string; failed?: boolean }[];
    expect(tasks.map((t) => t.type)).toEqual(expect.arrayContaining(['qmclone', 'qmstart', 'qmshutdown', 'download']));
    expect(tasks.filter((t) => t.failed)).toEqual(tasks.filter((t) => t.status !== 'OK'));
  });

  it('lists the storages of the cluster', async () => {
    const [info] = await succeeds({ 'community.proxmox.proxmox_storage_info': {} });
    expect((info!['proxmox_storages'] as { storage: string }[]).map((s) => s.storage).sort()).toEqual([
      'local',
      'local-lvm',
      'shared',
    ]);
  });
});

describe('refusals as the modules report them', () => {
  it('fails a task with PVE 400 per key', async () => {
    const [refused] = await cluster.ansible([kvm({ vmid: 131, node: 'pve01', update: true, cores: 0, sockets: 0 })]);
    expect(refused).toMatchObject({ failed: true });
    expect(refused!.msg).toContain('400 Bad Request: Parameter verification failed.');
    expect(refused!.msg).toContain("'cores': 'value must have a minimum value of 1'");
    expect(refused!.msg).toContain("'sockets': 'value must have a minimum value of 1'");
  });

  it('fails at the first call with PVE 401 when the token secret is wrong', async () => {
    const [info] = await cluster.ansible([{ 'community.proxmox.proxmox_vm_info': {} }], { secret: 'not-the-secret' });
    expect(info).toMatchObject({
      failed: true,
      msg: expect.stringContaining('401 Unauthorized: Authentication failed!'),
    });
  });

  it('fails every task of a token without the privilege with PVE 403, naming path and privilege', async () => {
    const [start, snapshot] = await cluster.ansible(
      [
        kvm({ vmid: 111, state: 'stopped' }),
        { 'community.proxmox.proxmox_snap': { vmid: 111, snapname: 'nope', state: 'present' } },
      ],
      { tokenId: READ_ONLY_TOKEN },
    );
    expect(start!.msg).toContain('403 Forbidden: Permission check failed (/vms/111, VM.PowerMgmt)');
    expect(snapshot!.msg).toContain('403 Forbidden: Permission check failed (/vms/111, VM.Snapshot)');
    expect(guest(111)).toMatchObject({ status: 'running' });
    expect(guest(111)!.snapshots.size).toBe(0);
  });

  // A shutdown of a locked VM is a task that fails, which proxmox_kvm only notices at its
  // timeout (it waits for an OK task); a config change is refused at once.
  it('fails a change to a VM locked by a backup', async () => {
    const [update] = await cluster.ansible([kvm({ vmid: 112, node: 'pve02', update: true, cores: 2 })]);
    expect(update).toMatchObject({
      failed: true,
      msg: expect.stringContaining('500 Internal Server Error: VM is locked (backup)'),
    });
    expect(guest(112)).toMatchObject({ status: 'running', lock: 'backup' });
    expect(guest(112)!.config['cores']).toBe('1');
  });
});
