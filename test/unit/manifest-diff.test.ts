/**
 * The fleet diff, as a specification: which guests it touches (and which it never does), how
 * each difference is classified (create, change in place, change needing a restart, replace,
 * delete), the exact PVE parameters of every step, its risk, and the order changes run in.
 * The last section applies planned parameters to the observed configs and diffs again: an
 * applied plan leaves nothing to do.
 */
import { describe, expect, it } from 'vitest';
import { SafetyPolicy, VmDefaults } from '../../lib/config/schema.js';
import {
  diffFleet,
  guestsToInspect,
  type DiffContext,
  type FleetDiff,
  type GuestChange,
  type ObservedCluster,
  type ObservedGuest,
} from '../../lib/manifest/diff/index.js';
import { parseManifests, type Fleet } from '../../lib/manifest/load.js';
import { encodeSshKeys, parseDrive, type PveConfig } from '../../lib/manifest/pve-config.js';
import { renderPlan } from '../../lib/manifest/render.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

const context = (overrides: Partial<DiffContext> = {}): DiffContext => ({
  environment: 'home',
  naming: { pattern: 'auto-{service}-{vmid}' },
  vmids: { min: 1000, max: 9999 },
  defaults: VmDefaults.parse({}),
  policy: SafetyPolicy.parse({}),
  now: new Date('2026-01-02T03:04:05Z'),
  ...overrides,
});

function fleetOf(guests: string, head = ''): Fleet {
  return parseManifests([{ name: 'm.yaml', text: `environment: home\n${head}\nguests:\n${guests}` }]).get('home')!;
}

interface GuestFixture extends Partial<Omit<ObservedGuest, 'config'>> {
  config?: PveConfig;
}

/** A running VM on pve01 with a 32G disk on local-lvm, 2 cores, 2048 MiB, one virtio NIC. */
function vm(vmid: number, name: string, fixture: GuestFixture = {}): ObservedGuest {
  const config: PveConfig = {
    name,
    cores: 2,
    memory: '2048',
    scsihw: 'virtio-scsi-single',
    scsi0: `local-lvm:vm-${vmid}-disk-0,iothread=1,size=32G`,
    net0: 'virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1',
    digest: `digest-${vmid}`,
    ...fixture.config,
  };
  return {
    vmid,
    name,
    kind: 'qemu',
    node: 'pve01',
    status: 'running',
    template: false,
    tags: String(config['tags'] ?? '')
      .split(';')
      .filter(Boolean),
    memoryBytes: 2048 * MiB,
    cores: 2,
    ...fixture,
    config,
  };
}

function ct(vmid: number, name: string, fixture: GuestFixture = {}): ObservedGuest {
  return vm(vmid, name, {
    kind: 'lxc',
    ...fixture,
    config: {
      hostname: name,
      cores: 1,
      memory: '512',
      swap: '512',
      rootfs: `local-lvm:vm-${vmid}-disk-0,size=8G`,
      net0: 'name=eth0,bridge=vmbr0,hwaddr=BC:24:11:00:00:02,ip=dhcp,type=veth',
      digest: `digest-${vmid}`,
      ...fixture.config,
      scsi0: undefined,
      scsihw: undefined,
      name: undefined,
    },
  });
}

const template = vm(100, 'tpl-debian-13', {
  status: 'stopped',
  template: true,
  config: {
    template: 1,
    scsi0: 'shared:base-100-disk-0,iothread=1,size=8G',
    tags: 'template;cloudinit',
    ide2: 'shared:vm-100-cloudinit,media=cdrom',
  },
});

function cluster(guests: ObservedGuest[], volumes: Record<string, string[]> = {}): ObservedCluster {
  const node = (name: string) => ({
    name,
    online: true,
    cpuUsage: 0.1,
    cores: 16,
    memoryUsedBytes: 8 * GiB,
    memoryTotalBytes: 64 * GiB,
  });
  return {
    nodes: [node('pve01'), node('pve02'), node('pve03')],
    guests: [template, ...guests],
    storages: ['pve01', 'pve02', 'pve03'].flatMap((n) => [
      { storage: 'local-lvm', node: n, content: ['images', 'rootdir'], shared: false, freeBytes: 500 * GiB },
      { storage: 'shared', node: n, content: ['images', 'rootdir', 'iso'], shared: true, freeBytes: 2000 * GiB },
      { storage: 'local', node: n, content: ['iso', 'vztmpl', 'import'], shared: false, freeBytes: 80 * GiB },
    ]),
    volumes: {
      'local:vztmpl/debian-12.tar.zst': ['pve01', 'pve02', 'pve03'],
      'local:import/cloud.qcow2': ['pve02'],
      'local:iso/installer.iso': ['pve03'],
      ...volumes,
    },
  };
}

function diff(fleet: Fleet, guests: ObservedGuest[], ctx = context()): FleetDiff {
  return diffFleet(fleet, cluster(guests), ctx);
}

