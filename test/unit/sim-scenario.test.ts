import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generateScenario } from '../../sim/scenario-generate.js';
import { loadScenarioFromClusterResources } from '../../sim/scenario-import.js';
import { loadScenarioFile, parseScenario, ScenarioError, type Scenario } from '../../sim/scenario.js';
import { parseSize } from '../../sim/units.js';

const homelab = fileURLToPath(new URL('../../sim/scenarios/homelab.yaml', import.meta.url));

const minimal = (): Scenario => ({
  nodes: [{ name: 'pve1' }],
  storages: [{ id: 'local-lvm', type: 'lvmthin', content: ['images', 'rootdir'], size: '1T' }],
  guests: [{ vmid: 100, name: 'vm', node: 'pve1', disks: [{ storage: 'local-lvm', size: '32G' }] }],
});

function issuesOf(input: unknown): string[] {
  try {
    parseScenario(input);
  } catch (err) {
    if (err instanceof ScenarioError) return [...err.issues];
    throw err;
  }
  return [];
}

describe('scenario files', () => {
  it('loads the homelab: three nodes, shared and local storage, templates, containers, HA, passthrough', async () => {
    const s = await loadScenarioFile(homelab);
    expect(s.nodes.map((n) => n.name)).toEqual(['pve01', 'pve02', 'pve03']);
    expect(s.guests.length).toBeGreaterThanOrEqual(24);
    expect(s.guests.filter((g) => g.template).length).toBeGreaterThanOrEqual(1);
    expect(s.guests.some((g) => g.type === 'lxc')).toBe(true);
    expect(s.guests.some((g) => g.ha !== false)).toBe(true);
    expect(s.guests.some((g) => g.hostpci.length > 0)).toBe(true);
    expect(s.guests.some((g) => g.status === 'stopped')).toBe(true);
    expect(s.storages.map((st) => st.id)).toEqual(['local', 'local-lvm', 'shared']);
    expect(s.tokens[0]!.id).toBe('automation@pve!pm');
  });

  it('reports malformed values as path: reason', () => {
    const bad = minimal();
    bad.guests = [
      { vmid: 101, name: 'c', node: 'pve1', memory: 'lots' },
      { vmid: 42, name: 'd', node: 'pve1' },
    ];
    bad.tokens = [{ id: 'automation', secret: 'long-enough-secret', acl: [{ path: '/', roles: ['Administrator'] }] }];
    expect(issuesOf(bad)).toEqual([
      "guests.0.memory: 'lots' is not a memory size such as 4096 (MiB) or 4G",
      'guests.1.vmid: Too small: expected number to be >=100',
      'tokens.0.id: must be a token id such as automation@pve!pm',
    ]);
  });

  it('reports every broken cross-reference as path: reason', () => {
    const bad = minimal();
    bad.guests = [
      { vmid: 100, name: 'a', node: 'pve9', disks: [] },
      { vmid: 100, name: 'b', node: 'pve1', disks: [{ storage: 'nope', size: '1G' }] },
    ];
    bad.tokens = [{ id: 'automation@pve!pm', secret: 'long-enough-secret', acl: [{ path: '/', roles: ['Wizard'] }] }];
    expect(issuesOf(bad)).toEqual([
      "guests.0.node: unknown node 'pve9'",
      'guests.1.vmid: duplicate vmid 100',
      "guests.1.disks.0.storage: unknown storage 'nope'",
      "tokens.0.acl.0.roles.0: unknown role 'Wizard'",
    ]);
  });

  it('refuses unknown keys, naming them', () => {
    expect(issuesOf({ ...minimal(), colour: 'blue' })).toEqual(['(root): Unrecognized key: "colour"']);
  });

  it('names a storage that does not carry a disk content type', () => {
    const bad = minimal();
    bad.storages = [{ id: 'local', type: 'dir', content: ['iso'], size: '10G' }];
    bad.guests = [{ vmid: 100, name: 'vm', node: 'pve1', disks: [{ storage: 'local', size: '1G' }] }];
    expect(issuesOf(bad)).toContain(
      "guests.0.disks.0.storage: storage 'local' is not configured for content-type 'images'",
    );
  });

  it('says which file is broken', async () => {
    await expect(loadScenarioFile('/nonexistent/scenario.yaml')).rejects.toThrow(/ENOENT/);
  });
});

