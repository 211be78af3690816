/**
 * Seeded ClusterSnapshots with everything the evacuation planner weighs: nodes offline or
 * nearly full, shared and local storages (some inactive, some without container content),
 * tag and HA-rule affinity, strict and preferred node affinity, PVE's refusals, host-bound
 * devices, local ISOs, snapshots, locks, templates, containers and stopped guests. The same
 * options always give the same snapshot, so plans made from it can be compared across versions.
 */
import type { EvacuationRequest, PlacementPolicy } from '../lib/planning/evacuation.js';
import type {
  ClusterSnapshot,
  GuestDisk,
  GuestState,
  HaRule,
  MigrationFacts,
  StorageState,
} from '../lib/planning/snapshot.js';
import { seededRandom } from '../sim/faults.js';

const GiB = 1024 ** 3;

/** An evacuation that moves whatever can move (stopped guests, templates, containers, local disks). */
export const evacuateEverything: Omit<EvacuationRequest, 'node'> = {
  maxParallel: 8,
  maxParallelPerTarget: 2,
  includeStopped: true,
  includeTemplates: true,
  localDisks: 'migrate',
  containers: 'restart',
  containerShutdownTimeoutSeconds: 180,
  onFailure: 'continue',
  haMaintenance: false,
  linkGbps: 10,
};
export const defaultPolicy: PlacementPolicy = {
  memory_headroom: 0.2,
  cpu_oversubscription: 4,
  memory_basis: 'configured',
};

export interface GeneratedSnapshotOptions {
  nodes: number;
  guests: number;
  seed: number;
  /** Share of node memory the guests are configured with (default 0.6). */
  memoryPressure?: number;
}