const only = (d: FleetDiff): GuestChange => {
  expect(d.problems).toEqual([]);
  expect(d.changes).toHaveLength(1);
  return d.changes[0]!;
};
const stepsOf = (c: GuestChange) => c.steps.map((s) => s.id.split('/').pop());
const problems = (d: FleetDiff) => d.problems.map((p) => `${p.path}: ${p.message}`);

describe('what the manifest touches', () => {
  it('leaves guests it does not name alone, whatever they look like', () => {
    const d = diff(fleetOf('  - { name: web, memory: 2048 }'), [
      vm(1001, 'web'),
      vm(1002, 'stranger', { config: { memory: '99999' } }),
    ]);
    expect(d.changes).toEqual([]);
    expect(d.unchanged).toEqual([{ key: 'web', vmid: 1001, name: 'web' }]);
  });

  it('deletes a guest it claims by tag but does not list — after stopping it, with vmid and name in every step', () => {
    const c = only(
      diff(fleetOf('  - { name: web, memory: 2048 }', 'claims: { tags: [fleet] }'), [
        vm(1001, 'web', { config: { tags: 'fleet' } }),
        vm(1002, 'old', { config: { tags: 'fleet;web' } }),
      ]),
    );
    expect(c).toMatchObject({
      key: 'old',
      action: 'delete',
      vmid: 1002,
      risk: 'high',
      claimedBy: "it carries the claimed tag 'fleet'",
    });
    expect(c.steps).toEqual([
      expect.objectContaining({ id: 'old/stop', action: 'stop', vmid: 1002, name: 'old' }),
      expect.objectContaining({
        id: 'old/destroy',
        action: 'destroy',
        vmid: 1002,
        name: 'old',
        params: { purge: true, 'destroy-unreferenced-disks': true },
      }),
    ]);
  });

  it('deletes a guest in a claimed VMID range, but never a template and never a protected guest', () => {
    const d = diff(fleetOf('  []', 'claims: { vmids: 100-3099 }'), [
      vm(3001, 'stopped-one', { status: 'stopped' }),
      vm(3002, 'precious', { config: { protection: 1 } }),
    ]);
    expect(d.changes.map((c) => [c.key, stepsOf(c)])).toEqual([['stopped-one', ['destroy']]]);
    expect(d.changes[0]!.claimedBy).toBe('its VMID is in the claimed range 100-3099');
    expect(d.warnings).toEqual([
      expect.stringContaining(
        "VM 3002 'precious' is claimed by the manifest (its VMID is in the claimed range 100-3099) but not in it, and has protection enabled; it is kept",
      ),
    ]);
  });

  it('matches guests by name (any case), by fixed VMID, and by service through the naming policy', () => {
    const fleet = fleetOf(
      '  - { name: WEB, memory: 2048 }\n  - { service: api, vmid: 1002, memory: 2048 }\n  - { service: queue, memory: 2048 }',
    );
    const d = diff(fleet, [vm(1001, 'web'), vm(1002, 'auto-api-1002'), vm(1003, 'auto-queue-1003')]);
    expect(d.changes).toEqual([]);
    expect(d.unchanged.map((u) => [u.key, u.vmid])).toEqual([
      ['WEB', 1001],
      ['api#1002', 1002],
      ['queue', 1003],
    ]);
  });

  it('refuses to guess: a renamed VMID, a template, several candidates', () => {
    const fleet = fleetOf('  - { name: web, vmid: 1001 }\n  - { name: tpl-debian-13 }\n  - { service: queue }');
    expect(problems(diff(fleet, [vm(1001, 'www'), vm(1003, 'auto-queue-1003'), vm(1004, 'auto-queue-1004')]))).toEqual([
      "guests.0.vmid: VM 1001 is named 'www', not 'web'; a manifest does not rename guests",
      "guests.1.name: VM 100 'tpl-debian-13' is a template; a manifest manages guests, not templates",
      "guests.2.service: several guests match: 1003 'auto-queue-1003', 1004 'auto-queue-1004'; give the entry a vmid",
    ]);
  });

  it('reads the configs of exactly the guests it compares: matched, claimed, and the templates it clones', () => {
    const fleet = fleetOf(
      '  - { name: web }\n  - { name: new, source: { template: tpl-debian-13 } }',
      'claims: { tags: [fleet] }',
    );
    const guests = [template, vm(1001, 'web'), vm(1002, 'tagged', { tags: ['fleet'] }), vm(1003, 'other')];
    expect(guestsToInspect(fleet, guests, 'auto-{service}-{vmid}')).toEqual([100, 1001, 1002]);
  });
});

