/** The cluster as a whole: `/version` and `/cluster/*` (HA has its own module, ha/). */
import { z } from 'zod';
import { defineEndpoint, perm, pveBoolean, userAll } from '../endpoint.js';
import { pve } from '../params.js';
import { TaskStatus } from '../tasks/endpoints.js';

export const ClusterResource = z.object({
  id: z.string(),
  type: z.enum(['node', 'storage', 'pool', 'qemu', 'lxc', 'openvz', 'sdn', 'network']),
  node: z.string().optional(),
  vmid: z.number().int().optional(),
  name: z.string().optional(),
  status: z.string().optional(),
  storage: z.string().optional(),
  content: z.string().optional(),
  shared: pveBoolean.optional(),
  pool: z.string().optional(),
  maxmem: z.number().optional(),
  mem: z.number().optional(),
  maxcpu: z.number().optional(),
  cpu: z.number().optional(),
  maxdisk: z.number().optional(),
  disk: z.number().optional(),
  template: pveBoolean.optional(),
  tags: z.string().optional(),
  hastate: z.string().optional(),
  uptime: z.number().optional(),
  lock: z.string().optional(),
  plugintype: z.string().optional(),
});
export type ClusterResource = z.output<typeof ClusterResource>;

export const cluster = {
  version: defineEndpoint({
    name: 'version',
    method: 'GET',
    path: '/version',
    params: {},
    returns: z.looseObject({ version: z.string(), release: z.string(), repoid: z.string() }),
    permission: userAll,
    async: false,
  }),
  resources: defineEndpoint({
    name: 'clusterResources',
    method: 'GET',
    path: '/cluster/resources',
    params: { type: pve.enum(['vm', 'storage', 'node', 'sdn']).optional() },
    returns: z.array(ClusterResource),
    permission: userAll,
    async: false,
  }),
  status: defineEndpoint({
    name: 'clusterStatus',
    method: 'GET',
    path: '/cluster/status',
    params: {},
    returns: z.array(
      z.looseObject({
        id: z.string(),
        name: z.string(),
        type: z.enum(['cluster', 'node']),
        ip: z.string().optional(),
        local: pveBoolean.optional(),
        nodeid: z.number().int().optional(),
        online: pveBoolean.optional(),
        quorate: pveBoolean.optional(),
        nodes: z.number().int().optional(),
      }),
    ),
    permission: perm('/', ['Sys.Audit']),
    async: false,
  }),
  /** The next free VMID (or, given `vmid`, whether that one is free: 400 when taken). */
  nextId: defineEndpoint({
    name: 'clusterNextId',
    method: 'GET',
    path: '/cluster/nextid',
    params: { vmid: pve.vmid().optional() },
    // PVE renders the id as a string; the client normalises it.
    returns: z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]),
    permission: userAll,
    async: false,
  }),
  /** Recent tasks of every node. */
  tasks: defineEndpoint({
    name: 'clusterTasks',
    method: 'GET',
    path: '/cluster/tasks',
    params: {},
    returns: z.array(TaskStatus.partial().extend({ upid: z.string() })),
    permission: userAll,
    async: false,
  }),
  options: defineEndpoint({
    name: 'clusterOptions',
    method: 'GET',
    path: '/cluster/options',
    params: {},
    returns: z.looseObject({}),
    permission: perm('/', ['Sys.Audit']),
    async: false,
  }),
} as const;
