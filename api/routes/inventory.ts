/**
 * Read-only inventory, straight from the Proxmox API (no workflow: nothing changes).
 */
import type { z } from 'zod';
import { requireEnvironment } from '../access.js';
import type { Services } from '../deps.js';
import { ApiError, redact } from '../errors.js';
import type { Route } from '../route.js';
import { ErrorResponse, Inventory, InventoryQuery } from '../schemas.js';
import { parseQuery } from '../validation.js';

export function inventoryRoutes(s: Services): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/inventory',
      tag: 'inventory',
      summary: 'Nodes, VMs and containers of an environment',
      description: 'Filter guests with `state=running`, `type=qemu|lxc`, `tag=` and `node=`.',
      access: 'read',
      query: InventoryQuery,
      responses: {
        200: { description: 'inventory', schema: Inventory },
        502: { description: 'the environment’s Proxmox API failed', schema: ErrorResponse },
      },
      handler: async (c) => {
        const query = parseQuery(c, InventoryQuery);
        requireEnvironment(c, s.config, query.environment);
        let inventory;
        try {
          inventory = await s.proxmox.inventory(query.environment);
        } catch (err) {
          const reason = err instanceof Error ? redact(err.message) : 'request failed';
          throw new ApiError(502, 'proxmox_unavailable', `the Proxmox API of '${query.environment}' failed: ${reason}`);
        }
        const guests = inventory.guests.filter(
          (g) =>
            (query.state === 'all' || g.status === 'running') &&
            (query.type === undefined || g.type === query.type) &&
            (query.tag === undefined || g.tags.includes(query.tag)) &&
            (query.node === undefined || g.node === query.node),
        );
        return c.json({ environment: query.environment, nodes: inventory.nodes, guests } satisfies z.infer<typeof Inventory>);
      },
    },
  ];
}
