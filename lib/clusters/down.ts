/**
 * The plan of cluster-down: every VM carrying the cluster's tag, and only those. Anything
 * that would make the teardown half-succeed (a protected VM, a template or container carrying
 * the tag) refuses the whole plan before a single VM goes down.
 */
import type { PlanStep } from '../operations/plan.js';
import { formatBytes } from '../planning/units.js';
import { clusterTag } from './identity.js';
import { ClusterPlanRefusal, type SnapshotGuest } from './up.js';

export interface TeardownMember {
  vmid: number;
  name: string;
  node: string;
  status: string;
}

export interface ClusterDownPlan {
  cluster: string;
  environment: string;
  tag: string;
  members: TeardownMember[];
  shutdownTimeoutSeconds: number;
  maxParallel: number;
  /** The cluster's secrets directory on the worker, removed once the VMs are gone. */
  secretsDir: string;
}

export interface ClusterDownDraft {
  summary: string;
  plan: ClusterDownPlan;
  steps: PlanStep[];
  warnings: string[];
  nodes: string[];
}

export function planClusterDown(
  cluster: string,
  guests: readonly (SnapshotGuest & { protection?: boolean })[],
  opts: {
    environment: string;
    shutdownTimeoutSeconds: number;
    maxParallel: number;
    secretsDir: string;
    secretsExist: boolean;
  },
): ClusterDownDraft {
  const tag = clusterTag(cluster);
  const tagged = guests.filter((g) => g.tags.includes(tag)).sort((a, b) => a.vmid - b.vmid);
  const problems: string[] = [];
  for (const g of tagged) {
    const what = `${g.type === 'qemu' ? 'VM' : 'CT'} ${g.vmid} '${g.name}'`;
    if (g.type !== 'qemu')
      problems.push(
        `${what} carries tag ${tag}, but clusters are made of VMs: remove the tag (cluster-down destroys only the cluster's VMs)`,
      );
    else if (g.template)
      problems.push(`${what} is a template carrying tag ${tag}: remove the tag (templates are never destroyed here)`);
    else if (g.protection) problems.push(`${what} is protected: turn protection off to let cluster-down destroy it`);
  }
  if (problems.length > 0) throw new ClusterPlanRefusal(problems);

  const members = tagged.map((g) => ({ vmid: g.vmid, name: g.name, node: g.node, status: g.status }));
  const plan: ClusterDownPlan = {
    cluster,
    environment: opts.environment,
    tag,
    members,
    shutdownTimeoutSeconds: opts.shutdownTimeoutSeconds,
    maxParallel: opts.maxParallel,
    secretsDir: opts.secretsDir,
  };
  // A cluster already gone is an answer, not a refusal: a plan without steps completes as nothing-to-do.
  if (members.length === 0 && !opts.secretsExist) {
    return {
      summary: `nothing to do: no VM in ${opts.environment} carries tag ${tag}, and no secrets of cluster '${cluster}' are kept`,
      plan,
      steps: [],
      warnings: [],
      nodes: [],
    };
  }

  const steps: PlanStep[] = [];
  for (const m of members) {
    steps.push({
      id: `shutdown:${m.name}`,
      action: 'shutdown',
      vmid: m.vmid,
      name: m.name,
      node: m.node,
      params: { timeout: opts.shutdownTimeoutSeconds, forceStop: true },
      description:
        m.status === 'running'
          ? `shut VM ${m.vmid} '${m.name}' down gracefully; stop it after ${opts.shutdownTimeoutSeconds} s`
          : `VM ${m.vmid} '${m.name}' is ${m.status}: nothing to shut down`,
    });
    steps.push({
      id: `destroy:${m.name}`,
      action: 'destroy',
      vmid: m.vmid,
      name: m.name,
      node: m.node,
      params: { purge: true, 'destroy-unreferenced-disks': true },
      description: `destroy VM ${m.vmid} '${m.name}' on ${m.node} with its disks, after checking its vmid, name and tag ${tag} once more`,
    });
  }
  steps.push(
    { id: 'verify', action: 'verify', description: `check that no guest carries tag ${tag} any more` },
    {
      id: 'forget-secrets',
      action: 'remove-secrets',
      description: opts.secretsExist
        ? `remove the cluster's machine configs, talosconfig and kubeconfig from ${opts.secretsDir}`
        : `no secrets kept in ${opts.secretsDir}`,
    },
  );
  const memory = tagged.reduce((n, g) => n + g.memoryBytes, 0);
  const nodes = [...new Set(members.map((m) => m.node))].sort();
  return {
    summary:
      members.length > 0
        ? `tear down cluster ${cluster}: destroy ${members.length} VMs tagged ${tag} on ${nodes.join(', ')} (${formatBytes(memory)} memory freed)`
        : `cluster ${cluster} has no VMs left: remove its secrets`,
    plan,
    steps,
    warnings: [],
    nodes,
  };
}
