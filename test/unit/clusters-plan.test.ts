import { describe, expect, it } from 'vitest';
import { planClusterDown } from '../../lib/clusters/down.js';
import { clusterTag } from '../../lib/clusters/identity.js';
import { parseClusterProfile, type ClusterProfile } from '../../lib/clusters/profile.js';
import {
  ClusterPlanRefusal,
  planClusterUp,
  type ClusterUpSnapshot,
  type SnapshotGuest,
  type SnapshotTemplate,
} from '../../lib/clusters/up.js';
import { EnvironmentConfig } from '../../lib/config/schema.js';

const GiB = 1024 ** 3;
const MARKER = 'Created by proxmox-manager, operation cluster-up/home/lab/';

const env = EnvironmentConfig.parse({
  cluster: { name: 'home', nodes: [{ name: 'pve01', host: 'pve01' }] },
  credentials: { token: { env: 'UNUSED' } },
  tls: { fingerprint: Array.from({ length: 32 }, () => 'AA').join(':') },
  tags: { talos: ['talos', 'kubernetes'] },
});

function profile(over: Record<string, unknown> = {}): ClusterProfile {
  return parseClusterProfile(
    {
      name: 'lab',
      environment: 'home',
      template: { vmid: 101, name: 'tpl-talos' },
      control_plane: { count: 3, cores: 2, memory_mb: 4096, disk_gb: 20 },
      workers: { count: 3, cores: 4, memory_mb: 8192, disk_gb: 40 },
      talos: { version: 'v1.11.3' },
      ...over,
    },
    'test',
  );
}

const template: SnapshotTemplate = {
  vmid: 101,
  name: 'tpl-talos',
  node: 'pve02',
  template: true,
  agent: true,
  cloudInitDrive: false,
  description: 'Talos v1.11.3 nocloud',
  bootDisk: { key: 'scsi0', storage: 'shared', bytes: 10 * GiB, shared: true },
};

function guest(vmid: number, name: string, over: Partial<SnapshotGuest> = {}): SnapshotGuest {
  return {
    vmid,
    name,
    type: 'qemu',
    node: 'pve01',
    status: 'running',
    template: false,
    tags: [],
    memoryBytes: 2 * GiB,
    cores: 2,
    ...over,
  };
}

function snapshot(over: Partial<ClusterUpSnapshot> = {}): ClusterUpSnapshot {
  const node = (name: string, totalGiB: number, usedGiB: number) => ({
    name,
    online: true,
    memoryTotal: totalGiB * GiB,
    memoryUsed: usedGiB * GiB,
    cpus: 32,
    vcpusAssigned: 8,
  });
  return {
    nodes: [node('pve01', 128, 40), node('pve02', 128, 40), node('pve03', 64, 20)],
    storages: ['pve01', 'pve02', 'pve03'].flatMap((n) => [
      { storage: 'shared', node: n, shared: true, content: ['images', 'rootdir'], free: 3000 * GiB },
      { storage: 'local-lvm', node: n, shared: false, content: ['images', 'rootdir'], free: 500 * GiB },
    ]),
    guests: [
      guest(101, 'tpl-talos', { node: 'pve02', template: true, status: 'stopped' }),
      guest(1000, 'dns01'),
      guest(1002, 'proxy01'),
    ],
    template,
    ...over,
  };
}

const options = {
  environment: 'home',
  profilePath: 'clusters/lab.yaml',
  profileSha256: 'f'.repeat(64),
  maxParallel: 8,
  creationMarkerPrefix: MARKER,
};

function refusal(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    if (err instanceof ClusterPlanRefusal) return err.problems;
    throw err;
  }
  throw new Error('the plan was not refused');
}

