/**
 * Planning a rolling maintenance from one cluster snapshot: which nodes, in which order and
 * groups, and — for every node — the evacuation that empties it, planned up front with the
 * evacuation planner. A rollout that cannot work is refused with every reason at once: a
 * node offline, quorum or `minNodesUp` broken by the group size, a running guest that cannot
 * leave its node.
 *
 * Each node is planned against the cluster as it will be at its turn: the nodes before it are
 * done and their guests are back home (the snapshot as read), while the other nodes of its
 * own group are being emptied at the same time (their guests already moved, and they receive
 * nothing).
 */
import type { OperationPlan, PlanStep } from '../operations/plan.js';
import { nodeStepId } from '../operations/step-ids.js';
import {
  planEvacuation,
  type EvacuationPlan,
  type EvacuationRequest,
  type PlacementPolicy,
} from '../planning/evacuation.js';
import { describeStuck, guestLabel, runningLeftBehind } from '../planning/evacuation-outcome.js';
import type { MemoryBasis } from '../planning/placement.js';
import type { ClusterSnapshot } from '../planning/snapshot.js';
import { formatDuration } from '../planning/units.js';
import type { RunbookPlan } from '../runbooks/plan.js';

/** How each node is emptied: an evacuation request without the node and the target filters. */
export type DrainRequest = Omit<
  EvacuationRequest,
  'node' | 'allowTargets' | 'denyTargets' | 'haMaintenance' | 'targetStorage'
>;

export interface RolloutRequest {
  /** Nodes to maintain; every node of the cluster when absent. */
  nodes?: string[];
  /** Keep the given order instead of the planned one. */
  keepOrder: boolean;
  /** Nodes maintained at the same time. */
  parallelNodes: number;
  /** Nodes that must stay up; never fewer than quorum needs. */
  minNodesUp?: number;
  /** Empty a group while the previous group's guests return, wherever both fit (see overlapping). */
  overlap: boolean;
  drain: DrainRequest;
}

export interface NodeTurn {
  node: string;
  /** Index of the group the node is maintained in. */
  batch: number;
  /** The evacuation that empties it, as planned now (it is planned again, fresh, at its turn). */
  evacuation: EvacuationPlan;
  /**
   * The previous group, whose guests return home while this node is emptied: the node
   * leaves their guests to their return, counts them both where they are and at home, and
   * goes down only once they have left it. Absent: the previous group finishes first.
   */
  overlaps?: string[];
}

export interface Rollout {
  clusterNodes: string[];
  /** In the order they are maintained. */
  turns: NodeTurn[];
  batches: string[][];
  /** Nodes that must be up whenever a node is taken down: at least a quorum. */
  minNodesUp: number;
}

/** A rollout that cannot work; `field` names the request field at fault, when one is. */
export class RolloutRefusedError extends Error {
  constructor(
    readonly problems: string[],
    readonly field?: string,
  ) {
    super(`${field ? `${field}: ` : ''}${problems.join('; ')}`);
    this.name = 'RolloutRefusedError';
  }
}