describe('scenario generator', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const a = generateScenario({ nodes: 4, vms: 100, seed: 7 });
    const b = generateScenario({ nodes: 4, vms: 100, seed: 7 });
    const c = generateScenario({ nodes: 4, vms: 100, seed: 8 });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(parseScenario(a).guests).toHaveLength(100);
  });

  it('builds large clusters that validate', () => {
    const s = parseScenario(generateScenario({ nodes: 64, vms: 5000, seed: 1 }));
    expect(s.nodes).toHaveLength(64);
    expect(s.guests).toHaveLength(5000);
    expect(new Set(s.guests.map((g) => g.vmid)).size).toBe(5000);
  });

  it('sizes the shared storage to hold its disks with room to spare, at any scale', () => {
    for (const [nodes, vms] of [
      [8, 350],
      [500, 15_000],
    ] as const) {
      const s = generateScenario({ nodes, vms, seed: 11 });
      const onShared = (s.guests ?? [])
        .flatMap((g) => g.disks ?? [])
        .filter((d) => d.storage === 'shared')
        .reduce((sum, d) => sum + parseSize(d.size)!, 0);
      const size = parseSize(s.storages!.find((st) => st.id === 'shared')!.size!)!;
      expect(size).toBeGreaterThanOrEqual(2 * onShared);
    }
  });

  it('reaches the requested memory pressure', () => {
    const s = parseScenario(
      generateScenario({ nodes: 3, vms: 180, seed: 3, nodeMemory: '128G', memoryPressure: 0.9, templates: 0 }),
    );
    const assignedMiB = s.guests.reduce((sum, g) => sum + g.memory, 0);
    expect(assignedMiB / (3 * 128 * 1024)).toBeGreaterThan(0.85);
    expect(assignedMiB / (3 * 128 * 1024)).toBeLessThan(0.95);
  });

  it('can fill nodes in order', () => {
    const s = parseScenario(generateScenario({ nodes: 2, vms: 120, seed: 2, templates: 0, placement: 'packed' }));
    expect(s.guests.filter((g) => g.node === 'pve01')).toHaveLength(60);
  });
});

describe('scenario from a real cluster/resources dump', () => {
  const dump = {
    data: [
      { id: 'node/a', type: 'node', node: 'a', status: 'online', maxcpu: 24, maxmem: 68_719_476_736 },
      { id: 'node/b', type: 'node', node: 'b', status: 'offline' },
      {
        id: 'storage/a/local-lvm',
        type: 'storage',
        node: 'a',
        storage: 'local-lvm',
        plugintype: 'lvmthin',
        shared: 0,
        content: 'rootdir,images',
        maxdisk: 1e12,
      },
      {
        id: 'storage/b/local-lvm',
        type: 'storage',
        node: 'b',
        storage: 'local-lvm',
        plugintype: 'lvmthin',
        shared: 0,
        content: 'rootdir,images',
        maxdisk: 1e12,
      },
      {
        id: 'storage/a/ceph',
        type: 'storage',
        node: 'a',
        storage: 'ceph',
        plugintype: 'rbd',
        shared: 1,
        content: 'images',
        maxdisk: 1e13,
      },
      {
        id: 'storage/b/ceph',
        type: 'storage',
        node: 'b',
        storage: 'ceph',
        plugintype: 'rbd',
        shared: 1,
        content: 'images',
        maxdisk: 1e13,
      },
      {
        id: 'qemu/100',
        type: 'qemu',
        vmid: 100,
        name: 'web 1',
        node: 'a',
        status: 'running',
        maxmem: 4_294_967_296,
        maxcpu: 2,
        maxdisk: 34_359_738_368,
        tags: 'prod;web',
        hastate: 'started',
      },
      {
        id: 'lxc/200',
        type: 'lxc',
        vmid: 200,
        name: 'ct',
        node: 'b',
        status: 'stopped',
        maxmem: 536_870_912,
        maxcpu: 1,
        maxdisk: 8_589_934_592,
      },
    ],
  };

  it('rebuilds nodes, storages and guests, putting VM disks on shared storage', () => {
    const s = loadScenarioFromClusterResources(dump);
    expect(s.nodes.map((n) => [n.name, n.online])).toEqual([
      ['a', true],
      ['b', false],
    ]);
    const vm = s.guests.find((g) => g.vmid === 100)!;
    expect(vm).toMatchObject({
      name: 'web-1',
      memory: 4096,
      cores: 2,
      tags: ['prod', 'web'],
      ha: { state: 'started' },
    });
    expect(vm.disks).toEqual([{ storage: 'ceph', size: 34_359_738_368 }]);
    expect(s.guests.find((g) => g.vmid === 200)!.disks[0]!.storage).toBe('local-lvm');
  });

  it('puts disks where the operator says', () => {
    const s = loadScenarioFromClusterResources(dump, { diskStorage: 'local-lvm' });
    expect(s.guests.find((g) => g.vmid === 100)!.disks[0]!.storage).toBe('local-lvm');
  });

  it('rejects input that is not a resource list', () => {
    expect(() => loadScenarioFromClusterResources({ nodes: 3 })).toThrow(ScenarioError);
  });
});