describe('planning a new cluster', () => {
  const draft = planClusterUp(profile(), env, snapshot(), options);
  const { plan } = draft;

  it('takes the lowest free VMIDs of the VM range and names each VM by the naming policy', () => {
    expect(plan.members.map((m) => [m.vmid, m.name, m.role])).toEqual([
      [1001, 'auto-lab-cp1-1001', 'control-plane'],
      [1003, 'auto-lab-cp2-1003', 'control-plane'],
      [1004, 'auto-lab-cp3-1004', 'control-plane'],
      [1005, 'auto-lab-w1-1005', 'worker'],
      [1006, 'auto-lab-w2-1006', 'worker'],
      [1007, 'auto-lab-w3-1007', 'worker'],
    ]);
  });

  it('spreads the control planes over three different nodes', () => {
    const nodes = plan.members.filter((m) => m.role === 'control-plane').map((m) => m.node);
    expect(new Set(nodes).size).toBe(3);
  });

  it('adds up what the cluster takes', () => {
    expect(plan.totals).toEqual({ vms: 6, toClone: 6, vcpus: 18, memoryBytes: 36 * GiB, diskBytes: 180 * GiB });
    expect(draft.summary).toBe(
      'cluster lab: 3 control planes + 3 workers on pve01, pve02, pve03 (18 vCPUs, 36.0 GiB memory, 180.0 GiB disk; 6 to clone)',
    );
  });

  it('configures every VM the way Talos needs it, tagged as the cluster’s', () => {
    expect(plan.members[0]!.config).toEqual({
      cores: 2,
      sockets: 1,
      memory: '4096',
      cpu: 'x86-64-v2-AES',
      hotplug: 'disk,network,usb',
      agent: '1',
      tags: 'talos;kubernetes;cluster-lab;k8s-control-plane',
      net0: 'virtio,bridge=vmbr0',
    });
    expect(plan.tag).toBe(clusterTag('lab'));
  });

  it('lists clone, configure and boot per VM, then the Talos steps in order', () => {
    const ids = draft.steps.map((s) => s.id);
    expect(ids.slice(0, 3)).toEqual([
      'clone:auto-lab-cp1-1001',
      'configure:auto-lab-cp1-1001',
      'boot:auto-lab-cp1-1001',
    ]);
    expect(ids.filter((id) => !id.includes(':'))).toEqual([
      'machine-configs',
      'bootstrap',
      'health',
      'kubeconfig',
      'flux',
    ]);
    expect(draft.steps.find((s) => s.id === 'bootstrap')).toMatchObject({ name: 'auto-lab-cp1-1001' });
    const clone = draft.steps[0]!;
    expect(clone).toMatchObject({ action: 'clone', node: 'pve02', params: { source: 101, full: true } });
  });
});

describe('a cluster that does not fit', () => {
  it('is refused, saying what is short and where', () => {
    const full = snapshot({
      nodes: [
        { name: 'pve01', online: true, memoryTotal: 64 * GiB, memoryUsed: 44 * GiB, cpus: 16, vcpusAssigned: 8 },
        { name: 'pve02', online: true, memoryTotal: 64 * GiB, memoryUsed: 44 * GiB, cpus: 16, vcpusAssigned: 8 },
        { name: 'pve03', online: true, memoryTotal: 64 * GiB, memoryUsed: 50 * GiB, cpus: 16, vcpusAssigned: 8 },
      ],
      // Running guests commit 44, 44 and 50 GiB (dns01 and proxy01 hold 4 GiB of pve01's).
      guests: [
        ...snapshot().guests,
        guest(2001, 'db01', { memoryBytes: 40 * GiB }),
        guest(2002, 'db02', { node: 'pve02', memoryBytes: 44 * GiB }),
        guest(2003, 'db03', { node: 'pve03', memoryBytes: 50 * GiB }),
      ],
    });
    const problems = refusal(() => planClusterUp(profile(), env, full, options));
    expect(
      problems.some((p) =>
        /^lab-w\d \(4 vCPUs, 8\.0 GiB\) fits on no node: pve01: memory: 8\.0 GiB more would use \d+% of 64\.0 GiB, above the 80% limit/.test(
          p,
        ),
      ),
    ).toBe(true);
    expect(problems.at(-1)).toBe(
      'memory: the cluster needs 36.0 GiB, the online nodes can take 15.6 GiB while keeping 20% free (pve01 7.2 GiB, pve02 7.2 GiB, pve03 1.2 GiB): short by 20.4 GiB',
    );
  });

  it('cannot spread three control planes over two nodes', () => {
    const two = snapshot({ nodes: snapshot().nodes.slice(0, 2) });
    expect(refusal(() => planClusterUp(profile(), env, two, options))).toEqual([
      'placement: 3 control planes cannot be spread over 2 online nodes (pve01, pve02); use placement: pack or fewer control planes',
    ]);
  });

  it('packs onto the roomiest node when asked to', () => {
    // pve01 and pve02 are as large, but dns01 and proxy01 commit 4 GiB of pve01's memory.
    const { plan } = planClusterUp(profile({ placement: 'pack', workers: { count: 1 } }), env, snapshot(), options);
    expect(new Set(plan.members.map((m) => m.node))).toEqual(new Set(['pve02']));
  });
});

