/**
 * Emptying a node: which guest goes where, how, and which stay — decided from one cluster
 * snapshot, before anything moves. Every guest on the node appears in the plan, either as a
 * move (target, mode, local disks, estimate, why) or as left behind with the reason; nothing
 * is skipped silently.
 */
import type { SafetyPolicy } from '../config/schema.js';
import { migrationStepId } from '../operations/step-ids.js';
import type { OperationPlan, PlanStep } from '../operations/plan.js';
import { affinityOf } from './affinity.js';
import { defaultCostAssumptions, evacuationMs, migrationMs, transferBytes, type MigrationMode } from './estimate.js';
import {
  placeGuests,
  placementConstraints,
  type MemoryBasis,
  type Constraint,
  type PlacementItem,
  type PlacementTarget,
  type TargetLoad,
} from './placement.js';
import type { ClusterSnapshot, GuestState, GuestType, MigrationFacts, StorageState } from './snapshot.js';
import { formatBytes, formatDuration, MiB } from './units.js';

export interface EvacuationRequest {
  /** The node to empty. */
  node: string;
  /** Only these nodes may receive guests; every other online node when absent. */
  allowTargets?: string[];
  /** Nodes that must not receive guests. */
  denyTargets?: string[];
  /** Migrations leaving the node at once (they share its link). */
  maxParallel: number;
  /** Migrations arriving at any one target at once. */
  maxParallelPerTarget: number;
  /** Bandwidth cap per migration in MiB/s, passed to PVE as `bwlimit`. */
  bwlimitMiBps?: number;
  /** Move stopped guests too (offline migration); otherwise they stay. */
  includeStopped: boolean;
  includeTemplates: boolean;
  /** Guests with local disks: copy the disks along (`with-local-disks`), or leave the guests. */
  localDisks: 'migrate' | 'leave';
  /** Storage on the target for copied local disks; the same storage id when absent. */
  targetStorage?: string;
  /** Running containers cannot live-migrate: restart-migrate them (downtime) or leave them. */
  containers: 'restart' | 'leave';
  /** Restart migration: seconds PVE waits for a container to shut down before stopping it. */
  containerShutdownTimeoutSeconds: number;
  /** After a failed migration: start no new ones, or carry on with the others. */
  onFailure: 'stop' | 'continue';
  /** Put the node into HA maintenance once it is empty. */
  haMaintenance: boolean;
  /** Link speed the time estimates assume (PVE does not report it). */
  linkGbps: number;
  /** Guests on the node that leave it by other means (they return to their own node): neither moved nor left behind. */
  leaving?: number[];
  /**
   * Guests on their way to a node while this evacuation runs: counted there (memory, vCPUs,
   * affinity groups) as well as where they are now, so no placement relies on when they move.
   */
  arriving?: { vmid: number; target: string }[];
}

export type PlacementPolicy = Pick<SafetyPolicy, 'memory_headroom' | 'cpu_oversubscription' | 'memory_basis'>;

export interface GuestMove {
  vmid: number;
  name: string;
  type: GuestType;
  source: string;
  target: string;
  mode: MigrationMode;
  /** State the guest must be in on its target when the evacuation is done. */
  priorStatus: 'running' | 'stopped';
  /** PVE answers an HA-managed guest's migrate with an `hamigrate` task; the real one follows. */
  haManaged: boolean;
  /** Live migration copying local disks (`with-local-disks`). */
  withLocalDisks: boolean;
  /** Storage mapping for PVE (`targetstorage` / `target-storage`), when one was asked for. */
  targetStorage?: string;
  memoryBytes: number;
  localDiskBytes: number;
  /** Bytes that cross the source node's link. */
  transferBytes: number;
  estimatedMs: number;
  why: string;
}

export interface LeftBehind {
  vmid: number;
  name: string;
  type: GuestType;
  status: string;
  reason: string;
  /**
   * The request meant it to move: it stays because something prevents it, not because the
   * request's own options leave it (stopped guests, templates, containers, local disks).
   */
  covered: boolean;
  /** What would let it move: which constraint to change, or what to do to the guest. */
  unblock?: string;
}

/** Why a guest stays: the request leaves it, or something blocks it and what would unblock it. */
type Staying = Pick<LeftBehind, 'reason' | 'covered' | 'unblock'>;

