/** A node's tasks: `/nodes/{node}/tasks/*` (wait.ts waits on one). */
import { z } from 'zod';
import { defineEndpoint, perm, userAll } from '../endpoint.js';
import { pve } from '../params.js';
import type { PermissionCheck } from '../permissions.js';

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

/** One task: the node it runs on and its UPID. */
const task = { node: pve.node(), upid: pve.string() };

/** The task's owner may; anyone else needs `privilege` on the node. */
const ownerOr = (privilege: string): PermissionCheck => ({
  kind: 'or',
  checks: [{ kind: 'task-owner' }, perm('/nodes/{node}', [privilege])],
});
const readNote = "The task's owner may read it; anyone else needs Sys.Audit on the node.";

export const tasks = {
  status: defineEndpoint({
    name: 'taskStatus',
    method: 'GET',
    path: '/nodes/{node}/tasks/{upid}/status',
    params: task,
    returns: TaskStatus,
    permission: ownerOr('Sys.Audit'),
    permissionNote: readNote,
    async: false,
  }),
  log: defineEndpoint({
    name: 'taskLog',
    method: 'GET',
    path: '/nodes/{node}/tasks/{upid}/log',
    params: {
      ...task,
      start: pve.integer({ minimum: 0 }).optional(),
      limit: pve.integer({ minimum: 0 }).optional(),
      download: pve.boolean().optional(),
    },
    // The envelope also carries `total` (the number of lines), beside `data`.
    returns: z.array(z.looseObject({ n: z.number().int(), t: z.string() })),
    permission: ownerOr('Sys.Audit'),
    permissionNote: readNote,
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
    params: task,
    returns: z.null(),
    permission: ownerOr('Sys.Modify'),
    permissionNote: "The task's owner may stop it; anyone else needs Sys.Modify on the node.",
    async: false,
  }),
} as const;
