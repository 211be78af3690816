/**
 * The configured environments as operators need to see them: clusters, nodes, VMID ranges,
 * defaults and policy. Built field by field from the configuration, so credentials (and
 * anything added to the configuration later) never appear unless listed here.
 */
import type { z } from 'zod';
import type { EnvironmentConfig } from '../../lib/config/schema.js';
import { inScope } from '../auth.js';
import type { Services } from '../deps.js';
import type { Route } from '../route.js';
import { EnvironmentList, type EnvironmentSummary } from '../schemas.js';

function summarize(name: string, env: EnvironmentConfig): z.infer<typeof EnvironmentSummary> {
  return {
    name,
    cluster: env.cluster.name,
    nodes: env.cluster.nodes.map((n) => ({ name: n.name, host: n.host, port: n.port })),
    vmidRanges: env.vmid_ranges,
    defaults: { ...env.defaults },
    tags: env.tags,
    naming: env.naming,
    policy: { ...env.policy },
    tls: env.tls.insecure ? 'insecure' : env.tls.ca_file ? 'ca' : 'fingerprint',
  };
}

export function environmentRoutes(s: Services): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/environments',
      tag: 'environments',
      summary: 'Configured environments (never their credentials)',
      description: 'Lists the environments the caller’s token may use.',
      access: 'read',
      responses: { 200: { description: 'environments', schema: EnvironmentList } },
      handler: async (c) => {
        const identity = c.get('identity');
        const environments = Object.entries(s.config.environments)
          .filter(([name]) => inScope(identity, name))
          .map(([name, env]) => summarize(name, env));
        return c.json({ environments } satisfies z.infer<typeof EnvironmentList>);
      },
    },
  ];
}