export interface EvacuationPlan {
  source: string;
  snapshotAt: string;
  /** In the order they are started: sizes mixed in every round, so the link never waits on a tail of small ones. */
  moves: GuestMove[];
  leftBehind: LeftBehind[];
  /** Nodes that could not receive guests at all, and why (offline, filtered out, already above the memory limit). */
  excludedTargets: { node: string; reason: string }[];
  /** Memory (configured-committed and used) and vCPUs of every candidate target before and after. */
  targets: TargetLoad[];
  limits: {
    maxParallel: number;
    maxParallelPerTarget: number;
    bwlimitKiBps?: number;
    containerShutdownTimeoutSeconds: number;
  };
  policy: { memoryHeadroom: number; cpuOversubscription: number; memoryBasis: MemoryBasis };
  onFailure: 'stop' | 'continue';
  haMaintenance: boolean;
  totalTransferBytes: number;
  estimatedMs: number;
  /** What the estimates assume. */
  assumedLinkGbps: number;
}

/** A request that cannot be planned as given; `field` names the offending input. */
export class EvacuationRequestError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'EvacuationRequestError';
  }
}

export function planEvacuation(
  snapshot: ClusterSnapshot,
  request: EvacuationRequest,
  policy: PlacementPolicy,
): EvacuationPlan {
  const source = snapshot.nodes.find((n) => n.name === request.node);
  if (!source) {
    throw new EvacuationRequestError(
      'node',
      `'${request.node}' is not a node of this cluster (${nodeNames(snapshot)})`,
    );
  }
  if (!source.online)
    throw new EvacuationRequestError(
      'node',
      `'${request.node}' is offline; guests can only be migrated off a running node`,
    );
  for (const field of ['allowTargets', 'denyTargets'] as const) {
    for (const name of request[field] ?? []) {
      if (!snapshot.nodes.some((n) => n.name === name)) {
        throw new EvacuationRequestError(field, `'${name}' is not a node of this cluster (${nodeNames(snapshot)})`);
      }
    }
  }

  const costs = defaultCostAssumptions(request.linkGbps);
  const bwlimitBytes = request.bwlimitMiBps ? request.bwlimitMiBps * MiB : undefined;
  const index = { guests: byNode(snapshot.guests), storages: byNode(snapshot.storages) };
  const { targets, excludedTargets } = candidateTargets(snapshot, request, index);

  const leftBehind: LeftBehind[] = [];
  const candidates: { guest: GuestState; mode: MigrationMode; facts: MigrationFacts; item: PlacementItem }[] = [];
  const onSource = [...(index.guests.get(source.name) ?? [])]
    .filter((g) => !request.leaving?.includes(g.vmid))
    .sort((a, b) => a.vmid - b.vmid);
  for (const guest of onSource) {
    const decision = decide(guest, snapshot, request);
    if ('reason' in decision) {
      leftBehind.push({ vmid: guest.vmid, name: guest.name, type: guest.type, status: guest.status, ...decision });
      continue;
    }
    candidates.push({
      guest,
      ...decision,
      item: placementItem(guest, decision.mode, decision.facts, snapshot, request, targets, index.storages),
    });
  }

  const placement = placeGuests(
    candidates.map((c) => c.item),
    targets,
    placementConstraints(policy),
  );
  excludedTargets.push(...placement.overLimit);
  for (const u of placement.unplaced) {
    const { guest, item } = candidates.find((c) => c.item.id === u.id)!;
    leftBehind.push({
      vmid: guest.vmid,
      name: guest.name,
      type: guest.type,
      status: guest.status,
      reason: `no target can take it — ${listRefusals(u.reasons)}`,
      covered: true,
      unblock: unblockPlacement(u.constraints, item, policy),
    });
  }

  const moves: GuestMove[] = [];
  for (const { guest, mode, facts, item } of candidates) {
    const target = placement.placements[item.id];
    if (!target) continue;
    const local = facts.disks.filter((d) => !d.shared && !d.cdrom);
    const localDiskBytes = local.reduce((sum, d) => sum + d.size, 0);
    const bytes = transferBytes(mode, guest.memory, localDiskBytes);
    const withLocalDisks = mode === 'online' && local.length > 0;
    moves.push({
      vmid: guest.vmid,
      name: guest.name,
      type: guest.type,
      source: source.name,
      target,
      mode,
      priorStatus: guest.status === 'stopped' ? 'stopped' : 'running',
      haManaged: guest.haManaged,
      withLocalDisks,
      ...(local.length > 0 && request.targetStorage ? { targetStorage: request.targetStorage } : {}),
      memoryBytes: guest.memory,
      localDiskBytes,
      transferBytes: bytes,
      estimatedMs: migrationMs(mode, bytes, costs, bwlimitBytes),
      why: `${modeWhy(guest, mode, local.length > 0)}; ${target}: ${placement.why[item.id]}`,
    });
  }
  const parallel = Math.max(1, Math.min(request.maxParallel, targets.length * request.maxParallelPerTarget));
  const ordered = startOrder(moves, parallel);
  leftBehind.sort((a, b) => a.vmid - b.vmid);

  const estimates = ordered.map((m) => ({ mode: m.mode, bytes: m.transferBytes, ms: m.estimatedMs }));
  return {
    source: source.name,
    snapshotAt: snapshot.takenAt,
    moves: ordered,
    leftBehind,
    excludedTargets,
    targets: placement.targets,
    limits: {
      maxParallel: request.maxParallel,
      maxParallelPerTarget: request.maxParallelPerTarget,
      ...(request.bwlimitMiBps ? { bwlimitKiBps: request.bwlimitMiBps * 1024 } : {}),
      containerShutdownTimeoutSeconds: request.containerShutdownTimeoutSeconds,
    },
    policy: {
      memoryHeadroom: policy.memory_headroom,
      cpuOversubscription: policy.cpu_oversubscription,
      memoryBasis: policy.memory_basis,
    },
    onFailure: request.onFailure,
    haMaintenance: request.haMaintenance,
    totalTransferBytes: moves.reduce((sum, m) => sum + m.transferBytes, 0),
    estimatedMs: evacuationMs(estimates, parallel, costs),
    assumedLinkGbps: request.linkGbps,
  };
}

