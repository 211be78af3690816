/**
 * Deterministic scenario generator for large or stressed clusters (benchmarks, planners):
 * the same options and seed always give the same cluster.
 */
import { createHash } from 'node:crypto';
import { seededRandom } from './faults.js';
import type { Scenario } from './scenario.js';
import { MiB, parseSize } from './units.js';

export interface GenerateScenarioOptions {
  nodes: number;
  vms: number;
  seed?: number;
  /** Per node; default 256G. */
  nodeMemory?: string;
  /** Per node; default 64. */
  nodeCores?: number;
  /**
   * Share of total node memory assigned to guests (default 0.6; e.g. 0.9 for a tight
   * cluster): the natural mix of guest sizes is scaled to reach it.
   */
  memoryPressure?: number;
  /** Share of VMs whose disks are on node-local storage (default 0.3); the rest use shared storage. */
  localDiskFraction?: number;
  /** Share of guests running (default 0.85). */
  runningFraction?: number;
  /** Share of guests that are containers (default 0.05). */
  lxcFraction?: number;
  /** Share of VMs that are HA-managed (default 0.05). */
  haFraction?: number;
  /** Share of VMs with PCI passthrough (default 0.01). */
  passthroughFraction?: number;
  /** Templates, placed on shared storage (default 2). */
  templates?: number;
  /** Link speed of every node (default 10). */
  linkGbps?: number;
  /** Put guests round-robin (default) or fill nodes in order, leaving later nodes empty. */
  placement?: 'spread' | 'packed';
}

const MEMORY_MIB = [1024, 2048, 2048, 4096, 4096, 4096, 8192, 8192, 16384, 32768];
const CORES = [1, 2, 2, 2, 4, 4, 8];
const DISK_GB = [16, 32, 32, 32, 64, 128];
const SERVICES = ['web', 'db', 'cache', 'app', 'queue', 'build', 'mon', 'dns', 'proxy', 'worker'];

export function generateScenario(opts: GenerateScenarioOptions): Scenario {
  const random = seededRandom(opts.seed ?? 1);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const width = Math.max(2, String(opts.nodes).length);
  const nodeNames = Array.from({ length: opts.nodes }, (_, i) => `pve${String(i + 1).padStart(width, '0')}`);
  const nodeMemory = opts.nodeMemory ?? '256G';
  const templates = Math.min(opts.templates ?? 2, opts.vms);

  const guests: NonNullable<Scenario['guests']> = [];
  for (let i = 0; i < templates; i++) {
    guests.push({
      vmid: 100 + i,
      name: `tpl-debian-${12 + i}`,
      node: nodeNames[i % nodeNames.length]!,
      status: 'stopped',
      template: true,
      memory: 2048,
      cores: 2,
      disks: [{ storage: 'shared', size: '8G' }],
      tags: ['template'],
    });
  }
  const count = opts.vms - templates;
  const perNode = Math.ceil(count / opts.nodes);
  for (let i = 0; i < count; i++) {
    const vmid = 1000 + i;
    const node = opts.placement === 'packed' ? nodeNames[Math.floor(i / perNode)]! : nodeNames[i % opts.nodes]!;
    const service = pick(SERVICES);
    const lxc = random() < (opts.lxcFraction ?? 0.05);
    const local = random() < (opts.localDiskFraction ?? 0.3);
    const running = random() < (opts.runningFraction ?? 0.85);
    const ha = !lxc && random() < (opts.haFraction ?? 0.05);
    const passthrough = !lxc && !ha && random() < (opts.passthroughFraction ?? 0.01);
    guests.push({
      vmid,
      type: lxc ? 'lxc' : 'qemu',
      name: `${service}-${vmid}`,
      node,
      status: running ? 'running' : 'stopped',
      memory: pick(MEMORY_MIB),
      cores: pick(CORES),
      disks: [
        { storage: lxc ? (local ? 'local-lvm' : 'shared') : local ? 'local-lvm' : 'shared', size: `${pick(DISK_GB)}G` },
      ],
      tags: [service],
      ha,
      ...(passthrough ? { hostpci: [`0000:${String(10 + (i % 80)).padStart(2, '0')}:00.0`] } : {}),
    });
  }
  scaleMemory(guests, templates, opts.memoryPressure ?? 0.6, nodeMemory, opts.nodes);

  return {
    name: `generated-${opts.nodes}n-${opts.vms}g-s${opts.seed ?? 1}`,
    cluster_name: 'generated',
    nodes: nodeNames.map((name) => ({
      name,
      memory: nodeMemory,
      cores: opts.nodeCores ?? 64,
      link_gbps: opts.linkGbps ?? 10,
    })),
    storages: [
      { id: 'local', type: 'dir', path: '/var/lib/vz', content: ['iso', 'vztmpl', 'import', 'backup'], size: '200G' },
      { id: 'local-lvm', type: 'lvmthin', content: ['images', 'rootdir'], size: '8T' },
      {
        id: 'shared',
        type: 'nfs',
        path: '/mnt/pve/shared',
        content: ['images', 'rootdir', 'iso'],
        size: sharedSize(guests),
      },
    ],
    guests,
    tokens: [
      {
        id: 'automation@pve!pm',
        secret: createHash('sha256')
          .update(`generated-token/${opts.seed ?? 1}`)
          .digest('hex')
          .slice(0, 32),
        acl: [
          { path: '/', roles: ['PVEAdmin'] },
          // A deeper ACL level replaces what / grants, so it restates the role.
          { path: '/nodes', roles: ['PVEAdmin'], privs: ['Sys.AccessNetwork'] },
        ],
      },
    ],
  };
}

/**
 * The shared storage: 512 TiB, or twice what the guests' disks on it take when that is more
 * (15,000 guests put some 530 TiB there; an overfull store would leave every guest on it
 * unable to move, which is not the cluster a benchmark means to generate).
 */
function sharedSize(guests: NonNullable<Scenario['guests']>): string {
  let bytes = 0;
  for (const g of guests) for (const d of g.disks ?? []) if (d.storage === 'shared') bytes += parseSize(d.size) ?? 0;
  return `${Math.max(512, Math.ceil((2 * bytes) / 1024 ** 4))}T`;
}

/** Scales non-template guest memory so that it adds up to `pressure` of all node memory. */
function scaleMemory(
  guests: NonNullable<Scenario['guests']>,
  skip: number,
  pressure: number,
  nodeMemory: string,
  nodes: number,
): void {
  const nodeMiB = (parseSize(nodeMemory) ?? 0) / MiB;
  const target = pressure * nodeMiB * nodes;
  const current = guests.slice(skip).reduce((sum, g) => sum + Number(g.memory), 0);
  if (current === 0) return;
  const factor = target / current;
  for (const g of guests.slice(skip)) g.memory = Math.max(512, Math.round((Number(g.memory) * factor) / 256) * 256);
}