describe('creating a guest', () => {
  it('clones the template, configures what differs from it, records the source, and starts it', () => {
    const fleet = fleetOf(
      `  - name: web
    source: { template: tpl-debian-13 }
    memory: 4G
    tags: [web]
    cloud_init: { user: debian, ip: 10.0.0.5/24, gateway: 10.0.0.1, ssh_keys: ['ssh-ed25519 AAAAC3Nza me@host'] }
    power: running`,
      'claims: { tags: [fleet], vmids: 3000-3099 }',
    );
    const c = only(diff(fleet, []));
    expect(c).toMatchObject({
      key: 'web',
      action: 'create',
      vmid: 3000,
      name: 'web',
      risk: 'medium',
      lane: 'template:100',
    });
    expect(c.steps).toEqual([
      expect.objectContaining({
        id: 'web/clone',
        action: 'clone',
        vmid: 3000,
        node: 'pve01',
        params: { newid: 3000, name: 'web', full: true, ...(c.node === 'pve01' ? {} : { target: c.node }) },
      }),
      expect.objectContaining({
        id: 'web/configure',
        action: 'config',
        params: {
          memory: '4096',
          tags: 'fleet;web',
          ciuser: 'debian',
          sshkeys: encodeSshKeys(['ssh-ed25519 AAAAC3Nza me@host']),
          ipconfig0: 'ip=10.0.0.5/24,gw=10.0.0.1',
          description: 'proxmox-manager source: template:tpl-debian-13',
        },
      }),
      expect.objectContaining({ id: 'web/start', action: 'start' }),
    ]);
    expect(c.create).toMatchObject({
      kind: 'clone',
      type: 'qemu',
      vmid: 3000,
      vmidFixed: false,
      range: { min: 3000, max: 3099 },
      name: { fixed: 'web' },
      source: { vmid: 100, name: 'tpl-debian-13', node: 'pve01' },
    });
  });

  it('takes the lowest free VMID of the claimed range (or the environment’s), skipping VMIDs in use or fixed in the manifest', () => {
    const claimed = fleetOf(
      '  - { name: a, source: { template: tpl-debian-13 } }\n  - { name: b, vmid: 3001, source: { template: tpl-debian-13 } }\n  - { name: c, source: { template: tpl-debian-13 } }',
      'claims: { vmids: 3000-3099 }',
    );
    const d = diff(claimed, [vm(3000, 'someone-else')]);
    expect(d.changes.filter((c) => c.action === 'create').map((c) => [c.key, c.vmid, c.create!.vmidFixed])).toEqual([
      ['a', 3002, false],
      ['b', 3001, true],
      ['c', 3003, false],
    ]);
    expect(
      diff(fleetOf('  - { name: a, source: { template: tpl-debian-13 } }'), [vm(1000, 'x')]).changes[0]!.vmid,
    ).toBe(1001);
    expect(
      problems(
        diff(fleetOf('  - { name: a, source: { template: tpl-debian-13 } }', 'claims: { vmids: 3000-3000 }'), [
          vm(3000, 'a-not'),
        ]),
      ),
    ).toEqual(['guests.0.vmid: no free VMID left in 3000-3000']);
  });

  it('names a service’s guest by the naming policy, with its VMID', () => {
    const c = only(diff(fleetOf('  - { service: api, source: { template: tpl-debian-13 } }'), []));
    expect([c.key, c.name, c.create!.name]).toEqual([
      'api',
      'auto-api-1000',
      { pattern: 'auto-{service}-{vmid}', service: 'api' },
    ]);
  });

  it('creates a container from its template archive with the exact parameters', () => {
    const c = only(
      diff(
        fleetOf(`  - name: cache
    kind: lxc
    source: { ostemplate: 'local:vztmpl/debian-12.tar.zst' }
    cores: 1
    memory: 1G
    disks: [{ size: 8, storage: local-lvm }, { size: 20, path: /var/cache }]
    network: [{ bridge: vmbr1, vlan: 20, ip: 10.0.20.5/24, gateway: 10.0.20.1 }]
    onboot: true`),
        [],
      ),
    );
    expect(c.steps.map((s) => [s.action, s.params])).toEqual([
      [
        'create',
        {
          vmid: 1000,
          hostname: 'cache',
          ostemplate: 'local:vztmpl/debian-12.tar.zst',
          cores: 1,
          memory: 1024,
          swap: 512,
          unprivileged: true,
          rootfs: 'local-lvm:8',
          mp0: 'local-lvm:20,mp=/var/cache',
          net0: 'name=eth0,bridge=vmbr1,gw=10.0.20.1,ip=10.0.20.5/24,tag=20',
          onboot: true,
        },
      ],
      ['config', { description: 'proxmox-manager source: ostemplate:local:vztmpl/debian-12.tar.zst' }],
    ]);
  });

  it('imports a disk image on the node that has it, and boots an installer ISO from the CD drive', () => {
    const d = diff(
      fleetOf(`  - { name: img, source: { image: 'local:import/cloud.qcow2' }, disks: [{ size: 10 }], cloud_init: { user: debian } }
  - { name: iso, source: { iso: 'local:iso/installer.iso' }, disks: [{ size: 16, storage: local-lvm }], power: stopped }`),
      [],
    );
    const [img, iso] = d.changes;
    expect(img!.node).toBe('pve02');
    expect(img!.steps[0]!.params).toMatchObject({
      scsi0: 'local-lvm:10,iothread=1,import-from=local:import/cloud.qcow2',
      ide2: 'local-lvm:cloudinit',
      boot: 'order=scsi0;net0',
      efidisk0: 'local-lvm:1,efitype=4m,pre-enrolled-keys=0',
      ciuser: 'debian',
      net0: 'virtio,bridge=vmbr0',
    });
    expect(iso!.node).toBe('pve03');
    expect(iso!.steps[0]!.params).toMatchObject({
      scsi0: 'local-lvm:16,iothread=1',
      ide2: 'local:iso/installer.iso,media=cdrom',
      boot: 'order=scsi0;ide2;net0',
    });
    expect(stepsOf(iso!)).toEqual(['create', 'configure']);
  });

  it('grows the clone’s disk past the template’s and refuses to shrink it', () => {
    const grow = only(
      diff(fleetOf('  - { name: db, source: { template: tpl-debian-13 }, disks: [{ size: 40 }] }'), []),
    );
    expect(grow.steps.find((s) => s.action === 'resize-disk')).toMatchObject({
      id: 'db/resize-scsi0',
      params: { disk: 'scsi0', size: '40G' },
    });
    expect(
      problems(diff(fleetOf('  - { name: db, source: { template: tpl-debian-13 }, disks: [{ size: 4 }] }'), [])),
    ).toEqual(["guests.0.disks.0.size: template tpl-debian-13's scsi0 is 8G; a clone's disks only grow"]);
  });

  it('places new guests under the memory headroom, spreads an anti-affinity group, and honours pins and sources', () => {
    const d = diff(
      fleetOf(`  - { name: w1, source: { template: tpl-debian-13 }, placement: { anti_affinity: web } }
  - { name: w2, source: { template: tpl-debian-13 }, placement: { anti_affinity: web } }
  - { name: w3, source: { template: tpl-debian-13 }, placement: { anti_affinity: web } }
  - { name: pinned, source: { template: tpl-debian-13 }, node: pve02 }
  - { name: among, source: { template: tpl-debian-13 }, placement: { nodes: [pve03] } }`),
      [],
    );
    expect(new Set(d.changes.slice(0, 3).map((c) => c.node)).size).toBe(3);
    expect(d.changes.slice(3).map((c) => [c.key, c.node])).toEqual([
      ['pinned', 'pve02'],
      ['among', 'pve03'],
    ]);
    const full = diff(fleetOf('  - { name: huge, source: { template: tpl-debian-13 }, memory: 60G }'), []);
    expect(problems(full)[0]).toMatch(/^guests\.0\.placement: no node can take it: /);
  });

  it('says what is missing to create a guest', () => {
    const d = diff(
      fleetOf(`  - { name: a }
  - { name: b, source: { template: tpl-nope } }
  - { name: c, source: { image: 'local:import/missing.qcow2' } }
  - { name: d, source: { template: tpl-debian-13 }, node: pve09 }
  - { name: e, kind: lxc, source: { ostemplate: 'local:vztmpl/debian-12.tar.zst' }, disks: [{ size: 8, storage: nfs-x }] }`),
      [],
    );
    expect(problems(d)).toEqual([
      "guests.3.node: no node 'pve09' in environment home",
      "guests.0.source: 'a' does not exist; creating it needs a source",
      "guests.1.source.template: no VM template 'tpl-nope' in environment home",
      "guests.2.source.image: no volume 'local:import/missing.qcow2' on any node of environment home",
      "guests.4.disks.0.storage: no storage 'nfs-x' for container volumes in environment home",
    ]);
    expect(d.changes).toEqual([]);
  });
});