export function planRollout(snapshot: ClusterSnapshot, request: RolloutRequest, policy: PlacementPolicy): Rollout {
  const clusterNodes = snapshot.nodes.map((n) => n.name).sort();
  const selected = request.nodes ?? clusterNodes;
  const unknown = selected.filter((n) => !clusterNodes.includes(n));
  if (unknown.length > 0) {
    throw new RolloutRefusedError(
      [
        `${unknown.join(', ')} ${unknown.length === 1 ? 'is not a node' : 'are not nodes'} of this cluster (${clusterNodes.join(', ')})`,
      ],
      'nodes',
    );
  }
  const repeated = selected.filter((n, i) => selected.indexOf(n) !== i);
  if (repeated.length > 0)
    throw new RolloutRefusedError([`${[...new Set(repeated)].join(', ')} listed more than once`], 'nodes');

  const problems: string[] = [];
  const offline = snapshot.nodes.filter((n) => !n.online).map((n) => n.name);
  if (offline.length > 0) {
    problems.push(
      `${offline.join(', ')} ${offline.length === 1 ? 'is' : 'are'} offline: every node must be online before a rolling maintenance starts`,
    );
  }
  const total = clusterNodes.length;
  const quorum = Math.floor(total / 2) + 1;
  const minNodesUp = Math.max(request.minNodesUp ?? quorum, quorum);
  if (total < 2)
    problems.push('a single-node cluster has nowhere to move its guests; maintain it in a maintenance window instead');
  else if (total - request.parallelNodes < minNodesUp) {
    problems.push(
      `${request.parallelNodes} node${request.parallelNodes === 1 ? '' : 's'} at a time would leave ${total - request.parallelNodes} of ${total} up, ` +
        `but ${minNodesUp} must stay up${minNodesUp === quorum ? ' (quorum)' : ` (minNodesUp; quorum needs ${quorum})`}`,
    );
  }
  if (problems.length > 0) throw new RolloutRefusedError(problems);

  const alone = new Map(
    selected.map((node) => [node, planEvacuation(snapshot, { ...request.drain, node, haMaintenance: false }, policy)]),
  );
  const order = request.keepOrder
    ? selected
    : // Cheapest to empty first: a problem shows on the node that costs least to bring back.
      [...selected].sort((a, b) => alone.get(a)!.estimatedMs - alone.get(b)!.estimatedMs || a.localeCompare(b));

  const batches: string[][] = [];
  for (let i = 0; i < order.length; i += request.parallelNodes) batches.push(order.slice(i, i + request.parallelNodes));

  const turns: NodeTurn[] = [];
  let previous: NodeTurn[] = [];
  batches.forEach((batch, index) => {
    const group =
      (request.overlap && previous.length > 0
        ? planGroup(snapshot, batch, index, request.drain, policy, previous)
        : undefined) ?? planGroup(snapshot, batch, index, request.drain, policy, [], alone)!;
    turns.push(...group);
    previous = group;
  });

  for (const { node, evacuation } of turns) {
    const stuck = runningLeftBehind(evacuation);
    if (stuck.length > 0) {
      problems.push(`${node} cannot be emptied: ${stuck.map(describeStuck).join('; ')}`);
    }
  }
  if (problems.length > 0) throw new RolloutRefusedError(problems);
  return { clusterNodes, turns, batches, minNodesUp };
}

/**
 * The evacuations of one group, each node emptied onto the nodes outside the group (its
 * peers are emptied at the same time). While `returning` (the previous group) brings its
 * guests home, this group is planned against the cluster with those guests still away and
 * already home at once, so neither headroom nor (anti-)affinity depends on when they move;
 * their guests on this group's nodes are left to their return. Undefined when, overlapped,
 * a running guest would have to stay: the group then waits for the previous one instead.
 */
function planGroup(
  snapshot: ClusterSnapshot,
  batch: string[],
  index: number,
  drain: DrainRequest,
  policy: PlacementPolicy,
  returning: NodeTurn[],
  alone?: Map<string, EvacuationPlan>,
): NodeTurn[] | undefined {
  const returns = returning.flatMap((t) => t.evacuation.moves);
  let during = returning.reduce((s, t) => afterEvacuation(s, t.evacuation), snapshot);
  const overlap = returning.length > 0 ? { overlaps: returning.map((t) => t.node) } : {};
  const turns: NodeTurn[] = [];
  for (const node of batch) {
    const peers = batch.filter((n) => n !== node);
    const evacuation =
      peers.length === 0 && returns.length === 0 && alone
        ? alone.get(node)!
        : planEvacuation(
            during,
            {
              ...drain,
              node,
              haMaintenance: false,
              ...(peers.length ? { denyTargets: peers } : {}),
              ...(returns.length
                ? {
                    leaving: returns.filter((m) => m.target === node).map((m) => m.vmid),
                    arriving: returns.map((m) => ({ vmid: m.vmid, target: m.source })),
                  }
                : {}),
            },
            policy,
          );
    if (returns.length > 0 && runningLeftBehind(evacuation).length > 0) return undefined;
    during = afterEvacuation(during, evacuation);
    turns.push({ node, batch: index, evacuation, ...overlap });
  }
  return turns;
}

