import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { importInventory, isInventory } from '../../sim/scenario-import.js';

const GiB = 1024 ** 3;
/** A `pvesh get /cluster/resources --output-format json` of a cluster the project has never seen. */
const dump = JSON.parse(
  readFileSync(fileURLToPath(new URL('../fixtures/rehearsal/cluster-resources.json', import.meta.url)), 'utf8'),
) as {
  type: string;
  vmid?: number;
  mem?: number;
  maxmem?: number;
}[];
const resource = (vmid: number) => dump.find((r) => r.vmid === vmid)!;

describe('importing a cluster/resources dump', () => {
  const { scenario, guesses } = importInventory(dump);

  it('rebuilds every node, storage and guest, templates included', () => {
    expect(scenario.nodes.map((n) => [n.name, n.cores, n.memory / GiB])).toEqual([
      ['hv-a1', 48, 128],
      ['hv-a2', 48, 128],
      ['hv-b1', 48, 128],
      ['hv-b2', 48, 96],
    ]);
    expect(scenario.storages.map((s) => s.id)).toEqual(['local', 'local-zfs', 'ceph-vm', 'cephfs', 'pbs']);
    expect(scenario.guests).toHaveLength(dump.filter((r) => r.type === 'qemu' || r.type === 'lxc').length);
    expect(scenario.guests.filter((g) => g.template).map((g) => [g.vmid, g.status])).toEqual([
      [9000, 'stopped'],
      [9001, 'stopped'],
    ]);
    expect(scenario.guests.find((g) => g.vmid === 103)).toMatchObject({
      name: 'pg-primary',
      memory: 32 * 1024,
      ha: { state: 'started' },
    });
  });

  it('keeps the memory each running guest was measured to use', () => {
    const pg = scenario.guests.find((g) => g.vmid === 103)!;
    expect(pg.mem_usage).toBeCloseTo(resource(103).mem! / resource(103).maxmem!, 6);
    expect(scenario.guests.find((g) => g.vmid === 112)!.mem_usage).toBeUndefined(); // stopped
  });

  it('lists everything it had to guess', () => {
    expect(guesses).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^PVE version of every node/),
        expect.stringMatching(/^guests imported without their config/),
        expect.stringMatching(
          /^disks of guests without a config, put on one storage: VM 9000 on ceph-vm, .*CT 114 on ceph-vm/,
        ),
        "guest names changed to DNS names: VM 113 'old_jenkins' -> 'old-jenkins'",
        'storages of a type the simulator lacks, simulated as dir: pbs (pbs)',
        'resource pools not simulated (their members are): infra (7 guests), prod (2 guests), k8s (6 guests), dev (2 guests)',
        'resource types not simulated: sdn',
      ]),
    );
  });

  it('is recognised as an inventory, as the API answer { data } too, while a scenario is not', () => {
    expect(isInventory(dump)).toBe(true);
    expect(isInventory({ data: dump })).toBe(true);
    expect(isInventory({ nodes: [{ name: 'pve01' }] })).toBe(false);
  });
});

describe('importing an inventory read from an environment', () => {
  const { scenario, guesses } = importInventory({
    resources: dump,
    configs: {
      '103': {
        scsi0: 'local-zfs:vm-103-disk-0,iothread=1,size=200G',
        efidisk0: 'ceph-vm:vm-103-disk-1,efitype=4m,pre-enrolled-keys=1,size=1M',
        ide2: 'cephfs:iso/virtio-win.iso,media=cdrom,size=600M',
        hostpci0: '0000:41:00.0,pcie=1',
        memory: 32768,
        cores: 8,
        sockets: 1,
        protection: 1,
      },
      '114': {
        rootfs: 'local-zfs:subvol-114-disk-0,size=8G',
        mp0: '/srv/pihole,mp=/etc/pihole',
        memory: 1024,
        cores: 1,
      },
      '119': {
        boot: 'order=virtio0;net0',
        virtio0: 'ceph-vm:vm-119-disk-0,discard=on',
        scsi1: 'nas:vm-119-disk-1,size=500G',
        parent: 'before-upgrade',
        memory: 8192,
        cores: 4,
      },
    },
    storage_content: {
      'hv-a1/cephfs': [{ volid: 'cephfs:iso/virtio-win.iso', size: 629_145_600, content: 'iso' }],
      'hv-a1/ceph-vm': [{ volid: 'ceph-vm:vm-119-disk-0', size: 40 * GiB, content: 'images' }],
    },
    ha_rules: [
      { rule: 'pg-apart', type: 'resource-affinity', resources: 'vm:103,vm:104', affinity: 'negative', strict: 0 },
    ],
  });
  const guest = (vmid: number) => scenario.guests.find((g) => g.vmid === vmid)!;

  it("places each disk on the storage the guest's config names, with its size", () => {
    expect(guest(103).disks).toEqual([
      { storage: 'local-zfs', size: 200 * GiB },
      { storage: 'ceph-vm', size: 1024 ** 2 },
    ]);
    expect(guest(114).disks).toEqual([{ storage: 'local-zfs', size: 8 * GiB }]);
    expect(guest(119).disks[0]).toEqual({ storage: 'ceph-vm', size: 40 * GiB });
  });

  it('keeps what pins a guest or blocks its migration: host devices, the ISO in its CD drive, protection, snapshots', () => {
    expect(guest(103)).toMatchObject({
      hostpci: ['0000:41:00.0,pcie=1'],
      cdrom: 'cephfs:iso/virtio-win.iso',
      protection: true,
    });
    expect(guest(119).snapshots).toEqual([{ name: 'before-upgrade', description: '', vmstate: false }]);
    expect(scenario.ha_rules).toEqual([
      {
        rule: 'pg-apart',
        type: 'resource-affinity',
        resources: ['vm:103', 'vm:104'],
        nodes: [],
        affinity: 'negative',
        strict: false,
      },
    ]);
  });

  it('says where it departed from the configs', () => {
    expect(guesses).toEqual(
      expect.arrayContaining([
        "disks on a storage cluster/resources does not list on the guest's node, moved: VM 119 scsi1 nas -> ceph-vm",
        'bind mounts and pass-through disks left out (they pin a guest to its node): CT 114 mp0',
        'disk keys renumbered in the simulated config: VM 103 scsi0, efidisk0, VM 119 virtio0, scsi1',
        'snapshot trees reduced to the current snapshot: VM 119',
      ]),
    );
    expect(guesses.join('\n')).not.toMatch(/VM 103 on ceph-vm/);
  });
});
