/**
 * The clusters the evacuation benchmark runs on, and the token it (and its tests) use.
 */
import { fileURLToPath } from 'node:url';
import { loadScenarioFile, type ResolvedScenario, type Scenario } from '../sim/scenario.js';

/** What an evacuation needs and nothing more: see docs/evacuation.md. */
export const EVACUATION_PRIVILEGES = ['VM.Audit', 'VM.Migrate', 'Sys.Audit', 'Datastore.Audit'];

/** Adds the orchestrator's least-privilege token as the scenario's first (the one the worker uses). */
export function withAutomationToken(scenario: Scenario): Scenario {
  return {
    ...scenario,
    roles: { ...scenario.roles, Evacuator: EVACUATION_PRIVILEGES },
    tokens: [
      { id: 'automation@pve!pm', secret: 'bench-0123456789abcdef', acl: [{ path: '/', roles: ['Evacuator'] }] },
      ...(scenario.tokens ?? []),
    ],
  };
}

export interface BenchScenario {
  name: string;
  description: string;
  scenario: Scenario | ResolvedScenario;
  /** The node to empty. */
  source: string;
}

const MIB_PER_GIB = 1024;

/** The simulator's homelab (sim/scenarios/homelab.yaml), with its own least-privilege token. */
async function homelab(): Promise<BenchScenario> {
  return {
    name: 'homelab',
    description: 'the simulator homelab: empty pve01 (9 guests) onto pve02 (10 GbE) and pve03 (2.5 GbE)',
    scenario: await loadScenarioFile(fileURLToPath(new URL('../sim/scenarios/homelab.yaml', import.meta.url))),
    source: 'pve01',
  };
}

/**
 * Sixty guests of mixed sizes on one node, four roomy targets, 10 GbE: memory 1-32 GiB in a
 * fixed cycle, every fifth with 32-64 GiB of local disk, some stopped, a few containers.
 */
function mixed60(): BenchScenario {
  const memory = [1, 2, 2, 4, 4, 4, 8, 8, 16, 32];
  const guests: NonNullable<Scenario['guests']> = Array.from({ length: 60 }, (_, i) => {
    const container = i % 15 === 7;
    const local = i % 5 === 2;
    return {
      vmid: 2000 + i,
      name: `${container ? 'ct' : 'vm'}${2000 + i}`,
      ...(container ? { type: 'lxc' as const } : {}),
      node: 'pve01',
      status: i % 10 === 9 ? ('stopped' as const) : ('running' as const),
      memory: memory[i % memory.length]! * MIB_PER_GIB,
      cores: [1, 2, 4, 8][i % 4]!,
      disks: [{ storage: local || container ? 'local-lvm' : 'ceph', size: local ? `${32 + (i % 3) * 16}G` : '16G' }],
    };
  });
  return {
    name: 'mixed-60',
    description: '60 guests of mixed sizes (1-32 GiB, a fifth with local disks) onto 4 targets, 10 GbE',
    scenario: withAutomationToken({
      nodes: ['pve01', 'pve02', 'pve03', 'pve04', 'pve05'].map((name) => ({ name, memory: '512G', cores: 64 })),
      storages: [
        { id: 'local-lvm', type: 'lvmthin', content: ['images', 'rootdir'], size: '4T' },
        { id: 'ceph', type: 'rbd', content: ['images', 'rootdir'], size: '100T' },
      ],
      guests,
    }),
    source: 'pve01',
  };
}

/**
 * Memory is tight: three targets already 56-62% full may each fill only up to 80% (the
 * headroom), together little more than the source's guests need — and no single target (as
 * `migrateall` uses) can take them all.
 */
function tightMemory(): BenchScenario {
  const sizes = [24, 16, 16, 12, 12, 8, 8, 8, 6, 6, 4, 4, 4, 2, 2, 2];
  const guests: NonNullable<Scenario['guests']> = sizes.map((gib, i) => ({
    vmid: 3000 + i,
    name: `app${3000 + i}`,
    node: 'pve01',
    memory: gib * MIB_PER_GIB,
    cores: Math.max(1, Math.round(gib / 4)),
    mem_usage: 0.9,
    disks: [{ storage: 'ceph', size: '32G' }],
  }));
  // Residents that fill the targets: 256G nodes at roughly 55-62% with host overhead.
  const residents = (node: string, base: number, gibs: number[]) =>
    gibs.map((gib, i) => ({
      vmid: base + i,
      name: `${node}-res${i}`,
      node,
      memory: gib * MIB_PER_GIB,
      cores: 4,
      mem_usage: 1,
      disks: [{ storage: 'ceph', size: '16G' }],
    }));
  return {
    name: 'tight-memory',
    description: '16 guests (134 GiB) onto 3 targets 56-62% full, with 163 GiB of room under the 20% headroom',
    scenario: withAutomationToken({
      nodes: ['pve01', 'pve02', 'pve03', 'pve04'].map((name) => ({ name, memory: '256G', cores: 64 })),
      storages: [{ id: 'ceph', type: 'rbd', content: ['images', 'rootdir'], size: '100T' }],
      guests: [
        ...guests,
        ...residents('pve02', 4000, [64, 64, 24]),
        ...residents('pve03', 4100, [64, 64, 16]),
        ...residents('pve04', 4200, [64, 48, 24]),
      ],
    }),
    source: 'pve01',
  };
}

export async function benchScenarios(): Promise<BenchScenario[]> {
  return [await homelab(), mixed60(), tightMemory()];
}