describe('changing a guest in place', () => {
  it('sets the memory of a running VM with the plan’s digest, after a safety snapshot, and reboots it', () => {
    const c = only(diff(fleetOf('  - { name: web, memory: 4G }'), [vm(1001, 'web')]));
    expect(c).toMatchObject({ action: 'update', restart: true, risk: 'medium', before: { memory: '2048' } });
    expect(c.fields).toEqual([{ field: 'memory', from: '2048 MiB', to: '4096 MiB', restart: true }]);
    expect(c.steps.map((s) => [s.id, s.action, s.params])).toEqual([
      ['web/snapshot', 'snapshot', { snapname: 'pm_pre_reconcile_20260102030405' }],
      ['web/config', 'config', { memory: '4096', digest: 'digest-1001' }],
      ['web/reboot', 'reboot', undefined],
    ]);
  });

  it('needs no restart for a stopped VM, for a container, or with memory hotplug', () => {
    const stopped = only(diff(fleetOf('  - { name: web, memory: 4G }'), [vm(1001, 'web', { status: 'stopped' })]));
    expect([stopped.restart, stepsOf(stopped)]).toEqual([false, ['snapshot', 'config']]);
    const container = only(diff(fleetOf('  - { name: cache, kind: lxc, memory: 1G, cores: 2 }'), [ct(2001, 'cache')]));
    expect([container.restart, container.steps[1]!.params]).toEqual([
      false,
      { cores: 2, memory: 1024, digest: 'digest-2001' },
    ]);
    const hotplug = only(
      diff(fleetOf('  - { name: web, memory: 4G }'), [
        vm(1001, 'web', { config: { hotplug: 'network,disk,memory,cpu' } }),
      ]),
    );
    expect(hotplug.restart).toBe(false);
  });

  it('changes tags without a snapshot, at low risk; and skips the snapshot when the policy says so', () => {
    const tags = only(
      diff(fleetOf('  - { name: web, tags: [web, prod] }'), [vm(1001, 'web', { config: { tags: 'web' } })]),
    );
    expect(tags).toMatchObject({
      risk: 'low',
      restart: false,
      fields: [{ field: 'tags', from: 'web', to: 'prod, web' }],
    });
    expect(tags.steps.map((s) => s.params)).toEqual([{ tags: 'prod;web', digest: 'digest-1001' }]);
    const noSnapshot = only(
      diff(
        fleetOf('  - { name: web, memory: 4G }'),
        [vm(1001, 'web')],
        context({ policy: SafetyPolicy.parse({ snapshot_before_change: false }) }),
      ),
    );
    expect(stepsOf(noSnapshot)).toEqual(['config', 'reboot']);
  });

  it('compares only the managed fields, yet always keeps the claim tag on its guests', () => {
    const fleet = fleetOf('  - { name: web, memory: 4G, cores: 8, managed: [cores] }', 'claims: { tags: [fleet] }');
    const c = only(diff(fleet, [vm(1001, 'web', { config: { cores: 8, tags: 'web' } })]));
    expect(c.fields).toEqual([{ field: 'tags', from: 'web', to: 'fleet, web' }]);
    const removed = only(diff(fleetOf('  - { name: web, tags: [] }'), [vm(1001, 'web', { config: { tags: 'old' } })]));
    expect(removed.steps[0]!.params).toEqual({ delete: 'tags', digest: 'digest-1001' });
  });

  it('starts and shuts down guests to their power state', () => {
    const start = only(diff(fleetOf('  - { name: web, power: running }'), [vm(1001, 'web', { status: 'stopped' })]));
    expect([start.risk, stepsOf(start), start.fields]).toEqual([
      'low',
      ['start'],
      [{ field: 'power', from: 'stopped', to: 'running' }],
    ]);
    const stop = only(diff(fleetOf('  - { name: web, power: stopped }'), [vm(1001, 'web')]));
    expect([stop.risk, stop.steps[0]!.params]).toEqual(['medium', { timeout: 180, forceStop: false }]);
    const both = only(diff(fleetOf('  - { name: web, power: stopped, memory: 4G }'), [vm(1001, 'web')]));
    expect(stepsOf(both)).toEqual(['snapshot', 'config', 'shutdown']);
  });

  it('migrates a guest back to its pinned node (high risk)', () => {
    const c = only(diff(fleetOf('  - { name: web, node: pve02 }'), [vm(1001, 'web')]));
    expect([c.risk, c.steps[0]]).toEqual([
      'high',
      expect.objectContaining({ action: 'migrate', target: 'pve02', params: { target: 'pve02', mode: 'online' } }),
    ]);
    expect(diff(fleetOf('  - { name: web, placement: { nodes: [pve01, pve02] } }'), [vm(1001, 'web')]).changes).toEqual(
      [],
    );
  });

  it('rewrites a NIC keeping its MAC and options, and untags it when the VLAN is gone', () => {
    const config = (c: GuestChange) => c.steps.find((s) => s.action === 'config')!.params;
    const qemu = only(diff(fleetOf('  - { name: web, network: [{ bridge: vmbr1, vlan: 30 }] }'), [vm(1001, 'web')]));
    expect(config(qemu)).toEqual({
      net0: 'virtio=BC:24:11:00:00:01,bridge=vmbr1,firewall=1,tag=30',
      digest: 'digest-1001',
    });
    expect([qemu.restart, stepsOf(qemu)]).toEqual([false, ['snapshot', 'config']]);
    const untag = only(
      diff(fleetOf('  - { name: web, network: [{ bridge: vmbr0 }] }'), [
        vm(1001, 'web', { config: { net0: 'virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=30,queues=4' } }),
      ]),
    );
    expect(config(untag)).toMatchObject({ net0: 'virtio=BC:24:11:00:00:01,bridge=vmbr0,queues=4' });
    const lxc = only(
      diff(
        fleetOf('  - { name: cache, kind: lxc, network: [{ bridge: vmbr0, ip: 10.0.0.9/24, gateway: 10.0.0.1 }] }'),
        [ct(2001, 'cache')],
      ),
    );
    expect(config(lxc)).toMatchObject({
      net0: 'name=eth0,bridge=vmbr0,gw=10.0.0.1,hwaddr=BC:24:11:00:00:02,ip=10.0.0.9/24,type=veth',
    });
  });

  it('changes cloud-init (taking effect at the next boot) and reads URL-encoded keys as PVE stores them', () => {
    const key = 'ssh-ed25519 AAAAC3Nza ops@example';
    const same = diff(fleetOf(`  - { name: web, cloud_init: { user: debian, ssh_keys: ['${key}'] } }`), [
      vm(1001, 'web', { config: { ciuser: 'debian', sshkeys: encodeSshKeys([key]) } }),
    ]);
    expect(same.changes).toEqual([]);
    const c = only(
      diff(
        fleetOf(
          '  - { name: web, cloud_init: { ip: 10.0.0.7/24, gateway: 10.0.0.1, nameserver: [10.0.0.1, 1.1.1.1] } }',
        ),
        [vm(1001, 'web', { config: { ipconfig0: 'ip=dhcp' } })],
      ),
    );
    expect(c.fields).toEqual([
      { field: 'cloud_init.ip', from: 'dhcp', to: '10.0.0.7/24 via 10.0.0.1', restart: true },
      { field: 'cloud_init.nameserver', from: '(none)', to: '10.0.0.1 1.1.1.1', restart: true },
    ]);
    expect(c.steps[1]!.params).toEqual({
      ipconfig0: 'ip=10.0.0.7/24,gw=10.0.0.1',
      nameserver: '10.0.0.1 1.1.1.1',
      digest: 'digest-1001',
    });
  });

  it('refuses, before any plan, a value PVE would refuse, naming the manifest field, the PVE key and the reason', () => {
    const update = diff(fleetOf('  - { name: web, cloud_init: { ip: 10.0.0.300/24 } }'), [
      vm(1001, 'web', { config: { ipconfig0: 'ip=dhcp' } }),
    ]);
    expect(problems(update)).toEqual([
      'guests.0.cloud_init.ip: PVE would refuse ipconfig0=ip=10.0.0.300/24: invalid format - format error; ' +
        'ipconfig0.ip: invalid format - value does not look like a valid ipv4 network configuration',
    ]);
    expect(update.changes).toEqual([]);
    const create = diff(
      fleetOf(
        "  - { name: box, kind: lxc, source: { ostemplate: 'local:vztmpl/debian-12.tar.zst' }, network: [{ ip: 192.168.1.2/33 }] }",
      ),
      [],
    );
    expect(problems(create)).toEqual([
      'guests.0.network.0: PVE would refuse net0=name=eth0,bridge=vmbr0,ip=192.168.1.2/33: invalid format - format error; ' +
        'net0.ip: invalid format - value does not look like a valid ipv4 network configuration',
    ]);
  });

  it('grows disks and adds new ones, but never shrinks or moves one', () => {
    const c = only(
      diff(fleetOf('  - { name: web, disks: [{ size: 64 }, { size: 100, storage: shared }] }'), [vm(1001, 'web')]),
    );
    expect(c.steps.map((s) => [s.action, s.params])).toEqual([
      ['snapshot', { snapname: 'pm_pre_reconcile_20260102030405' }],
      ['config', { scsi1: 'shared:100,iothread=1', digest: 'digest-1001' }],
      ['resize-disk', { disk: 'scsi0', size: '64G' }],
    ]);
    const shrink = diff(fleetOf('  - { name: web, disks: [{ size: 16, storage: shared }] }'), [vm(1001, 'web')]);
    expect(shrink.changes).toEqual([]);
    expect(shrink.warnings).toEqual([
      "web: VM 1001 'web': scsi0 is on local-lvm, the manifest says shared; move it in PVE (a reconcile does not move disks)",
      "web: VM 1001 'web': scsi0 is 32G, the manifest says 16G; disks only grow, so it stays as it is",
    ]);
  });

  it('keeps the recorded source when the description changes', () => {
    const c = only(
      diff(fleetOf('  - { name: web, description: Front door }'), [
        vm(1001, 'web', { config: { description: 'old words\nproxmox-manager source: template:tpl-debian-13' } }),
      ]),
    );
    expect(c.steps[0]!.params).toEqual({
      description: 'Front door\nproxmox-manager source: template:tpl-debian-13',
      digest: 'digest-1001',
    });
    expect(c.risk).toBe('low');
  });
});

