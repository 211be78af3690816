/** /nodes, /nodes/{node}/status, /nodes/{node}/tasks/*, /nodes/{node}/network, /nodes/{node}/time */
import { parseUpid } from '../../lib/pve/upid.js';
import type { Cluster } from '../cluster.js';
import { fail, parameterError } from '../errors.js';
import { nodeNetwork, nodeTime } from '../ops/node-config.js';
import { nodeList, nodeStatus } from '../ops/views.js';
import type { TaskRecord } from '../tasks.js';
import { Envelope, type Handlers } from './context.js';

function taskOn(cluster: Cluster, node: string, upid: string): TaskRecord {
  const parsed = parseUpid(upid);
  if (!parsed) throw parameterError({ upid: 'unable to parse worker upid' });
  const task = cluster.tasks.get(upid);
  if (!task || parsed.node !== node) throw fail('no such task');
  return task;
}

function taskStatus(task: TaskRecord): Record<string, unknown> {
  return {
    upid: task.upid,
    node: task.node,
    pid: task.pid,
    pstart: task.pstart,
    starttime: task.starttime,
    type: task.type,
    id: task.id,
    user: task.user,
    ...(task.tokenid ? { tokenid: task.tokenid } : {}),
    status: task.status,
    ...(task.status === 'stopped' ? { exitstatus: task.exitstatus } : {}),
  };
}

/** A task as task lists show it: PVE 9 names the user and the token apart. */
export function taskListEntry(t: TaskRecord): Record<string, unknown> {
  return {
    upid: t.upid,
    node: t.node,
    pid: t.pid,
    pstart: t.pstart,
    starttime: t.starttime,
    type: t.type,
    id: t.id,
    user: t.user,
    ...(t.tokenid ? { tokenid: t.tokenid } : {}),
    ...(t.status === 'stopped' ? { endtime: t.endtime, status: t.exitstatus } : {}),
  };
}

/** Whether a task was started by this caller (`user@realm!token` as one id). */
export function ownTask(t: TaskRecord, authid: string): boolean {
  return `${t.user}${t.tokenid ? `!${t.tokenid}` : ''}` === authid;
}

export const nodeHandlers: Handlers = {
  nodeNetwork: ({ cluster, params }) => nodeNetwork(cluster, params.node, params.type),
  nodeTime: ({ cluster, params }) => nodeTime(cluster, params.node),
  nodes: ({ cluster, can, fingerprintOf }) => nodeList(cluster, can, fingerprintOf),
  nodeStatus: ({ cluster, params }) => nodeStatus(cluster, params.node),

  taskStatus: (ctx) => taskStatus(taskOn(ctx.cluster, ctx.params.node, ctx.params.upid)),
  taskLog: (ctx) => {
    const task = taskOn(ctx.cluster, ctx.params.node, ctx.params.upid);
    const lines = task.lines.length ? task.lines : ['no content'];
    const start = ctx.params.start ?? 0;
    const limit = ctx.params.limit ?? 50;
    const data = lines.slice(start, start + limit).map((t, i) => ({ n: start + i + 1, t }));
    return new Envelope({ data, total: lines.length });
  },
  taskList: ({ cluster, params, caller, can }) => {
    const all = can(`/nodes/${params.node}`, ['Sys.Audit']);
    const types = params.typefilter?.split(',');
    const statuses = params.statusfilter?.split(/[\s,;]+/);
    const source = params.source ?? 'archive';
    const tasks = cluster.tasks
      .onNode(params.node)
      .filter((t) => all || ownTask(t, caller.authid))
      .filter((t) => source === 'all' || (source === 'active') === (t.status === 'running'))
      .filter((t) => !types || types.includes(t.type))
      .filter((t) => params.vmid === undefined || t.id === String(params.vmid))
      .filter((t) => !params.userfilter || t.user.includes(params.userfilter))
      .filter((t) => params.since === undefined || t.starttime >= params.since)
      .filter((t) => params.until === undefined || t.starttime <= params.until)
      .filter((t) => !params.errors || (t.status === 'stopped' && t.exitstatus !== 'OK'))
      .filter((t) => !statuses || statuses.includes(t.status === 'running' ? 'running' : classify(t.exitstatus)));
    const start = params.start ?? 0;
    const limit = params.limit ?? 50;
    return tasks.slice(start, start + limit).map(taskListEntry);
  },
  taskStop: (ctx) => {
    const task = taskOn(ctx.cluster, ctx.params.node, ctx.params.upid);
    ctx.cluster.tasks.stop(task.upid);
    return null;
  },
};

/** PVE's task status classes for `statusfilter`. */
function classify(exitstatus: string | undefined): string {
  if (exitstatus === 'OK') return 'ok';
  if (exitstatus?.startsWith('WARNINGS')) return 'warning';
  return exitstatus === undefined ? 'unknown' : 'error';
}
