/** High availability: `/cluster/ha/*`, read to plan around HA-managed guests and their rules. */
import { z } from 'zod';
import { defineEndpoint, perm, pveBoolean } from '../endpoint.js';
import { pve } from '../params.js';

export const ha = {
  resources: defineEndpoint({
    name: 'haResources',
    method: 'GET',
    path: '/cluster/ha/resources',
    params: { type: pve.enum(['ct', 'vm']).optional() },
    returns: z.array(
      z.looseObject({
        sid: z.string(),
        type: z.string().optional(),
        state: z.string().optional(),
        group: z.string().optional(),
        comment: z.string().optional(),
      }),
    ),
    permission: perm('/', ['Sys.Audit']),
    async: false,
  }),
  rules: defineEndpoint({
    name: 'haRules',
    method: 'GET',
    path: '/cluster/ha/rules',
    params: {
      resource: pve.string().optional(),
      type: pve.enum(['node-affinity', 'resource-affinity']).optional(),
    },
    returns: z.array(
      z.looseObject({
        rule: z.string(),
        type: z.string().optional(),
        resources: z.string().optional(),
        nodes: z.string().optional(),
        affinity: z.string().optional(),
        strict: pveBoolean.optional(),
        disable: pveBoolean.optional(),
      }),
    ),
    permission: perm('/', ['Sys.Audit']),
    async: false,
  }),
} as const;
