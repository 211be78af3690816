/** /version, /cluster/*, /access/*, /pools, /storage */
import { normalizeAclPath } from '../access.js';
import { clusterOptions, storageConfigs } from '../ops/node-config.js';
import { clusterResources, clusterStatus, nextId, version } from '../ops/views.js';
import type { Handlers } from './context.js';
import { ownTask, taskListEntry } from './nodes.js';

/** How many recent tasks /cluster/tasks shows (PVE keeps a short list per node in pmxcfs). */
const CLUSTER_TASKS = 50;

export const clusterHandlers: Handlers = {
  version: ({ cluster, local }) => version(cluster.state.node(local)),
  clusterResources: ({ cluster, params, can }) => clusterResources(cluster, params.type, can),
  clusterStatus: ({ cluster, local }) => clusterStatus(cluster, local),
  clusterNextId: ({ cluster, params }) => nextId(cluster, params.vmid),
  clusterTasks: ({ cluster, caller, can }) => {
    const all = can('/', ['Sys.Audit']);
    return cluster.tasks
      .all()
      .filter((t) => all || ownTask(t, caller.authid))
      .sort((a, b) => b.starttime - a.starttime)
      .slice(0, CLUSTER_TASKS)
      .map(taskListEntry);
  },
  clusterOptions: () => clusterOptions(),
  // The simulated cluster defines no resource pools.
  pools: () => [],
  storageConfigs: ({ cluster, params, can }) => storageConfigs(cluster, params.type, can),
  haResources: ({ cluster, params }) =>
    [...cluster.state.ha.values()].filter((r) => !params.type || r.type === params.type).map((r) => ({ ...r })),
  haRules: ({ cluster, params }) =>
    cluster.state.haRules
      .filter((r) => !params.type || r.type === params.type)
      .filter((r) => !params.resource || r.resources.includes(params.resource))
      .map((r) => ({
        rule: r.rule,
        type: r.type,
        resources: r.resources.join(','),
        ...(r.nodes.length ? { nodes: r.nodes.join(',') } : {}),
        ...(r.affinity ? { affinity: r.affinity } : {}),
        strict: r.strict ? 1 : 0,
      })),
};

export const accessHandlers: Handlers = {
  accessPermissions: ({ cluster, caller, params }) => {
    const subject = params.userid ?? caller.authid;
    const token = cluster.access.tokens.find((t) => t.tokenId === subject);
    if (!token) return {};
    return cluster.access.permissionTree(token, params.path === undefined ? undefined : normalizeAclPath(params.path));
  },
};