describe('replacing a guest', () => {
  const recorded = (source: string) => ({ config: { description: `proxmox-manager source: ${source}` } });

  it('replaces a guest whose template changed: destroy the old one, clone the new one — high risk', () => {
    const fleet = fleetOf('  - { name: web, source: { template: tpl-talos }, power: running }');
    const talos = vm(101, 'tpl-talos', {
      template: true,
      status: 'stopped',
      config: { template: 1, scsi0: 'shared:base-101-disk-0,size=10G' },
    });
    const c = only(diff(fleet, [talos, vm(1001, 'web', recorded('template:tpl-debian-13'))]));
    expect(c).toMatchObject({
      action: 'replace',
      vmid: 1001,
      risk: 'high',
      replacement: { vmid: 1000, name: 'web', kind: 'qemu' },
    });
    expect(c.fields[0]).toEqual({
      field: 'source',
      from: 'template:tpl-debian-13',
      to: 'template:tpl-talos',
      replaces: true,
    });
    expect(stepsOf(c)).toEqual(['old-stop', 'old-destroy', 'clone', 'configure', 'start']);
    expect(c.steps[1]).toMatchObject({ action: 'destroy', vmid: 1001, name: 'web' });
    expect(c.steps[2]).toMatchObject({ action: 'clone', vmid: 1000, params: { newid: 1000, name: 'web' } });
  });

  it('replaces a guest whose kind changed, keeping a fixed VMID', () => {
    const c = only(
      diff(
        fleetOf("  - { name: svc, vmid: 1001, kind: lxc, source: { ostemplate: 'local:vztmpl/debian-12.tar.zst' } }"),
        [vm(1001, 'svc')],
      ),
    );
    expect(c).toMatchObject({ action: 'replace', replacement: { vmid: 1001, kind: 'lxc' } });
    expect(c.fields[0]).toEqual({ field: 'kind', from: 'qemu', to: 'lxc', replaces: true });
  });

  it('does not replace a guest whose source it cannot know, nor a protected one', () => {
    const unknown = diff(fleetOf('  - { name: web, source: { template: tpl-debian-13 } }'), [vm(1001, 'web')]);
    expect(unknown.changes).toEqual([]);
    expect(unknown.warnings).toEqual([
      "web: VM 1001 'web' does not record what it was created from; its source is not compared",
    ]);
    const talos = vm(101, 'tpl-talos', { template: true, status: 'stopped' });
    const protectedGuest = vm(1001, 'web', {
      config: { protection: 1, description: 'proxmox-manager source: template:tpl-debian-13' },
    });
    const kept = diff(fleetOf('  - { name: web, source: { template: tpl-talos } }'), [talos, protectedGuest]);
    expect(kept.changes).toEqual([]);
    expect(kept.warnings[0]).toMatch(/must be replaced \(source changed\) but has protection enabled/);
  });
});

