/**
 * Planning the rollout: the cluster read once, and — with every reason at once — refused when
 * it cannot work; otherwise the order, the groups, every node's evacuation and overlap, and
 * the runbook planned per node.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import {
  describeRollout,
  planRollout,
  RolloutRefusedError,
  type MaintenancePlan,
  type NodeSettings,
  type Rollout,
} from '../../lib/maintenance/plan.js';
import type { PlacementPolicy } from '../../lib/planning/evacuation.js';
import type { ClusterSnapshot } from '../../lib/planning/snapshot.js';
import type { PveClient } from '../../lib/pve/client.js';
import { pveVersionOf } from '../../lib/maintenance/upgrade.js';
import type { RunbookPlan } from '../../lib/runbooks/plan.js';
import type { PlanDraft } from '../../lib/operations/plan.js';
import { readClusterSnapshot } from '../inventory-snapshot.js';
import { sshProblems } from '../node-ssh.js';
import { operationId, prepareRunbook } from '../runbook.js';
import { nodeAccess, type RollingMaintenanceDeps, type RollingMaintenanceRequest } from './common.js';
import { classified, fail } from '../failures.js';
import { Failure } from '../../lib/operations/failures.js';

export function createRolloutPlanning(deps: RollingMaintenanceDeps) {
  const { environmentOf, busyTasks } = nodeAccess(deps);

  /** What stops any rollout now: SSH not configured, no quorum, someone else's tasks running. */
  async function clusterProblems(
    client: PveClient,
    input: RollingMaintenanceRequest,
    clusterNodes: string[],
  ): Promise<string[]> {
    const problems: string[] = [];
    if (input.upgrade || input.reboot !== 'never' || input.haMaintenance) {
      const ssh = sshProblems(environmentOf(input.environment), input.nodes ?? clusterNodes);
      if (ssh.length > 0) problems.push(`the upgrade and reboot run over SSH, but ${ssh.join('; ')}`);
    }
    const status = await client.cluster.status();
    if (!status.find((e) => e.type === 'cluster')?.quorate) problems.push('the cluster is not quorate');
    problems.push(
      ...(await busyTasks(
        client,
        clusterNodes.filter((n) => status.some((e) => e.type === 'node' && e.name === n && e.online)),
      )),
    );
    return problems;
  }

  /** The runbook planned for every node, so that the one approval covers its steps. */
  async function planRunbooks(
    input: RollingMaintenanceRequest,
    turns: readonly { node: string }[],
  ): Promise<MaintenancePlan['runbook']> {
    if (!input.runbook) return undefined;
    const { name, parameters } = input.runbook;
    const plans: Record<string, RunbookPlan> = {};
    let sha256 = '';
    for (const { node } of turns) {
      const prepared = await forNode(node, () =>
        prepareRunbook(
          { ...deps, ...(deps.runbooksDir ? { runbooksDir: deps.runbooksDir } : {}) },
          { environment: input.environment, runbook: name, parameters: { ...parameters, node } },
          operationId(),
        ),
      );
      plans[node] = prepared.details.plan;
      sha256 = prepared.details.runbookSha256;
    }
    return { name, sha256, plans };
  }

  return {
    /**
     * Reads the cluster once and plans the rollout: order, groups, every node's evacuation.
     * Refuses — with every reason — a rollout that cannot work.
     */
    async planRollingMaintenance(input: RollingMaintenanceRequest): Promise<PlanDraft<MaintenancePlan>> {
      const env = environmentOf(input.environment);
      const client = await deps.pve(input.environment);
      const ctx = Context.current();
      return classified('read', async () => {
        const clusterNodes = (await client.nodes.list()).map((n) => n.node).sort();
        const problems = await clusterProblems(client, input, clusterNodes);
        const snapshot = await readClusterSnapshot(client, {
          detailsFor: (input.nodes ?? clusterNodes).filter((n) => clusterNodes.includes(n)),
          onProgress: (done, total) => ctx.heartbeat({ read: `${done}/${total} guests` }),
        });
        const drain = drainOf(input);
        const rollout = planOrRefuse(snapshot, input, drain, env.policy, problems);
        const runbook = await planRunbooks(input, rollout.turns);
        return describeRollout({
          environment: input.environment,
          clusterNodes: rollout.clusterNodes,
          turns: rollout.turns,
          batches: rollout.batches,
          versions: await readVersions(client, rollout.clusterNodes),
          approveEachNode: input.approveEachNode,
          ...(runbook ? { runbook } : {}),
          pauseBetweenNodesMs: input.pauseBetweenNodesSeconds * 1000,
          settings: {
            upgrade: input.upgrade,
            upgradeCommand: input.upgradeCommand,
            reboot: input.reboot,
            returnGuests: input.returnGuests,
            haMaintenance: input.haMaintenance,
            drain,
            memoryHeadroom: env.policy.memory_headroom,
            memoryBasis: env.policy.memory_basis,
            minNodesUp: rollout.minNodesUp,
            upgradeTimeoutMs: input.upgradeTimeoutSeconds * 1000,
            bootTimeoutMs: input.bootTimeoutSeconds * 1000,
            maxNodeMs: input.maxNodeMinutes * 60_000,
            stopOnFailure: input.stopOnFailure,
          },
        });
      });
    },
  };
}

