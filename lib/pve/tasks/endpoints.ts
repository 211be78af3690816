/** A node's tasks: `/nodes/{node}/tasks/*` (wait.ts waits on one). */
import { z } from 'zod';
import { defineEndpoint, perm, userAll } from '../endpoint.js';
import { pve } from '../params.js';

export const TaskStatus = z.looseObject({
  upid: z.string(),
  node: z.string(),
  pid: z.number().int(),
  pstart: z.number().int(),
  starttime: z.number().int(),
  type: z.string(),
  id: z.string(),
  user: z.string(),
  tokenid: z.string().optional(),
  status: z.enum(['running', 'stopped']),
  /** Only once stopped: `OK`, `WARNINGS: n`, or the error message. */
  exitstatus: z.string().optional(),
});
export type TaskStatus = z.output<typeof TaskStatus>;

export const tasks = {
  status: defineEndpoint({
    name: 'taskStatus',
    method: 'GET',
    path: '/nodes/{node}/tasks/{upid}/status',
    params: { node: pve.node(), upid: pve.string() },
    returns: TaskStatus,
    permission: { kind: 'or', checks: [{ kind: 'task-owner' }, perm('/nodes/{node}', ['Sys.Audit'])] },
    permissionNote: "The task's owner may read it; anyone else needs Sys.Audit on the node.",
    async: false,
  }),
  log: defineEndpoint({
    name: 'taskLog',
    method: 'GET',
    path: '/nodes/{node}/tasks/{upid}/log',
    params: {
      node: pve.node(),
      upid: pve.string(),
      start: pve.integer({ minimum: 0 }).optional(),
      limit: pve.integer({ minimum: 0 }).optional(),
      download: pve.boolean().optional(),
    },
    // The envelope also carries `total` (the number of lines), beside `data`.
    returns: z.array(z.looseObject({ n: z.number().int(), t: z.string() })),
    permission: { kind: 'or', checks: [{ kind: 'task-owner' }, perm('/nodes/{node}', ['Sys.Audit'])] },
    permissionNote: "The task's owner may read it; anyone else needs Sys.Audit on the node.",
    async: false,
  }),
  list: defineEndpoint({
    name: 'taskList',
    method: 'GET',
    path: '/nodes/{node}/tasks',
    params: {
      node: pve.node(),
      errors: pve.boolean().optional(),
      limit: pve.integer({ minimum: 0 }).optional(),
      start: pve.integer({ minimum: 0 }).optional(),
      since: pve.integer().optional(),
      until: pve.integer().optional(),
      source: pve.enum(['archive', 'active', 'all']).optional(),
      statusfilter: pve.string({ format: 'pve-task-status-type-list' }).optional(),
      typefilter: pve.string().optional(),
      userfilter: pve.string().optional(),
      vmid: pve.vmid().optional(),
    },
    returns: z.array(
      z.looseObject({
        upid: z.string(),
        node: z.string(),
        type: z.string(),
        id: z.string(),
        user: z.string(),
        starttime: z.number().int(),
        endtime: z.number().int().optional(),
        status: z.string().optional(),
      }),
    ),
    permission: userAll,
    async: false,
  }),
  stop: defineEndpoint({
    name: 'taskStop',
    method: 'DELETE',
    path: '/nodes/{node}/tasks/{upid}',
    params: { node: pve.node(), upid: pve.string() },
    returns: z.null(),
    permission: { kind: 'or', checks: [{ kind: 'task-owner' }, perm('/nodes/{node}', ['Sys.Modify'])] },
    permissionNote: "The task's owner may stop it; anyone else needs Sys.Modify on the node.",
    async: false,
  }),
} as const;
