/** The nodes themselves: `/nodes` and `/nodes/{node}/{status,network,time}`. */
import { z } from 'zod';
import { defineEndpoint, perm, pveBoolean, userAll } from '../endpoint.js';
import { pve } from '../params.js';

export const nodes = {
  list: defineEndpoint({
    name: 'nodes',
    method: 'GET',
    path: '/nodes',
    params: {},
    returns: z.array(
      z.looseObject({
        node: z.string(),
        status: z.enum(['unknown', 'online', 'offline']),
        cpu: z.number().optional(),
        maxcpu: z.number().int().optional(),
        mem: z.number().optional(),
        maxmem: z.number().optional(),
        uptime: z.number().optional(),
        ssl_fingerprint: z.string().optional(),
      }),
    ),
    permission: userAll,
    async: false,
  }),
  status: defineEndpoint({
    name: 'nodeStatus',
    method: 'GET',
    path: '/nodes/{node}/status',
    params: { node: pve.node() },
    returns: z.looseObject({
      cpu: z.number(),
      cpuinfo: z.looseObject({
        cores: z.number().int(),
        cpus: z.number().int(),
        sockets: z.number().int(),
        model: z.string(),
      }),
      memory: z.looseObject({
        total: z.number(),
        used: z.number(),
        free: z.number(),
        available: z.number().optional(),
      }),
      loadavg: z.array(z.string()).optional(),
      uptime: z.number().optional(),
      pveversion: z.string().optional(),
    }),
    permission: perm('/nodes/{node}', ['Sys.Audit']),
    async: false,
  }),
  network: defineEndpoint({
    name: 'nodeNetwork',
    method: 'GET',
    path: '/nodes/{node}/network',
    params: {
      node: pve.node(),
      type: pve
        .enum([
          'bridge',
          'bond',
          'eth',
          'alias',
          'vlan',
          'fabric',
          'OVSBridge',
          'OVSBond',
          'OVSPort',
          'OVSIntPort',
          'vnet',
          'any_bridge',
          'any_local_bridge',
          'include_sdn',
        ])
        .optional(),
    },
    returns: z.array(z.looseObject({ iface: z.string(), type: z.string(), active: pveBoolean.optional() })),
    permission: userAll,
    async: false,
  }),
  /** The node's own clock, which need not agree with ours. */
  time: defineEndpoint({
    name: 'nodeTime',
    method: 'GET',
    path: '/nodes/{node}/time',
    params: { node: pve.node() },
    returns: z.looseObject({ time: z.number().int(), localtime: z.number().int(), timezone: z.string() }),
    permission: perm('/nodes/{node}', ['Sys.Audit']),
    async: false,
  }),
} as const;
