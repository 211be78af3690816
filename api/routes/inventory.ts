/**
 * Read-only inventory from the Proxmox API (no workflow: nothing changes), served from a
 * snapshot shared by every caller and at most `api.inventory_max_age` old (2 s by default):
 * a dashboard polling it costs PVE one `/cluster/resources` read per interval, not one per
 * request. Answers carry an ETag (304 when `If-None-Match` names it) and their age.
 */
import { durationMs } from '../../lib/config/duration.js';
import type { Inventory as InventoryView } from '../../lib/inventory.js';
import { requireEnvironment } from '../access.js';
import type { Services } from '../deps.js';
import { ApiError, redact } from '../errors.js';
import type { ApiContext, Route } from '../route.js';
import { ErrorResponse, Inventory, InventoryQuery } from '../schemas.js';
import { matches, render, snapshots } from '../snapshots.js';
import { parseQuery } from '../validation.js';

export function inventoryRoutes(s: Services): Route[] {
  const maxAgeMs = durationMs(s.config.api.inventory_max_age);
  const inventories = snapshots<InventoryView>(
    async (environment) => {
      try {
        return await s.proxmox.inventory(environment);
      } catch (err) {
        const reason = err instanceof Error ? redact(err.message) : 'request failed';
        throw new ApiError(502, 'proxmox_unavailable', `the Proxmox API of '${environment}' failed: ${reason}`);
      }
    },
    maxAgeMs,
    () => s.now().getTime(),
  );

  /** `?fresh=true` or `Cache-Control: no-cache` (what a browser's hard reload sends). */
  const wantsFresh = (c: ApiContext, fresh: string | undefined) =>
    fresh === 'true' || /\bno-cache\b/.test(c.req.header('cache-control') ?? '');

  return [
    {
      method: 'GET',
      path: '/v1/inventory',
      tag: 'inventory',
      summary: 'Nodes, VMs and containers of an environment',
      description:
        'Filter guests with `state=running`, `type=qemu|lxc`, `tag=` and `node=`. Answered from a snapshot of the ' +
        `environment shared by all callers and at most \`api.inventory_max_age\` old (${s.config.api.inventory_max_age} here); ` +
        '`Age` says how old, in seconds. `fresh=true` or `Cache-Control: no-cache` reads PVE again. Every answer has ' +
        'an `ETag`: send it back as `If-None-Match` and an unchanged inventory is answered 304 without a body.',
      access: 'read',
      query: InventoryQuery,
      responses: {
        200: { description: 'inventory', schema: Inventory },
        304: { description: 'not modified: the ETag in If-None-Match is still the answer' },
        502: { description: 'the environment’s Proxmox API failed', schema: ErrorResponse },
      },
      handler: async (c) => {
        const { fresh, ...query } = parseQuery(c, InventoryQuery);
        requireEnvironment(c, s.config, query.environment);
        const snapshot = await inventories.get(query.environment, { fresh: wantsFresh(c, fresh) });
        const { body, etag } = render(snapshot, JSON.stringify(query), (inventory) => ({
          environment: query.environment,
          nodes: inventory.nodes,
          guests: inventory.guests.filter(
            (g) =>
              (query.state === 'all' || g.status === 'running') &&
              (query.type === undefined || g.type === query.type) &&
              (query.tag === undefined || g.tags.includes(query.tag)) &&
              (query.node === undefined || g.node === query.node),
          ),
        }));
        const headers = {
          ETag: etag,
          Age: String(Math.max(0, Math.floor((s.now().getTime() - snapshot.readAt) / 1000))),
          // Clients may keep it, but ask again (with If-None-Match) before using it.
          'Cache-Control': 'private, no-cache',
        };
        if (matches(c.req.header('if-none-match'), etag)) return c.body(null, 304, headers);
        return c.body(body, 200, { ...headers, 'Content-Type': 'application/json' });
      },
    },
  ];
}
