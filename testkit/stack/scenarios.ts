/**
 * Clusters the suite injects faults into: small enough to run in seconds, big enough that
 * several operations are in flight at once.
 */
import { randomBytes } from 'node:crypto';
import type { Scenario } from '../../sim/scenario.js';

export interface FleetOptions {
  nodes?: number;
  /** VMs per node: the first half running, the rest stopped. */
  perNode?: number;
  /** Memory per VM, MiB (migration time grows with it). */
  memory?: number;
}

/** Nodes `pve1..pveN`, VMs `vm<vmid>` from 1000 on, all disks on shared storage. */
export function fleet(options: FleetOptions = {}): Scenario {
  const nodes = Array.from({ length: options.nodes ?? 3 }, (_, i) => `pve${i + 1}`);
  const perNode = options.perNode ?? 6;
  return {
    name: 'suite-fleet',
    cluster_name: 'suite',
    nodes: nodes.map((name) => ({ name, memory: '256G', cores: 64 })),
    storages: [{ id: 'shared', type: 'nfs', path: '/mnt/pve/shared', content: ['images', 'rootdir'], size: '20T' }],
    guests: nodes.flatMap((node, n) =>
      Array.from({ length: perNode }, (_, i) => ({
        vmid: 1000 + n * 100 + i,
        name: `vm${1000 + n * 100 + i}`,
        node,
        status: i < perNode / 2 ? ('running' as const) : ('stopped' as const),
        memory: options.memory ?? 2048,
        cores: 2,
        disks: [{ storage: 'shared', size: '16G' }],
      })),
    ),
    tokens: [
      {
        id: 'automation@pve!pm',
        secret: randomBytes(18).toString('hex'),
        acl: [{ path: '/', roles: ['Administrator'] }],
      },
    ],
  };
}

export function vmsOf(
  scenario: Scenario,
): { vmid: number; name: string; node: string; status: 'running' | 'stopped' }[] {
  return (scenario.guests ?? []).map((g) => ({
    vmid: g.vmid,
    name: g.name,
    node: g.node,
    status: g.status ?? 'running',
  }));
}