describe('a half-built cluster', () => {
  const existing = [
    guest(1010, 'auto-lab-cp1-1010', { node: 'pve03', tags: ['talos', 'cluster-lab'], memoryBytes: 4 * GiB }),
    // Cloned by an earlier run that stopped before tagging it: its creation marker says whose it is.
    guest(1011, 'auto-lab-w2-1011', { node: 'pve01', status: 'stopped', description: `${MARKER}20261122T050000Z` }),
  ];

  it('keeps the VMs an earlier run made and clones only the missing ones', () => {
    const draft = planClusterUp(profile(), env, snapshot({ guests: [...snapshot().guests, ...existing] }), options);
    const { members } = draft.plan;
    expect(members.find((m) => m.service === 'lab-cp1')).toMatchObject({
      vmid: 1010,
      node: 'pve03',
      existing: { status: 'running' },
    });
    expect(members.find((m) => m.service === 'lab-w2')).toMatchObject({
      vmid: 1011,
      node: 'pve01',
      existing: { status: 'stopped' },
    });
    expect(members.filter((m) => !m.existing).map((m) => m.vmid)).toEqual([1001, 1003, 1004, 1005]);
    expect(draft.plan.totals.toClone).toBe(4);
    expect(draft.steps.find((s) => s.id === 'clone:auto-lab-cp1-1010')).toMatchObject({ action: 'keep' });
    // The resumed control plane holds pve03: the other two go elsewhere.
    expect(
      members
        .filter((m) => m.role === 'control-plane' && !m.existing)
        .map((m) => m.node)
        .sort(),
    ).toEqual(['pve01', 'pve02']);
  });

  it('refuses a VM with a member’s name that is not the cluster’s', () => {
    const stranger = guest(1012, 'auto-lab-w1-1012');
    expect(
      refusal(() => planClusterUp(profile(), env, snapshot({ guests: [...snapshot().guests, stranger] }), options)),
    ).toEqual([
      "VM 1012 'auto-lab-w1-1012' has the name of cluster member lab-w1 but neither tag cluster-lab nor a cluster-up marker: rename it or tag it cluster-lab",
    ]);
  });

  it('warns about tagged VMs the profile no longer has', () => {
    const leftover = guest(1013, 'auto-lab-w4-1013', { tags: ['cluster-lab'] });
    const draft = planClusterUp(profile(), env, snapshot({ guests: [...snapshot().guests, leftover] }), options);
    expect(draft.warnings).toContain(
      "VM 1013 'auto-lab-w4-1013' carries tag cluster-lab but is no member of the profile: left alone (cluster-down would remove it)",
    );
  });
});

describe('the template', () => {
  it('must be the named template', () => {
    expect(
      refusal(() => planClusterUp(profile({ template: { vmid: 101, name: 'tpl-debian' } }), env, snapshot(), options)),
    ).toEqual(["template: VM 101 is named 'tpl-talos', not 'tpl-debian'"]);
    expect(refusal(() => planClusterUp(profile(), env, snapshot({ template: undefined }), options))).toEqual([
      'template: no VM 101 in this environment',
    ]);
  });

  it('needs the guest agent for DHCP and a cloud-init drive for static addresses', () => {
    expect(
      refusal(() => planClusterUp(profile(), env, snapshot({ template: { ...template, agent: false } }), options))[0],
    ).toMatch(/^template: VM 101 'tpl-talos' has no QEMU guest agent enabled, and DHCP addresses are found through it/);
    const staticProfile = profile({
      workers: { count: 0 },
      network: {
        addressing: 'static',
        static: {
          prefix: 24,
          gateway: '10.0.30.1',
          nameservers: ['10.0.30.1'],
          control_plane: ['10.0.30.11', '10.0.30.12', '10.0.30.13'],
        },
      },
    });
    expect(refusal(() => planClusterUp(staticProfile, env, snapshot(), options))[0]).toMatch(
      /has no cloud-init drive, and static addresses reach Talos through it/,
    );
    const { plan } = planClusterUp(
      staticProfile,
      env,
      snapshot({ template: { ...template, cloudInitDrive: true } }),
      options,
    );
    expect(plan.members[1]!.config).toMatchObject({
      ipconfig0: 'ip=10.0.30.12/24,gw=10.0.30.1',
      nameserver: '10.0.30.1',
    });
  });

  it('warns about a metal image', () => {
    const draft = planClusterUp(
      profile(),
      env,
      snapshot({ template: { ...template, description: 'talos metal-amd64' } }),
      options,
    );
    expect(draft.warnings.some((w) => /metal image/.test(w))).toBe(true);
  });

  it('never shrinks the template’s disk', () => {
    const big = { ...template, bootDisk: { ...template.bootDisk!, bytes: 32 * GiB } };
    expect(refusal(() => planClusterUp(profile(), env, snapshot({ template: big }), options))).toEqual([
      "control_plane.disk_gb: 20 GiB is smaller than the template's 32.0 GiB disk (disks only grow)",
    ]);
  });
});