/**
 * The order migrations start in. Concurrent migrations share the source node's link, and each
 * spends seconds setting up before it moves a byte; the link idles only when every running
 * migration is setting up — typically in a tail of small migrations, which is exactly what
 * longest-first leaves. So each round of `parallel` starts mixes sizes: sorted by bytes, the
 * moves are dealt round-robin from the size quantiles (largest of each quantile first), and
 * large transfers keep the link busy while small migrations set up, to the end.
 */
export function startOrder(moves: readonly GuestMove[], parallel: number): GuestMove[] {
  const bySize = [...moves].sort((a, b) => b.transferBytes - a.transferBytes || a.vmid - b.vmid);
  const rounds = Math.ceil(bySize.length / parallel);
  const order: GuestMove[] = [];
  for (let r = 0; r < rounds; r++) for (let i = r; i < bySize.length; i += rounds) order.push(bySize[i]!);
  return order;
}

function nodeNames(snapshot: ClusterSnapshot): string {
  return snapshot.nodes.map((n) => n.name).join(', ');
}

/** Items by node, in the snapshot's order: looked up per target instead of filtered per target (500 × 15,000 steps). */
function byNode<T extends { node: string }>(items: readonly T[]): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) {
    const list = map.get(item.node);
    if (list) list.push(item);
    else map.set(item.node, [item]);
  }
  return map;
}

type SnapshotIndex = { guests: Map<string, GuestState[]>; storages: Map<string, StorageState[]> };

