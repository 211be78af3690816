/**
 * Fleet manifests as files: what a valid one means (defaults, managed fields, claims across
 * files), and how an invalid one is refused — every problem at once, as `file:path: reason`
 * with its line.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  formatProblem,
  loadFleet,
  ManifestError,
  parseManifests,
  type ManifestSource,
} from '../../lib/manifest/load.js';

function problemsOf(sources: ManifestSource[]): string[] {
  try {
    parseManifests(sources);
  } catch (err) {
    if (err instanceof ManifestError) return err.problems.map(formatProblem);
    throw err;
  }
  throw new Error('the manifest was accepted');
}

const one = (text: string) => parseManifests([{ name: 'm.yaml', text }]).get('home')!;

describe('a valid manifest', () => {
  it('merges the file defaults into each guest, the guest winning', () => {
    const fleet = one(`
environment: home
defaults: { source: { template: tpl-debian-13 }, cores: 2, memory: 2G, power: running }
guests:
  - { name: web-01, memory: 4096 }
  - { name: cache, kind: lxc, source: { ostemplate: 'local:vztmpl/debian.tar.zst' }, cores: 1 }
`);
    expect(fleet.guests.map((g) => [g.name, g.kind, g.cores, g.memory, g.power])).toEqual([
      ['web-01', 'qemu', 2, 4096, 'running'],
      ['cache', 'lxc', 1, 2048, 'running'],
    ]);
    expect(fleet.guests[1]!.source).toEqual({ ostemplate: 'local:vztmpl/debian.tar.zst' });
  });

  it('manages every field a guest sets, unless `managed` narrows them', () => {
    const fleet = one(`
environment: home
guests:
  - { name: a, memory: 1G, cores: 1, tags: [x], node: pve01 }
  - { name: b, memory: 1G, cores: 1, onboot: true, managed: [memory] }
`);
    expect(fleet.guests[0]!.managed).toEqual(['node', 'cores', 'memory', 'tags']);
    expect(fleet.guests[1]!.managed).toEqual(['memory']);
  });

  it('reads sizes with units: memory in MiB, disks in whole GiB', () => {
    const fleet = one(`
environment: home
guests:
  - { name: a, kind: lxc, memory: 512M, swap: 1G, disks: [{ size: 8G }, { size: 1T, path: /srv }] }
  - { name: b, memory: 3072, disks: [{ size: 40 }] }
`);
    expect(fleet.guests.map((g) => [g.memory, g.swap, g.disks?.map((d) => d.size)])).toEqual([
      [512, 1024, [8, 1024]],
      [3072, undefined, [40]],
    ]);
  });

  it('adds up the claims of all files of an environment and keeps files of other environments apart', () => {
    const fleets = parseManifests([
      { name: 'a.yaml', text: 'environment: home\nclaims: { tags: [Fleet], vmids: 3000-3099 }\nguests: [{ name: a }]' },
      { name: 'b.yaml', text: 'environment: home\nclaims: { tags: [web] }\nguests: [{ name: b }]' },
      { name: 'c.yaml', text: 'environment: lab\nguests: [{ name: a }]' },
    ]);
    expect(fleets.get('home')!.claims).toEqual({ tags: ['fleet', 'web'], vmids: [{ min: 3000, max: 3099 }] });
    expect(fleets.get('home')!.guests.map((g) => [g.name, g.file, g.vmidRange])).toEqual([
      ['a', 'a.yaml', { min: 3000, max: 3099 }],
      ['b', 'b.yaml', undefined],
    ]);
    expect(fleets.get('lab')!.guests).toHaveLength(1);
  });

  it('has a digest that changes with any file of its environment', () => {
    const digest = (text: string) => parseManifests([{ name: 'a.yaml', text }]).get('home')!.digest;
    expect(digest('environment: home\nguests: [{ name: a }]')).toMatch(/^[0-9a-f]{64}$/);
    expect(digest('environment: home\nguests: [{ name: a }]')).not.toBe(
      digest('environment: home\nguests: [{ name: b }]'),
    );
  });

  it('ships an example for the homelab', () => {
    const text = readFileSync(new URL('../../manifests/example.yaml', import.meta.url), 'utf8');
    const fleet = parseManifests([{ name: 'example.yaml', text }]).get('home')!;
    expect(fleet.guests.length).toBeGreaterThanOrEqual(6);
    expect(new Set(fleet.guests.map((g) => g.kind))).toEqual(new Set(['qemu', 'lxc']));
  });
});

describe('an invalid manifest', () => {
  it('is refused with every problem, each as file:path: reason with its line', () => {
    const problems = problemsOf([
      {
        name: 'fleet.yaml',
        text: `environment: home
guests:
  - name: web-01
    memory: lots
    cores: 0
  - name: cache
    kind: lxc
    cloud_init: { user: debian }
    network: [{ model: virtio }]
  - service: Bad_Service
  - name: both
    service: api
    colour: blue
`,
      },
    ]);
    expect(problems).toEqual([
      "fleet.yaml:guests.0.memory: 'lots' is not a memory size such as 2048 (MiB), 512M or 4G (line 4)",
      'fleet.yaml:guests.0.cores: Too small: expected number to be >=1 (line 5)',
      'fleet.yaml:guests.1.cloud_init: containers take their addresses from network[].ip, not cloud-init (line 8)',
      'fleet.yaml:guests.1.network.0.model: containers have veth interfaces; a model is for VMs (line 9)',
      'fleet.yaml:guests.2.service: must be a service name: lowercase letters, digits and dashes (at most 32) (line 10)',
      'fleet.yaml:guests.3: give the guest a name or a service (exactly one) (line 11)',
      'fleet.yaml:guests.3.colour: unknown field (line 13)',
    ]);
  });

  it('names YAML syntax errors and empty files', () => {
    expect(problemsOf([{ name: 'bad.yaml', text: 'environment: home\nguests:\n  - { name: a\n' }])[0]).toMatch(
      /^bad\.yaml:\(yaml\): .+ \(line \d\)$/,
    );
    expect(problemsOf([{ name: 'empty.yaml', text: '# nothing yet\n' }])).toEqual([
      'empty.yaml:(root): the file is empty; a manifest names its environment and guests',
    ]);
  });

  it('checks sources, disks and cloud-init against the guest kind', () => {
    expect(
      problemsOf([
        {
          name: 'm.yaml',
          text: `environment: home
guests:
  - { name: a, source: { template: tpl, iso: 'local:iso/x.iso' } }
  - { name: b, kind: lxc, source: { template: tpl } }
  - { name: c, source: { ostemplate: 'local:vztmpl/x.tar.zst' } }
  - { name: d, source: { iso: 'local:iso/x.iso' }, cloud_init: { ip: dhcp } }
  - { name: e, cloud_init: { ip: dhcp, gateway: 10.0.0.1 } }
  - { name: f, kind: lxc, disks: [{ size: 8 }, { size: 8 }] }
  - { name: g, disks: [{ slot: rootfs, size: 8 }, { slot: scsi1, size: 1.5 }, { slot: scsi1, size: 2 }] }
  - { name: h, node: pve01, placement: { nodes: [pve02] } }
  - { name: i, memory: 1G, managed: [memory, cores] }
`,
        },
      ]).map((p) => p.replace(/ \(line \d+\)$/, '')),
    ).toEqual([
      'm.yaml:guests.0.source: name exactly one of template, image, iso, ostemplate (got template, iso)',
      'm.yaml:guests.1.source: a container is created from an ostemplate',
      'm.yaml:guests.2.source.ostemplate: only containers are created from a template archive',
      'm.yaml:guests.3.cloud_init: cloud-init needs a template or an image source, not an installer ISO',
      'm.yaml:guests.4.cloud_init.gateway: a gateway goes with a static ip',
      'm.yaml:guests.5.disks.1.path: a mount point needs its path',
      "m.yaml:guests.6.disks.1.size: '1.5' is not a disk size in whole GiB such as 32 or 32G (1G to 64T)",
      "m.yaml:guests.6.disks.0.slot: 'rootfs' is not a VM disk slot",
      'm.yaml:guests.6.disks.2.slot: slot scsi1 is listed twice',
      'm.yaml:guests.7.placement: pin a node or give a placement rule, not both',
      "m.yaml:guests.8.managed.1: 'cores' is managed, but the guest does not set it",
    ]);
  });

  it('refuses names, VMIDs and services used twice across files, and dependencies that cannot be met', () => {
    expect(
      problemsOf([
        {
          name: 'a.yaml',
          text: 'environment: home\nguests:\n  - { name: web, vmid: 3000 }\n  - { service: api }\n  - { name: db, depends_on: [cache] }',
        },
        {
          name: 'b.yaml',
          text: 'environment: home\nguests:\n  - { name: WEB }\n  - { name: x, vmid: 3000 }\n  - { service: api }\n  - { name: cache, depends_on: [db] }\n  - { name: y, depends_on: [y, nope] }',
        },
      ]),
    ).toEqual([
      'a.yaml:guests.2.depends_on: dependency cycle: db -> cache -> db (line 5)',
      "b.yaml:guests.0.name: name 'WEB' is also used by a.yaml:guests.0 (line 3)",
      'b.yaml:guests.1.vmid: vmid 3000 is also used by a.yaml:guests.0 (line 4)',
      "b.yaml:guests.2.service: service 'api' without a vmid (give each a vmid to have several) is also used by a.yaml:guests.1 (line 5)",
      'b.yaml:guests.4.depends_on.0: a guest cannot depend on itself (line 7)',
      "b.yaml:guests.4.depends_on.1: no guest 'nope' in this environment's manifest (line 7)",
    ]);
  });
});

describe('a manifest folder', () => {
  it('is every YAML file in it; a missing folder is a problem; an environment no file names has no guests', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pm-manifest-'));
    try {
      await mkdir(join(dir, 'fleet'));
      await writeFile(join(dir, 'fleet', 'a.yaml'), 'environment: home\nguests: [{ name: a }]');
      await writeFile(join(dir, 'fleet', 'b.yml'), 'environment: home\nguests: [{ name: b }]');
      await writeFile(join(dir, 'fleet', 'notes.txt'), 'not a manifest');
      expect((await loadFleet(join(dir, 'fleet'), 'home')).guests.map((g) => g.name)).toEqual(['a', 'b']);
      expect(await loadFleet(join(dir, 'fleet'), 'lab')).toMatchObject({ guests: [], files: [] });
      await expect(loadFleet(join(dir, 'missing'), 'home')).rejects.toThrow(/missing:\(folder\): does not exist/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