describe('order', () => {
  it('deletes first, then guests wave by wave after what they depend on', () => {
    const fleet = fleetOf(
      `  - { name: web, source: { template: tpl-debian-13 }, depends_on: [api] }
  - { service: api, vmid: 1200, source: { template: tpl-debian-13 }, depends_on: [db] }
  - { name: db, source: { template: tpl-debian-13 } }
  - { name: cache, kind: lxc, source: { ostemplate: 'local:vztmpl/debian-12.tar.zst' } }`,
      'claims: { tags: [fleet] }',
    );
    const d = diff(fleet, [vm(1500, 'old', { tags: ['fleet'] })]);
    expect(d.changes.map((c) => [c.key, c.wave, c.dependsOn])).toEqual([
      ['old', 0, []],
      ['db', 1, []],
      ['cache', 1, []],
      ['api#1200', 2, ['db']],
      ['web', 3, ['api#1200']],
    ]);
  });
});

/** What PVE would hold after the steps ran: a minimal model of create, clone, config, resize, start. */
function applied(d: FleetDiff, guests: ObservedGuest[]): ObservedGuest[] {
  const world = new Map([template, ...guests].map((g) => [g.vmid, structuredClone(g)]));
  for (const c of d.changes) {
    for (const s of c.steps) {
      const p = s.params ?? {};
      const target = world.get(s.vmid!);
      switch (s.action) {
        case 'destroy':
          world.delete(s.vmid!);
          break;
        case 'clone': {
          const source = world.get(c.create!.source!.vmid)!;
          const config = { ...source.config!, name: s.name!, template: undefined };
          world.set(s.vmid!, {
            ...source,
            vmid: s.vmid!,
            name: s.name!,
            node: c.create!.node,
            template: false,
            status: 'stopped',
            config,
          });
          break;
        }
        case 'create': {
          const { vmid, name, hostname, ...rest } = p;
          const config: PveConfig = {};
          for (const [k, v] of Object.entries(rest)) config[k] = typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
          for (const [k, v] of Object.entries(config)) {
            const drive = /^(\S+?):(\d+)(,.*)?$/.exec(v as string);
            if (/^(scsi\d|rootfs|mp\d)$/.test(k) && drive)
              config[k] =
                `${drive[1]}:vm-${vmid}-disk-${k},size=${drive[2]}G${(drive[3] ?? '').replace(/,import-from=[^,]+/, '')}`;
          }
          world.set(Number(vmid), {
            ...vm(Number(vmid), String(name ?? hostname)),
            kind: c.kind,
            node: c.create!.node,
            status: 'stopped',
            config: { ...config, [c.kind === 'qemu' ? 'name' : 'hostname']: String(name ?? hostname) },
          });
          break;
        }
        case 'config':
          for (const [k, v] of Object.entries(p)) {
            if (k === 'digest') continue;
            if (k === 'delete') for (const key of String(v).split(',')) delete target!.config![key];
            else target!.config![k] = typeof v === 'boolean' ? (v ? '1' : '0') : String(v);
          }
          target!.config!['digest'] = `${target!.config!['digest']}+`;
          break;
        case 'resize-disk': {
          const drive = parseDrive(String(target!.config![String(p['disk'])]));
          target!.config![String(p['disk'])] = `${drive.volid},size=${p['size']}`;
          break;
        }
        case 'start':
        case 'reboot':
          target!.status = 'running';
          break;
        case 'shutdown':
          target!.status = 'stopped';
          break;
        case 'migrate':
          target!.node = String(p['target']);
          break;
      }
    }
  }
  for (const g of world.values())
    g.tags = String(g.config!['tags'] ?? '')
      .split(';')
      .filter(Boolean);
  return [...world.values()].filter((g) => g.vmid !== template.vmid);
}