function candidateTargets(snapshot: ClusterSnapshot, request: EvacuationRequest, index: SnapshotIndex) {
  const targets: PlacementTarget[] = [];
  const excludedTargets: { node: string; reason: string }[] = [];
  for (const node of snapshot.nodes) {
    if (node.name === request.node) continue;
    let reason: string | undefined;
    if (!node.online) reason = 'offline';
    else if (request.allowTargets && !request.allowTargets.includes(node.name)) reason = 'not in allowTargets';
    else if (request.denyTargets?.includes(node.name)) reason = 'in denyTargets';
    if (reason) {
      excludedTargets.push({ node: node.name, reason });
      continue;
    }
    // Guests returning home to this node (rolling maintenance's overlap) count as already here.
    const arriving = request.arriving?.length
      ? snapshot.guests.filter((g) => g.node !== node.name && arrivingAt(request, g, node.name))
      : [];
    const residents = [...(index.guests.get(node.name) ?? []), ...arriving];
    const running = residents.filter((g) => g.status !== 'stopped');
    const groups: Record<string, string[]> = {};
    for (const g of residents) {
      const a = affinityOf(g, snapshot.haRules);
      for (const key of [...a.together, ...a.apart]) (groups[key] ??= []).push(`${g.vmid} (${g.name})`);
    }
    targets.push({
      node: node.name,
      memoryTotal: node.memoryTotal,
      memoryUsed: node.memoryUsed + running.filter((g) => g.node !== node.name).reduce((sum, g) => sum + g.memory, 0),
      memoryCommitted: running.reduce((sum, g) => sum + g.memory, 0),
      cpus: node.cpus,
      vcpusAssigned: running.reduce((sum, g) => sum + g.vcpus, 0),
      storageFree: Object.fromEntries(
        (index.storages.get(node.name) ?? []).filter((s) => s.active).map((s) => [s.storage, s.total - s.used]),
      ),
      groups,
    });
  }
  return { targets, excludedTargets };
}

/** The guest is on its way to `node` (and not there yet). */
function arrivingAt(request: EvacuationRequest, guest: GuestState, node: string): boolean {
  return guest.node !== node && (request.arriving ?? []).some((a) => a.vmid === guest.vmid && a.target === node);
}

/** How a guest moves, or why it stays. */
function decide(
  guest: GuestState,
  snapshot: ClusterSnapshot,
  request: EvacuationRequest,
): { mode: MigrationMode; facts: MigrationFacts } | Staying {
  const left = (reason: string, unblock: string): Staying => ({ reason, covered: false, unblock });
  const blocked = (reason: string, unblock: string): Staying => ({ reason, covered: true, unblock });
  if (guest.lock) {
    return blocked(
      `locked (${guest.lock}); PVE refuses to migrate a locked guest`,
      `wait until its ${guest.lock} ends, or remove a stale lock`,
    );
  }
  if (guest.template && !request.includeTemplates)
    return left('template, and includeTemplates is off', 'includeTemplates: true');
  const running = guest.status !== 'stopped';
  if (!running && !guest.template && !request.includeStopped)
    return left('stopped, and includeStopped is off', 'includeStopped: true');
  if (running && guest.type === 'lxc' && request.containers === 'leave') {
    return left(
      "running container: containers cannot live-migrate, and a restart migration (downtime) is not allowed (containers: 'leave')",
      "containers: 'restart' (each is down while it moves)",
    );
  }
  const facts = snapshot.migration[guest.vmid];
  if (!facts) {
    return blocked(
      `its config and migrate preconditions could not be read: ${snapshot.unreadable[guest.vmid] ?? 'not gathered'}`,
      'fix what PVE answers for its config, then plan again',
    );
  }
  if (facts.localResources.length > 0) {
    const several = facts.localResources.length > 1;
    return blocked(
      `uses host-bound device${several ? 's' : ''} ${facts.localResources.join(', ')}, which pin${several ? '' : 's'} it to ${guest.node}`,
      `remove ${facts.localResources.join(', ')} from its config`,
    );
  }
  const iso = facts.disks.find((d) => d.cdrom && !d.shared);
  if (iso) {
    return blocked(
      `local ISO ${iso.volid} is attached (${iso.key}); eject it or keep the ISO on shared storage`,
      `eject the ISO (${iso.key}: none)`,
    );
  }
  const local = facts.disks.filter((d) => !d.shared && !d.cdrom);
  if (local.length > 0 && request.localDisks === 'leave') {
    return left(
      `has local disks (${local.map((d) => d.volid).join(', ')}), and localDisks is 'leave'`,
      "localDisks: 'migrate'",
    );
  }
  const mode: MigrationMode = !running ? 'offline' : guest.type === 'lxc' ? 'restart' : 'online';
  if (mode === 'online' && local.length > 0 && facts.hasSnapshots) {
    return blocked(
      'its local disks have snapshots, which PVE cannot live-migrate; remove the snapshots or shut it down first',
      'remove its snapshots, or shut it down first (it then moves offline)',
    );
  }
  return { mode, facts };
}

