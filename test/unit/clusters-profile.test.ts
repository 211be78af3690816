import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  listClusterProfiles,
  loadClusterProfile,
  parseClusterProfile,
  ProfileError,
  ProfileNotFoundError,
} from '../../lib/clusters/profile.js';

const repoClusters = fileURLToPath(new URL('../../clusters/', import.meta.url));

const minimal = {
  name: 'lab',
  environment: 'home',
  template: { vmid: 101, name: 'tpl-talos-1-11' },
  control_plane: { count: 3 },
  talos: { version: 'v1.11.3' },
};

function problemsOf(raw: unknown, expectedName?: string): string[] {
  try {
    parseClusterProfile(raw, 'test.yaml', expectedName);
  } catch (err) {
    if (err instanceof ProfileError) return err.problems;
    throw err;
  }
  return [];
}

describe('the shipped example profile', () => {
  it('clusters/lab.yaml is valid: three control planes and three workers from the simulator’s Talos template', async () => {
    const { profile, sha256 } = await loadClusterProfile(repoClusters, 'lab');
    expect(profile).toMatchObject({
      name: 'lab',
      template: { vmid: 101, name: 'tpl-talos-1-11' },
      control_plane: { count: 3 },
      workers: { count: 3 },
      placement: 'spread',
    });
    expect(sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('defaults are what Talos needs on Proxmox', () => {
  it('picks an x86-64-v2 CPU type, no memory hotplug, DHCP, spread placement and no workers', () => {
    const profile = parseClusterProfile(minimal, 'test.yaml');
    expect(profile.vm).toEqual({ cpu: 'x86-64-v2-AES', hotplug: ['disk', 'network', 'usb'] });
    expect(profile.network.addressing).toBe('dhcp');
    expect(profile.placement).toBe('spread');
    expect(profile.workers.count).toBe(0);
    expect(profile.control_plane).toEqual({ count: 3, cores: 2, memory_mb: 4096, disk_gb: 20 });
  });

  it('refuses CPU types Talos does not boot on, and memory hotplug', () => {
    const problems = problemsOf({ ...minimal, vm: { cpu: 'kvm64', hotplug: ['disk', 'memory'] } });
    expect(problems).toEqual([
      expect.stringMatching(/^vm\.cpu: Talos needs a CPU type of x86-64-v2 or newer/),
      'vm.hotplug: Talos does not support memory hotplug: leave out memory',
    ]);
  });
});

describe('an invalid profile', () => {
  it('reports every problem as `path: reason`', () => {
    const problems = problemsOf({
      name: 'Lab_1',
      environment: 'home',
      template: { vmid: 42 },
      control_plane: { count: 2, memory_mb: 512 },
      workers: { count: 1, disk_gb: 4 },
      placement: 'random',
      tags: ['ok', 'not ok'],
      talos: { version: '1.11', patches: { all: [{}] } },
      extra: true,
    });
    expect(problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^name: must be a cluster name/),
        expect.stringMatching(/^template\.vmid: /),
        expect.stringMatching(/^template\.name: /),
        'control_plane.count: must be odd (etcd needs a majority to survive a failure)',
        'control_plane.memory_mb: a Talos control plane needs at least 1024 MiB',
        'workers.disk_gb: Talos needs a disk of at least 10 GiB',
        expect.stringMatching(/^placement: /),
        expect.stringMatching(/^tags\.1: must be a PVE tag/),
        'talos.version: must be a Talos release such as v1.11.3',
        'talos.patches.all.0: a patch cannot be empty',
        '(root): Unrecognized key: "extra"',
      ]),
    );
    expect(problems).toHaveLength(11);
  });

  it('checks static addresses against the counts, each other and the gateway’s network', () => {
    const problems = problemsOf({
      ...minimal,
      workers: { count: 2 },
      network: {
        addressing: 'static',
        static: {
          prefix: 24,
          gateway: '10.0.30.1',
          nameservers: ['10.0.30.1'],
          control_plane: ['10.0.30.11', '10.0.30.11', '10.0.31.13'],
          workers: ['10.0.30.1'],
        },
      },
    });
    expect(problems).toEqual([
      'network.static.workers: lists 1 addresses for 2 workers',
      'network.static.control_plane.1: 10.0.30.11 is listed twice',
      "network.static.control_plane.2: 10.0.31.13 is not in the gateway's /24 network",
      'network.static.workers.0: 10.0.30.1 is the gateway',
    ]);
  });

  it('needs the addresses when addressing is static', () => {
    expect(problemsOf({ ...minimal, network: { addressing: 'static' } })).toEqual([
      'network.static: static addressing needs prefix, gateway, nameservers and one address per VM',
    ]);
  });

  it('must carry the name of its file', () => {
    expect(problemsOf(minimal, 'prod')).toEqual(["name: is 'lab', but the file is named prod.yaml"]);
  });
});

describe('the profiles directory', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pm-clusters-'));
    await writeFile(join(dir, 'lab.yaml'), stringify(minimal));
    await writeFile(join(dir, 'broken.yaml'), 'name: [unclosed');
    await writeFile(join(dir, 'README.md'), 'not a profile');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('lists profiles by name', async () => {
    expect(await listClusterProfiles(dir)).toEqual(['broken', 'lab']);
  });

  it('names the available profiles when one does not exist', async () => {
    await expect(loadClusterProfile(dir, 'prod')).rejects.toThrow(ProfileNotFoundError);
    await expect(loadClusterProfile(dir, 'prod')).rejects.toThrow("no cluster profile 'prod' (available: broken, lab)");
  });

  it('reports YAML syntax errors as a problem, not a stack trace', async () => {
    const err = await loadClusterProfile(dir, 'broken').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProfileError);
    expect((err as ProfileError).problems[0]).toMatch(/^\(yaml\): /);
  });
});
