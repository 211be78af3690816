/** Resource pools: `/pools`. */
import { z } from 'zod';
import { defineEndpoint, userAll } from '../endpoint.js';
import { pve } from '../params.js';

export const pools = {
  list: defineEndpoint({
    name: 'pools',
    method: 'GET',
    path: '/pools',
    params: {
      poolid: pve.string({ format: 'pve-poolid' }).optional(),
      type: pve.enum(['qemu', 'lxc', 'storage'], { requires: 'poolid' }).optional(),
    },
    returns: z.array(
      z.looseObject({
        poolid: z.string(),
        comment: z.string().optional(),
        members: z.array(z.looseObject({ id: z.string() })).optional(),
      }),
    ),
    permission: userAll,
    async: false,
  }),
} as const;