/** How each node is emptied, from the request. */
function drainOf(input: RollingMaintenanceRequest): NodeSettings['drain'] {
  return {
    maxParallel: input.maxParallel,
    maxParallelPerTarget: input.maxParallelPerTarget,
    ...(input.bwlimitMiBps ? { bwlimitMiBps: input.bwlimitMiBps } : {}),
    includeStopped: input.includeStopped,
    includeTemplates: false,
    localDisks: input.localDisks,
    containers: input.containers,
    containerShutdownTimeoutSeconds: input.containerShutdownTimeoutSeconds,
    onFailure: 'stop',
    linkGbps: input.linkGbps,
  };
}

/** The rollout, or a refusal listing every problem — the cluster's and the plan's. */
function planOrRefuse(
  snapshot: ClusterSnapshot,
  input: RollingMaintenanceRequest,
  drain: NodeSettings['drain'],
  policy: PlacementPolicy,
  problems: string[],
): Rollout {
  let rollout: Rollout | undefined;
  try {
    rollout = planRollout(
      snapshot,
      {
        ...(input.nodes ? { nodes: input.nodes } : {}),
        keepOrder: input.keepOrder,
        parallelNodes: input.parallelNodes,
        // A pause between nodes asks for a gap, which an overlap would not leave.
        overlap: input.overlap && input.pauseBetweenNodesSeconds === 0,
        ...(input.minNodesUp ? { minNodesUp: input.minNodesUp } : {}),
        drain,
      },
      policy,
    );
  } catch (err) {
    if (!(err instanceof RolloutRefusedError)) throw err;
    if (err.field) fail(Failure.PlanRefused, `${err.field}: ${err.problems.join('; ')}`, { field: err.field });
    problems.push(...err.problems);
  }
  if (problems.length > 0 || !rollout) {
    const listed = problems.length === 1 ? problems[0] : problems.map((p, i) => `(${i + 1}) ${p}`).join(' ');
    fail(Failure.PlanRefused, `rolling maintenance refused: ${listed}`);
  }
  return rollout;
}

/** `pveversion` of every node, for the plan. */
async function readVersions(client: PveClient, nodes: readonly string[]): Promise<Record<string, string>> {
  const versions: Record<string, string> = {};
  for (const node of nodes) {
    const s = await client.nodes.status({ node });
    versions[node] = (s.pveversion && pveVersionOf(s.pveversion)) ?? 'unknown';
  }
  return versions;
}

/** Runs a per-node part of the plan, naming the node in its refusal. */
async function forNode<T>(node: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ApplicationFailure && err.nonRetryable) {
      throw ApplicationFailure.create({
        type: err.type ?? Failure.PlanRefused,
        message: `runbook for ${node}: ${err.message}`,
        nonRetryable: true,
      });
    }
    throw err;
  }
}
