/**
 * The cluster the bulk benchmark (and its test) runs on: `count` running VMs tagged `bulk`
 * spread over four nodes, disks on shared storage, and a token holding just what bulk power
 * and snapshot actions need.
 */
import type { Scenario } from '../sim/scenario.js';

export const BULK_PRIVILEGES = ['VM.Audit', 'VM.PowerMgmt', 'VM.Snapshot', 'Sys.Audit'];

export function bulkScenario(count: number): Scenario {
  const nodes = ['pve1', 'pve2', 'pve3', 'pve4'];
  return {
    name: `bulk-${count}`,
    cluster_name: 'bulk',
    nodes: nodes.map((name) => ({ name, cores: 64, memory: '1T' })),
    storages: [{ id: 'shared', type: 'nfs', content: ['images', 'rootdir'], size: '100T' }],
    guests: Array.from({ length: count }, (_, i) => ({
      vmid: 1000 + i,
      name: `bulk-${1000 + i}`,
      node: nodes[i % nodes.length]!,
      memory: 2048,
      cores: 2,
      disks: [{ storage: 'shared', size: '16G' }],
      tags: ['bulk', i % 2 === 0 ? 'even' : 'odd'],
    })),
    roles: { BulkOperator: BULK_PRIVILEGES },
    tokens: [
      { id: 'automation@pve!pm', secret: 'bulk-0123456789abcdef', acl: [{ path: '/', roles: ['BulkOperator'] }] },
    ],
  };
}