describe('an applied plan', () => {
  it('leaves nothing to do: creates, in-place changes, replacements and deletes plan zero changes afterwards', () => {
    const talos = vm(101, 'tpl-talos', {
      template: true,
      status: 'stopped',
      config: { template: 1, scsi0: 'shared:base-101-disk-0,size=10G' },
    });
    const fleet = fleetOf(
      `  - { name: web, source: { template: tpl-debian-13 }, memory: 4G, disks: [{ size: 20 }], tags: [web], cloud_init: { user: debian, ip: dhcp }, power: running }
  - { service: api, source: { template: tpl-talos }, network: [{ bridge: vmbr1, vlan: 7, firewall: true }], power: running }
  - { name: cache, kind: lxc, source: { ostemplate: 'local:vztmpl/debian-12.tar.zst' }, memory: 1G, disks: [{ size: 8 }, { size: 4, path: /srv }], power: running }
  - { name: img, source: { image: 'local:import/cloud.qcow2' }, disks: [{ size: 12 }], onboot: true }
  - { name: db, memory: 8G, cores: 4, description: Primary, power: stopped, tags: [db] }
  - { name: moved, source: { template: tpl-talos } }`,
      'claims: { tags: [fleet], vmids: 3000-3099 }',
    );
    const before = [
      talos,
      vm(1001, 'db', { config: { tags: 'db' } }),
      vm(1002, 'moved', { config: { description: 'proxmox-manager source: template:tpl-debian-13' } }),
      vm(3050, 'leftover'),
    ];
    const plan = diff(fleet, before);
    expect(plan.problems).toEqual([]);
    expect(plan.changes.map((c) => [c.key, c.action]).sort()).toEqual([
      ['api', 'create'],
      ['cache', 'create'],
      ['db', 'update'],
      ['img', 'create'],
      ['leftover', 'delete'],
      ['moved', 'replace'],
      ['web', 'create'],
    ]);
    const after = diff(fleet, applied(plan, before));
    expect(after.problems).toEqual([]);
    expect(after.changes).toEqual([]);
    expect(after.unchanged.map((u) => u.key)).toEqual(['web', 'api', 'cache', 'img', 'db', 'moved']);
    expect(renderPlan(after)).toContain('No changes. The 6 guests of the manifest match the cluster.');
  });
});

