import type { WorkerDeps } from '../worker/deps.js';
import { readInventory, type Inventory, type NodeView } from '../lib/inventory.js';
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
      return summarize(environment, inventory);
    },
  };
}

/** Guests counted per node and in total, in one pass (a filter per node is 7.5M steps at 500 nodes, 15,000 guests). */
export function summarize(environment: string, inventory: Inventory): InventorySummary {
  const perNode = new Map(inventory.nodes.map((n) => [n.name, { guests: 0, running: 0 }]));
  const totals = { vms: 0, containers: 0, templates: 0, running: 0, stopped: 0 };
  for (const g of inventory.guests) {
    if (g.template) {
      totals.templates++;
      continue;
    }
    const running = g.status === 'running';
    totals[g.type === 'qemu' ? 'vms' : 'containers']++;
    totals[running ? 'running' : 'stopped']++;
    const counts = perNode.get(g.node);
    if (counts) {
      counts.guests++;
      if (running) counts.running++;
    }
  }
  return { environment, nodes: inventory.nodes.map((n) => ({ ...n, ...perNode.get(n.name)! })), totals };
}

export type InventoryActivities = ReturnType<typeof createInventoryActivities>;