/** The snapshot once an evacuation is done: its guests on their targets, with their memory and disks. */
export function afterEvacuation(snapshot: ClusterSnapshot, plan: EvacuationPlan): ClusterSnapshot {
  const moves = new Map(plan.moves.map((m) => [m.vmid, m]));
  const memoryArriving = new Map<string, number>();
  const diskArriving = new Map<string, number>();
  for (const m of plan.moves) {
    if (m.mode !== 'offline') memoryArriving.set(m.target, (memoryArriving.get(m.target) ?? 0) + m.memoryBytes);
    for (const d of snapshot.migration[m.vmid]?.disks ?? []) {
      if (d.shared || d.cdrom) continue;
      const key = `${m.target}/${d.storage}`;
      diskArriving.set(key, (diskArriving.get(key) ?? 0) + d.size);
    }
  }
  return {
    ...snapshot,
    nodes: snapshot.nodes.map((n) => ({ ...n, memoryUsed: n.memoryUsed + (memoryArriving.get(n.name) ?? 0) })),
    storages: snapshot.storages.map((s) => ({
      ...s,
      used: s.used + (diskArriving.get(`${s.node}/${s.storage}`) ?? 0),
    })),
    guests: snapshot.guests.map((g) => (moves.has(g.vmid) ? { ...g, node: moves.get(g.vmid)!.target } : g)),
  };
}

// What an approver reads --------------------------------------------------------------------

export type RebootPolicy = 'if-required' | 'always' | 'never';

/** What happens on each node, and the limits each node's run keeps to. */
export interface NodeSettings {
  upgrade: boolean;
  upgradeCommand: string;
  reboot: RebootPolicy;
  returnGuests: boolean;
  haMaintenance: boolean;
  drain: DrainRequest;
  memoryHeadroom: number;
  /** Absent in plans made before it existed (they counted reported use). */
  memoryBasis?: MemoryBasis;
  minNodesUp: number;
  upgradeTimeoutMs: number;
  bootTimeoutMs: number;
  maxNodeMs: number;
  /** A failed step halts the node for the operator; otherwise the node is skipped at once. */
  stopOnFailure: boolean;
}

export interface MaintenancePlan {
  environment: string;
  clusterNodes: string[];
  turns: NodeTurn[];
  batches: string[][];
  /** `pveversion` of each node when planned. */
  versions: Record<string, string>;
  settings: NodeSettings;
  approveEachNode: boolean;
  pauseBetweenNodesMs: number;
  /** A runbook run on each node after its upgrade: planned per node now, applied at its turn. */
  runbook?: { name: string; sha256: string; plans: Record<string, RunbookPlan> };
}

export type NodeStep =
  | 'check'
  | 'evacuate'
  | 'ha-maintenance-on'
  | 'upgrade'
  | 'runbook'
  | 'reboot'
  | 'ha-maintenance-off'
  | 'return'
  | 'verify';

/** What the estimates assume for the parts PVE cannot predict. */
export const ASSUMED_UPGRADE_MS = 5 * 60_000;
export const ASSUMED_REBOOT_MS = 3 * 60_000;

function nodeEstimateMs(turn: NodeTurn, settings: NodeSettings): number {
  const moves = turn.evacuation.estimatedMs;
  return (
    moves +
    (settings.upgrade ? ASSUMED_UPGRADE_MS : 0) +
    (settings.reboot === 'never' ? 0 : ASSUMED_REBOOT_MS) +
    (settings.returnGuests ? moves : 0)
  );
}

