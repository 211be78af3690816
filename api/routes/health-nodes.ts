/**
 * "Which nodes are struggling?" — read-only, from one `GET /cluster/resources`: offline nodes,
 * CPU or memory above 80%, free memory below the environment's placement headroom, storage
 * nearly full. The judgement itself is lib/health.ts.
 */
import { z } from 'zod';
import { assessNodeHealth, DEFAULT_THRESHOLDS } from '../../lib/health.js';
import type { PveClient } from '../../lib/pve/client.js';
import { requireEnvironment } from '../access.js';
import type { Services } from '../deps.js';
import { ApiError, redact } from '../errors.js';
import type { Route } from '../route.js';
import { ErrorResponse } from '../schemas.js';
import { parseQuery } from '../validation.js';

const NodeHealthQuery = z.strictObject({
  environment: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be an environment name'),
  /** Only the nodes that are struggling or offline. */
  struggling: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
});

const NodeHealthReport = z
  .object({
    environment: z.string(),
    thresholds: z.object({ cpu: z.number(), memory: z.number(), memoryHeadroom: z.number(), storage: z.number() }),
    struggling: z.array(z.string()),
    nodes: z.array(
      z.object({
        node: z.string(),
        status: z.enum(['ok', 'struggling', 'offline']),
        cpuUsage: z.number(),
        memoryUsedBytes: z.number(),
        memoryTotalBytes: z.number(),
        memoryUsedFraction: z.number(),
        storages: z.array(
          z.object({
            storage: z.string(),
            shared: z.boolean(),
            usedBytes: z.number(),
            totalBytes: z.number(),
            usedFraction: z.number(),
          }),
        ),
        issues: z.array(
          z.object({
            kind: z.enum(['offline', 'cpu', 'memory', 'headroom', 'storage']),
            storage: z.string().optional(),
            detail: z.string(),
          }),
        ),
      }),
    ),
  })
  .meta({ id: 'NodeHealth' });

/** `pve` gives the read-only client of an environment (the API's own, shared with inventory). */
export function nodeHealthRoutes(s: Services, pve: (environment: string) => Promise<PveClient>): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/nodes/health',
      tag: 'inventory',
      summary: 'Which nodes are struggling',
      description:
        'A node is struggling when CPU or memory use is above 80%, its free memory is below the environment’s ' +
        '`policy.memory_headroom`, or a storage it uses is over 90% full; `struggling=true` lists only those (and offline nodes).',
      access: 'read',
      query: NodeHealthQuery,
      responses: {
        200: { description: 'health of every node', schema: NodeHealthReport },
        502: { description: 'the environment’s Proxmox API failed', schema: ErrorResponse },
      },
      handler: async (c) => {
        const query = parseQuery(c, NodeHealthQuery);
        requireEnvironment(c, s.config, query.environment);
        const thresholds = {
          ...DEFAULT_THRESHOLDS,
          memoryHeadroom: s.config.environments[query.environment]!.policy.memory_headroom,
        };
        let resources;
        try {
          resources = await (await pve(query.environment)).cluster.resources();
        } catch (err) {
          const reason = err instanceof Error ? redact(err.message) : 'request failed';
          throw new ApiError(502, 'proxmox_unavailable', `the Proxmox API of '${query.environment}' failed: ${reason}`);
        }
        const health = assessNodeHealth(resources, thresholds);
        const struggling = health.filter((n) => n.status !== 'ok');
        return c.json({
          environment: query.environment,
          thresholds,
          struggling: struggling.map((n) => n.node),
          nodes: query.struggling ? struggling : health,
        } satisfies z.infer<typeof NodeHealthReport>);
      },
    },
  ];
}