/**
 * Each target's refusal of a guest no target can take, the first `MAX_LISTED_REFUSALS` of
 * them, then how many more: at 500 nodes the whole list is 30 KB per guest, repeated in the
 * plan's warnings, and a node full of such guests made a plan larger than the 2 MB Temporal
 * accepts as an activity result (the evacuation's workflow task then failed on every retry).
 */
const MAX_LISTED_REFUSALS = 100;

function listRefusals(reasons: readonly string[]): string {
  const listed = reasons.slice(0, MAX_LISTED_REFUSALS).join('; ');
  const more = reasons.length - MAX_LISTED_REFUSALS;
  return more > 0 ? `${listed}; and ${more} more target${more === 1 ? '' : 's'}` : listed;
}

/** What would let a guest that fits on no target move, by the constraints that refused it. */
function unblockPlacement(constraints: readonly Constraint[], item: PlacementItem, policy: PlacementPolicy): string {
  const hints: Record<Constraint, string> = {
    memory:
      `room for ${formatBytes(item.memory)} on a target: stop or move guests there, add a node, or lower policy.memory_headroom ` +
      `(now ${Math.round(policy.memory_headroom * 100)}%)` +
      (policy.memory_basis === 'configured' ? " or, knowingly overcommitting, set policy.memory_basis: 'used'" : ''),
    cpu: `room for ${item.vcpus} vCPUs on a target: stop guests there, or raise policy.cpu_oversubscription (now ${policy.cpu_oversubscription})`,
    storage: `the storages it needs (${Object.keys(item.storage).join(', ')}) available with room on a target, or another targetStorage`,
    'node-affinity': `another allowed node in its strict HA node-affinity rule (${(item.onlyOn ?? []).join(', ')} now)`,
    affinity: 'its affinity group must follow it: move the group, or take it out of the group (tag or HA rule)',
    'anti-affinity':
      'a target without a member of its anti-affinity group: add a node, or take it out of the group (tag or HA rule)',
    'affinity-conflict': 'take it out of one of the conflicting affinity and anti-affinity groups',
    refused: 'what PVE names for each target (its migrate preconditions)',
    'no-targets': 'an online target node (check allowTargets, denyTargets and offline nodes)',
  };
  return constraints.map((c) => hints[c]).join('; or ');
}

function placementItem(
  guest: GuestState,
  mode: MigrationMode,
  facts: MigrationFacts,
  snapshot: ClusterSnapshot,
  request: EvacuationRequest,
  targets: readonly PlacementTarget[],
  storagesByNode: SnapshotIndex['storages'],
): PlacementItem {
  const arrivesRunning = mode !== 'offline';
  const storage: Record<string, number> = {};
  const content = guest.type === 'qemu' ? 'images' : 'rootdir';
  const copiedTo = new Set<string>();
  for (const disk of facts.disks) {
    if (disk.cdrom) continue;
    if (disk.shared) {
      storage[disk.storage] ??= 0;
    } else {
      const to = request.targetStorage ?? disk.storage;
      storage[to] = (storage[to] ?? 0) + disk.size;
      copiedTo.add(to);
    }
  }
  const refused: Record<string, string> = { ...facts.notAllowedNodes };
  for (const t of targets) {
    for (const sid of copiedTo) {
      const st = storagesByNode.get(t.node)?.find((s) => s.storage === sid);
      if (st && st.active && !st.content.includes(content))
        refused[t.node] ??= `storage ${sid} does not hold ${content}`;
    }
  }
  const affinity = affinityOf(guest, snapshot.haRules);
  return {
    id: String(guest.vmid),
    memory: arrivesRunning ? guest.memory : 0,
    vcpus: arrivesRunning ? guest.vcpus : 0,
    storage,
    refused,
    together: affinity.together,
    apart: affinity.apart,
    ...(affinity.onlyOn ? { onlyOn: affinity.onlyOn } : {}),
    ...(affinity.prefers ? { prefers: affinity.prefers } : {}),
  };
}