describe('the rendered plan', () => {
  it('reads like terraform plan: a symbol per guest, the fields that change and why, the totals', () => {
    const talos = vm(101, 'tpl-talos', { template: true, status: 'stopped' });
    const fleet = fleetOf(
      `  - { name: new, source: { template: tpl-debian-13 } }
  - { name: web, memory: 4G }
  - { name: app, source: { template: tpl-talos } }`,
      'claims: { tags: [fleet] }',
    );
    const text = renderPlan(
      diff(fleet, [
        talos,
        vm(1001, 'web', { config: { tags: 'fleet' } }),
        vm(1002, 'app', { config: { tags: 'fleet', description: 'proxmox-manager source: template:tpl-debian-13' } }),
        vm(1003, 'gone', { status: 'stopped', config: { tags: 'fleet' } }),
      ]),
    );
    expect(text).toContain(
      '  - guest "gone" will be destroyed (VM 1003 on pve01): the manifest claims it — it carries the claimed tag \'fleet\' — and does not list it',
    );
    expect(text).toContain('  + guest "new" will be created (VM 1000 on ');
    expect(text).toContain('  ~ guest "web" will be updated in place (VM 1001 on pve01, restarted)');
    expect(text).toContain('      ~ memory = "2048 MiB" -> "4096 MiB"  # takes effect after a restart');
    expect(text).toContain('-/+ guest "app" must be replaced (VM 1002 on pve01 -> VM 1004 \'app\' on ');
    expect(text).toContain('      ~ source = "template:tpl-debian-13" -> "template:tpl-talos"  # forces replacement');
    expect(text).toContain('Plan: 1 to add, 1 to change, 1 to replace, 1 to destroy; 0 unchanged.');
  });
});
