/**
 * What runs where, read from one `GET /cluster/resources` call: the view the API's
 * inventory endpoint, the smoke workflow and node health share.
 */
import type { ClusterResource } from './pve/cluster/endpoints.js';
import type { PveClient } from './pve/client.js';

export interface NodeView {
  name: string;
  online: boolean;
  cpuUsage: number;
  cores: number;
  memoryUsedBytes: number;
  memoryTotalBytes: number;
}

export interface GuestView {
  vmid: number;
  name: string;
  type: 'qemu' | 'lxc';
  node: string;
  status: string;
  template: boolean;
  tags: string[];
  cores: number;
  memoryBytes: number;
  diskBytes: number;
  uptimeSeconds: number;
  haState?: string;
  lock?: string;
}

export interface Inventory {
  nodes: NodeView[];
  guests: GuestView[];
}

/** PVE separates tags with `;` (older versions also `,` or spaces). */
export function parseTags(tags: string | undefined): string[] {
  return (tags ?? '').split(/[;, ]+/).filter(Boolean);
}

export function inventoryFromResources(resources: ClusterResource[]): Inventory {
  const nodes: NodeView[] = [];
  const guests: GuestView[] = [];
  for (const r of resources) {
    if (r.type === 'node' && r.node) {
      nodes.push({
        name: r.node,
        online: r.status === 'online',
        cpuUsage: r.cpu ?? 0,
        cores: r.maxcpu ?? 0,
        memoryUsedBytes: r.mem ?? 0,
        memoryTotalBytes: r.maxmem ?? 0,
      });
    } else if ((r.type === 'qemu' || r.type === 'lxc') && r.vmid !== undefined && r.node) {
      guests.push({
        vmid: r.vmid,
        name: r.name ?? '',
        type: r.type,
        node: r.node,
        status: r.status ?? 'unknown',
        template: Boolean(r.template),
        tags: parseTags(r.tags),
        cores: r.maxcpu ?? 0,
        memoryBytes: r.maxmem ?? 0,
        diskBytes: r.maxdisk ?? 0,
        uptimeSeconds: r.uptime ?? 0,
        ...(r.hastate ? { haState: r.hastate } : {}),
        ...(r.lock ? { lock: r.lock } : {}),
      });
    }
  }
  nodes.sort((a, b) => a.name.localeCompare(b.name));
  guests.sort((a, b) => a.vmid - b.vmid);
  return { nodes, guests };
}

export async function readInventory(client: PveClient): Promise<Inventory> {
  return inventoryFromResources(await client.cluster.resources());
}