function nodeSteps(turn: NodeTurn, plan: MaintenancePlan): PlanStep[] {
  const { node, evacuation } = turn;
  const { settings } = plan;
  const step = (
    id: NodeStep | 'approval',
    action: string,
    description: string,
    extra: Partial<PlanStep> = {},
  ): PlanStep => ({
    id: nodeStepId(node, id),
    action,
    node,
    description,
    ...extra,
  });
  const modes = (['online', 'restart', 'offline'] as const)
    .map((mode) => [mode, evacuation.moves.filter((m) => m.mode === mode).length] as const)
    .filter(([, n]) => n > 0)
    .map(([mode, n]) => `${n} ${mode === 'online' ? 'live' : mode}`);
  const targets = [...new Set(evacuation.moves.map((m) => m.target))].sort();
  const steps: PlanStep[] = [];
  if (plan.approveEachNode)
    steps.push(step('approval', 'approve-node', `wait for a person to approve starting on ${node}`));
  steps.push(
    step(
      'check',
      'check',
      `check that the cluster is quorate, every other node is online and ${node} runs no conflicting task`,
    ),
    step(
      'evacuate',
      'evacuate',
      evacuation.moves.length === 0
        ? `${node} holds nothing that must move`
        : `plan the evacuation of ${node} again from the cluster as it is then, and move its ${evacuation.moves.length} guests ` +
            `(now planned: ${modes.join(', ')} to ${targets.join(', ')}); refuse if a running guest would have to stay` +
            (turn.overlaps
              ? `; this runs while the guests of ${turn.overlaps.join(', ')} return, and ${node} goes down only once those on it have left`
              : ''),
      { estimatedMs: evacuation.estimatedMs },
    ),
  );
  if (settings.haMaintenance)
    steps.push(step('ha-maintenance-on', 'ha-maintenance', `enable HA maintenance on ${node} (ha-manager over SSH)`));
  if (settings.upgrade) {
    steps.push(
      step('upgrade', 'upgrade', `run the upgrade over SSH on ${node}, output to the operation's log`, {
        params: { command: settings.upgradeCommand },
        estimatedMs: ASSUMED_UPGRADE_MS,
      }),
    );
  }
  const runbook = plan.runbook?.plans[node];
  if (plan.runbook && runbook) {
    steps.push(
      step(
        'runbook',
        'runbook',
        `run runbook ${plan.runbook.name} on ${node}: ${runbook.steps.map((s) => s.id).join(', ')} (cleaning up if a step fails)`,
        {
          params: { runbook: plan.runbook.name, sha256: plan.runbook.sha256 },
        },
      ),
    );
  }
  if (settings.reboot !== 'never') {
    steps.push(
      step(
        'reboot',
        'reboot',
        settings.reboot === 'always'
          ? `reboot ${node} and wait until it is back (API answers, new version, cluster quorate)`
          : `reboot ${node} if the upgrade requires it (kernel, firmware, microcode, /run/reboot-required) and wait until it is back`,
        { estimatedMs: ASSUMED_REBOOT_MS },
      ),
    );
  }
  if (settings.haMaintenance)
    steps.push(step('ha-maintenance-off', 'ha-maintenance', `disable HA maintenance on ${node}`));
  if (settings.returnGuests) {
    steps.push(
      step('return', 'return', `migrate the guests that left ${node} back to it`, {
        estimatedMs: evacuation.estimatedMs,
      }),
    );
  }
  steps.push(
    step(
      'verify',
      'verify',
      `check ${node} is online with the expected version and holds its guests again, in their prior state`,
    ),
  );
  return steps;
}

/** What an approver reads about the overlaps: which node is emptied while whose guests return, and what keeps that safe. */
function describeOverlap(overlapping: NodeTurn[]): string {
  const pairs = overlapping.map((t) => `${t.node} while ${t.overlaps!.join(' + ')} get their guests back`);
  return (
    `overlaps: empties ${pairs.join(', ')} — planned with the returning guests counted both where they are and at home ` +
    `(memory headroom, affinity and anti-affinity, HA rules), leaving those on the node to their own return; a node goes down ` +
    `only once they have left it, so no more nodes are down at once than without overlap; where both would not fit, a node waits for the previous one`
  );
}

