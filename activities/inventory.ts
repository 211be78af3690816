import type { WorkerDeps } from '../worker/deps.js';
import { readInventory, type NodeView } from '../lib/inventory.js';
import { classified } from './failures.js';

export interface InventorySummary {
  environment: string;
  nodes: (NodeView & { guests: number; running: number })[];
  totals: { vms: number; containers: number; templates: number; running: number; stopped: number };
}

export function createInventoryActivities(deps: Pick<WorkerDeps, 'pve'>) {
  return {
    async summarizeInventory(environment: string): Promise<InventorySummary> {
      const client = await deps.pve(environment);
      const inventory = await classified('write', () => readInventory(client));
      const guests = inventory.guests.filter((g) => !g.template);
      return {
        environment,
        nodes: inventory.nodes.map((n) => ({
          ...n,
          guests: guests.filter((g) => g.node === n.name).length,
          running: guests.filter((g) => g.node === n.name && g.status === 'running').length,
        })),
        totals: {
          vms: guests.filter((g) => g.type === 'qemu').length,
          containers: guests.filter((g) => g.type === 'lxc').length,
          templates: inventory.guests.length - guests.length,
          running: guests.filter((g) => g.status === 'running').length,
          stopped: guests.filter((g) => g.status !== 'running').length,
        },
      };
    },
  };
}

export type InventoryActivities = ReturnType<typeof createInventoryActivities>;