function modeWhy(guest: GuestState, mode: MigrationMode, localDisks: boolean): string {
  const disks = localDisks ? ', copying its local disks' : '';
  switch (mode) {
    case 'online':
      return `running VM: live migration${disks}`;
    case 'offline':
      return `${guest.template ? 'template' : 'stopped'}: offline migration${disks}`;
    case 'restart':
      return `running container: restart migration (down while it moves)${disks}`;
  }
}

/** The evacuation as an operation plan: what an approver reads and the API shows. */
export function describeEvacuation(plan: EvacuationPlan): Omit<OperationPlan<EvacuationPlan>, 'version'> {
  const count = (mode: MigrationMode) => plan.moves.filter((m) => m.mode === mode).length;
  const blocked = plan.leftBehind.filter((l) => l.covered);
  const targetsUsed = [...new Set(plan.moves.map((m) => m.target))].sort();
  const modes = [
    count('online') && `${count('online')} live`,
    count('offline') && `${count('offline')} offline`,
    count('restart') && `${count('restart')} restart`,
  ].filter(Boolean);
  const summary =
    `Evacuate ${plan.source}: move ${plan.moves.length} guest${plan.moves.length === 1 ? '' : 's'}` +
    (plan.moves.length ? ` to ${targetsUsed.join(', ')} (${modes.join(', ')})` : '') +
    (plan.leftBehind.length ? `; ${plan.leftBehind.length} stay` : '') +
    `; about ${formatDuration(plan.estimatedMs)}`;

  const reasons = [`migrates every movable guest off ${plan.source}`];
  if (count('online')) reasons.push(`live-migrates ${count('online')} running VM(s)`);
  if (count('restart')) reasons.push(`restart-migrates ${count('restart')} container(s), each down while it moves`);
  const withDisks = plan.moves.filter((m) => m.localDiskBytes > 0);
  if (withDisks.length) {
    reasons.push(
      `copies ${formatBytes(withDisks.reduce((s, m) => s + m.localDiskBytes, 0))} of local disks for ${withDisks.length} guest(s)`,
    );
  }
  if (plan.leftBehind.length)
    reasons.push(`${plan.leftBehind.length} guest(s) cannot or will not move and stay on ${plan.source}`);
  if (plan.haMaintenance) reasons.push(`puts ${plan.source} into HA maintenance afterwards`);

  const steps: PlanStep[] = plan.moves.map((m) => ({
    id: migrationStepId(m.vmid),
    action: `migrate-${m.mode}`,
    vmid: m.vmid,
    name: m.name,
    node: m.source,
    target: m.target,
    description: `${m.type === 'qemu' ? 'VM' : 'CT'} ${m.vmid} (${m.name}) ${m.source} -> ${m.target}: ${m.why}`,
    estimatedMs: m.estimatedMs,
  }));
  steps.push({
    id: 'verify',
    action: 'verify',
    node: plan.source,
    description: `check that ${plan.source} holds only the guests left behind and every moved guest runs on its target in its prior state`,
  });
  if (plan.haMaintenance) {
    steps.push({
      id: 'ha-maintenance',
      action: 'ha-maintenance',
      node: plan.source,
      description: `enable HA maintenance on ${plan.source}`,
    });
  }

  return {
    summary,
    risk: 'high',
    reasons,
    steps,
    warnings: [
      ...(blocked.length
        ? [
            `${blocked.length} guest${blocked.length === 1 ? '' : 's'} the request covers cannot move, so ${plan.source} will not be empty and the outcome will be 'incomplete'`,
          ]
        : []),
      ...plan.leftBehind.map(
        (l) =>
          `${l.type === 'qemu' ? 'VM' : 'CT'} ${l.vmid} (${l.name}) stays on ${plan.source}: ${l.reason}${l.covered && l.unblock ? ` (to move it: ${l.unblock})` : ''}`,
      ),
      ...plan.excludedTargets.map((t) => `${t.node} receives nothing: ${t.reason}`),
    ],
    nodes: [plan.source, ...targetsUsed],
    vmids: plan.moves.map((m) => m.vmid),
    estimatedDurationMs: plan.estimatedMs,
    details: plan,
  };
}