/** The rolling maintenance as an operation plan: what an approver reads and the API shows. */
export function describeRollout(plan: MaintenancePlan): Omit<OperationPlan<MaintenancePlan>, 'version'> {
  const { settings, turns } = plan;
  const moves = turns.flatMap((t) => t.evacuation.moves);
  const turnsOf = (batch: string[]) => batch.map((node) => turns.find((t) => t.node === node)!);
  const evacuationMsOf = (batch: string[]) => Math.max(...turnsOf(batch).map((t) => t.evacuation.estimatedMs));
  const perBatch = plan.batches.map((batch, i) => {
    const whole = Math.max(...turnsOf(batch).map((t) => nodeEstimateMs(t, settings)));
    // Overlapped, the group's evacuation runs during the previous group's return.
    const overlapped =
      i > 0 && turnsOf(batch)[0]!.overlaps && settings.returnGuests
        ? Math.min(evacuationMsOf(batch), evacuationMsOf(plan.batches[i - 1]!))
        : 0;
    return whole - overlapped;
  });
  const estimatedDurationMs =
    perBatch.reduce((a, b) => a + b, 0) + plan.pauseBetweenNodesMs * (plan.batches.length - 1);
  const order = plan.batches.map((b) => b.join(' + ')).join(', then ');
  const work = [
    settings.upgrade && 'upgrade',
    settings.reboot === 'always' ? 'reboot' : settings.reboot === 'if-required' ? 'reboot if required' : '',
  ]
    .filter(Boolean)
    .join(', ');

  const reasons = [
    `empties ${turns.length} node${turns.length === 1 ? '' : 's'} in turn: ${moves.length} guest migration${moves.length === 1 ? '' : 's'} out` +
      (settings.returnGuests ? ' and as many back' : ' (guests stay where they were moved)'),
  ];
  if (settings.upgrade) reasons.push(`runs \`${settings.upgradeCommand}\` over SSH on every node`);
  if (plan.runbook) reasons.push(`runs runbook ${plan.runbook.name} on every node after its upgrade`);
  if (settings.reboot !== 'never')
    reasons.push(settings.reboot === 'always' ? 'reboots every node' : 'reboots a node whose upgrade requires it');
  const restarts = moves.filter((m) => m.mode === 'restart');
  if (restarts.length > 0)
    reasons.push(`restart-migrates ${restarts.length} container(s), each down while it moves (twice, when it returns)`);
  if (settings.haMaintenance) reasons.push('puts each node into HA maintenance while it is down');
  reasons.push(
    `${plan.batches[0]?.length === 1 ? 'one node at a time' : `${plan.batches[0]?.length} nodes at a time`}; at least ${settings.minNodesUp} of ${plan.clusterNodes.length} nodes stay up`,
  );
  const overlapping = turns.filter((t) => t.overlaps);
  if (overlapping.length > 0) reasons.push(describeOverlap(overlapping));
  reasons.push(
    `estimates assume ${formatDuration(ASSUMED_UPGRADE_MS)} per upgrade and ${formatDuration(ASSUMED_REBOOT_MS)} per reboot`,
  );

  const warnings = turns.flatMap((t) => [
    ...t.evacuation.leftBehind.map(
      (l) => `${guestLabel(l)} stays on ${t.node} while it is maintained (${l.status}): ${l.reason}`,
    ),
    // Its batch peers, and the nodes whose guests return meanwhile, receive nothing by design; any other target that does is worth a look.
    ...t.evacuation.excludedTargets
      .filter((x) => !plan.batches[t.batch]!.includes(x.node) && !t.overlaps?.includes(x.node))
      .map((x) => `while ${t.node} is maintained, ${x.node} receives nothing: ${x.reason}`),
  ]);
  if (!settings.stopOnFailure)
    warnings.push('stopOnFailure is off: a node whose step fails gets its guests back and is skipped');

  return {
    summary:
      `Rolling maintenance of ${plan.environment}: ${order}` +
      (work ? ` — ${work}` : '') +
      `; ${moves.length} guest${moves.length === 1 ? '' : 's'} move${settings.returnGuests ? ' out and back' : ''}; about ${formatDuration(estimatedDurationMs)}`,
    risk: 'high',
    reasons,
    steps: turns.flatMap((t) => nodeSteps(t, plan)),
    warnings,
    nodes: turns.map((t) => t.node),
    vmids: [...new Set(moves.map((m) => m.vmid))].sort((a, b) => a - b),
    estimatedDurationMs,
    details: plan,
  };
}