export function generatedSnapshot(opts: GeneratedSnapshotOptions): { snapshot: ClusterSnapshot; largestNode: string } {
  const random = seededRandom(opts.seed);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const chance = (p: number) => random() < p;
  const names = Array.from({ length: opts.nodes }, (_, i) => `pve${String(i + 1).padStart(3, '0')}`);
  const nodeMemory = (i: number) => (i % 5 === 4 ? 128 : 256) * GiB;

  const guests: GuestState[] = [];
  for (let i = 0; i < opts.guests; i++) {
    const type = chance(0.1) ? 'lxc' : 'qemu';
    const vmid = 100 + i;
    const tags = [
      ...(chance(0.05) ? [`affinity-grp${Math.floor(random() * 20)}`] : []),
      ...(chance(0.08) ? [`anti-affinity-spread${Math.floor(random() * 10)}`] : []),
      ...(chance(0.2) ? [pick(['web', 'db', 'prod', 'test'])] : []),
    ];
    guests.push({
      vmid,
      name: `${type === 'qemu' ? 'vm' : 'ct'}${vmid}`,
      type,
      // Node 0 holds a few more guests than the average: the one to evacuate.
      node: chance(0.5 / opts.nodes) ? names[0]! : pick(names),
      status: chance(0.8) ? 'running' : chance(0.1) ? 'paused' : 'stopped',
      template: type === 'qemu' && chance(0.01),
      memory: pick([1, 2, 2, 4, 4, 8, 16, 32]) * GiB,
      vcpus: pick([1, 2, 2, 4, 8]),
      tags,
      haManaged: chance(0.1),
      ...(chance(0.01) ? { lock: pick(['backup', 'snapshot']) } : {}),
    });
  }
  // Configured memory scaled so the guests take the asked share of all nodes' memory.
  const total = names.reduce((sum, _, i) => sum + nodeMemory(i), 0);
  const scale = ((opts.memoryPressure ?? 0.6) * total) / guests.reduce((sum, g) => sum + g.memory, 0);
  for (const g of guests) g.memory = Math.round((g.memory * scale) / 2 ** 20) * 2 ** 20;
  const committed = new Map<string, number>();
  for (const g of guests) if (g.status !== 'stopped') committed.set(g.node, (committed.get(g.node) ?? 0) + g.memory);

  const storages: StorageState[] = names.flatMap((node, i) => [
    {
      storage: 'ceph',
      node,
      shared: true,
      active: i % 17 !== 16,
      content: ['images', 'rootdir'],
      total: 200_000 * GiB,
      used: 50_000 * GiB,
    },
    {
      storage: 'local-lvm',
      node,
      shared: false,
      active: true,
      content: i % 7 === 6 ? ['images'] : ['images', 'rootdir'],
      total: 2048 * GiB,
      used: Math.floor(random() * 1800) * GiB,
    },
    {
      storage: 'local',
      node,
      shared: false,
      active: true,
      content: ['iso', 'vztmpl'],
      total: 100 * GiB,
      used: 10 * GiB,
    },
  ]);

  const source = names[0]!;
  const vmsOnSource = guests.filter((g) => g.node === source);
  const resource = (g: GuestState) => `${g.type === 'qemu' ? 'vm' : 'ct'}:${g.vmid}`;
  const haRules: HaRule[] = [];
  for (const [i, g] of vmsOnSource.entries()) {
    if (i % 6 === 1)
      haRules.push({
        rule: `keep-${g.vmid}`,
        type: 'node-affinity',
        resources: [resource(g)],
        nodes: [
          { node: pick(names), priority: 2 },
          { node: pick(names), priority: 1 },
        ],
        strict: i % 12 === 1,
        disabled: false,
      });
    if (i % 9 === 2)
      haRules.push({
        rule: `apart-${g.vmid}`,
        type: 'resource-affinity',
        resources: [resource(g), resource(pick(guests))],
        affinity: 'negative',
        disabled: false,
      });
    if (i % 11 === 3)
      haRules.push({
        rule: `with-${g.vmid}`,
        type: 'resource-affinity',
        resources: [resource(g), resource(pick(guests))],
        affinity: 'positive',
        disabled: i % 22 === 3,
      });
  }

  const migration: Record<number, MigrationFacts> = {};
  const unreadable: Record<number, string> = {};
  for (const g of vmsOnSource) {
    if (chance(0.02)) {
      unreadable[g.vmid] = 'unable to parse config';
      continue;
    }
    const local = chance(0.3);
    const disks: GuestDisk[] = [
      {
        key: g.type === 'qemu' ? 'scsi0' : 'rootfs',
        volid: `${local ? 'local-lvm' : 'ceph'}:vm-${g.vmid}-disk-0`,
        storage: local ? 'local-lvm' : 'ceph',
        size: pick([16, 32, 64, 128]) * GiB,
        shared: !local,
        cdrom: false,
      },
    ];
    if (g.type === 'qemu' && chance(0.1))
      disks.push({
        key: 'ide2',
        volid: chance(0.5) ? 'local:iso/debian.iso' : 'ceph:iso/debian.iso',
        storage: 'local',
        size: 0,
        shared: false,
        cdrom: true,
      });
    if (disks[1]?.volid.startsWith('ceph')) Object.assign(disks[1], { storage: 'ceph', shared: true });
    migration[g.vmid] = {
      disks,
      localResources: g.type === 'qemu' && chance(0.03) ? ['hostpci0'] : [],
      notAllowedNodes: chance(0.1) ? { [pick(names)]: 'PVE refuses: storage local-lvm unavailable there' } : {},
      hasSnapshots: chance(0.1),
    };
  }

  return {
    snapshot: {
      takenAt: '2026-01-01T00:00:00.000Z',
      nodes: names.map((name, i) => ({
        name,
        online: i === 0 || i % 23 !== 22,
        memoryTotal: nodeMemory(i),
        memoryUsed: Math.round((committed.get(name) ?? 0) * 0.7 + 4 * GiB),
        cpus: i % 3 === 2 ? 64 : 128,
      })),
      storages,
      guests,
      haRules,
      migration,
      unreadable,
    },
    largestNode: source,
  };
}