it('refuses a profile meant for another environment', () => {
  expect(refusal(() => planClusterUp(profile(), env, snapshot(), { ...options, environment: 'lab' }))).toEqual([
    "environment: profile 'lab' is for environment 'home', not 'lab'",
  ]);
});

describe('tearing a cluster down', () => {
  const down = {
    environment: 'home',
    shutdownTimeoutSeconds: 60,
    maxParallel: 4,
    secretsDir: '/secrets/home/lab',
    secretsExist: true,
  };
  const members = [
    guest(1001, 'auto-lab-cp1-1001', { tags: ['cluster-lab', 'talos'] }),
    guest(1005, 'auto-lab-w1-1005', { tags: ['cluster-lab'], status: 'stopped' }),
  ];

  it('plans every VM carrying the cluster’s tag, and only those', () => {
    const others = [
      guest(1002, 'auto-lab2-cp1-1002', { tags: ['cluster-lab2'] }),
      guest(1003, 'k8s-cp1', { tags: ['talos', 'kubernetes'] }),
    ];
    const draft = planClusterDown('lab', [...members, ...others], down);
    expect(draft.plan.members.map((m) => [m.vmid, m.name])).toEqual([
      [1001, 'auto-lab-cp1-1001'],
      [1005, 'auto-lab-w1-1005'],
    ]);
    expect(draft.steps.map((s) => s.id)).toEqual([
      'shutdown:auto-lab-cp1-1001',
      'destroy:auto-lab-cp1-1001',
      'shutdown:auto-lab-w1-1005',
      'destroy:auto-lab-w1-1005',
      'verify',
      'forget-secrets',
    ]);
    expect(draft.steps[1]).toMatchObject({
      action: 'destroy',
      vmid: 1001,
      name: 'auto-lab-cp1-1001',
      params: { purge: true },
    });
  });

  it('refuses before anything goes down when a tagged guest cannot be destroyed', () => {
    const problems = refusal(() =>
      planClusterDown(
        'lab',
        [
          ...members,
          guest(1006, 'auto-lab-w2-1006', { tags: ['cluster-lab'], protection: true } as Partial<SnapshotGuest>),
          guest(2001, 'ct', { type: 'lxc', tags: ['cluster-lab'] }),
        ],
        down,
      ),
    );
    expect(problems).toEqual([
      "VM 1006 'auto-lab-w2-1006' is protected: turn protection off to let cluster-down destroy it",
      "CT 2001 'ct' carries tag cluster-lab, but clusters are made of VMs: remove the tag (cluster-down destroys only the cluster's VMs)",
    ]);
  });

  it('has nothing to do for a cluster that left no VMs and no secrets: a plan without steps, not a refusal', () => {
    const draft = planClusterDown('lab', [], { ...down, secretsExist: false });
    expect(draft.steps).toEqual([]);
    expect(draft.summary).toMatch(/^nothing to do: no VM in home carries tag cluster-lab/);
  });

  it('still removes the secrets of a cluster that left no VMs', () => {
    expect(planClusterDown('lab', [], down).steps.map((s) => s.id)).toEqual(['verify', 'forget-secrets']);
  });
});
