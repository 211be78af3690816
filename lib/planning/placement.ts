/**
 * Where guests can go: memory-aware bin packing under the cluster's safety policy.
 *
 * Generic on purpose — evacuation, rolling maintenance and cluster creation all ask the same
 * question ("these guests, those nodes: who goes where, and why can't the rest go anywhere?").
 * Callers translate their world into items and targets; the answer is deterministic for a
 * given input, and every item that is not placed comes back with each target's reason.
 */
import type { SafetyPolicy } from '../config/schema.js';
import { formatBytes } from './units.js';

export interface PlacementItem {
  id: string;
  /** Memory the item claims on its target: a running guest's configured memory, 0 for one that arrives stopped. */
  memory: number;
  /** vCPUs it adds to its target's load (0 for a guest that arrives stopped). */
  vcpus: number;
  /** Storages it needs on the target, with the bytes it writes there (0 for a shared storage it only needs to see). */
  storage: Record<string, number>;
  /** The only targets it may go to (strict node affinity). */
  onlyOn?: string[];
  /** Targets to try first, best first (non-strict node affinity). */
  prefers?: string[];
  /** Targets refused for this item, with the reason (allow/deny lists, PVE's own preconditions). */
  refused?: Record<string, string>;
  /** Affinity groups: all members go to one node — the node where members already run, if any. */
  together?: string[];
  /** Anti-affinity groups: no two members on one node. */
  apart?: string[];
}

export interface PlacementTarget {
  node: string;
  memoryTotal: number;
  /** What the node reports in use (guests' measured use, page cache, the host itself). */
  memoryUsed: number;
  /** Configured memory of the guests running there: what they may claim, as PVE's static CRS counts it. */
  memoryCommitted: number;
  cpus: number;
  /** vCPUs of the guests already running there. */
  vcpusAssigned: number;
  /** Free bytes of each storage usable on this node; a storage not listed is not available here. */
  storageFree: Record<string, number>;
  /** Affinity and anti-affinity groups with members already on this node: group -> member labels. */
  groups: Record<string, string[]>;
}

export type MemoryBasis = SafetyPolicy['memory_basis'];

export interface PlacementConstraints {
  /** Fraction of each target's memory that must stay free (0.2 keeps 20% free). */
  memoryHeadroom: number;
  /** Allowed ratio of assigned vCPUs to a target's logical CPUs. */
  cpuOversubscription: number;
  /**
   * What a target already holds: the configured memory of its running guests, or what it
   * reports in use. Arrivals always count with their configured memory.
   */
  memoryBasis: MemoryBasis;
}

/** The placement constraints of an environment's safety policy. */
export function placementConstraints(
  policy: Pick<SafetyPolicy, 'memory_headroom' | 'cpu_oversubscription' | 'memory_basis'>,
): PlacementConstraints {
  return {
    memoryHeadroom: policy.memory_headroom,
    cpuOversubscription: policy.cpu_oversubscription,
    memoryBasis: policy.memory_basis,
  };
}

/** The memory a target holds on the policy's basis. */
export function memoryHeld(
  target: Pick<PlacementTarget, 'memoryUsed' | 'memoryCommitted'>,
  basis: MemoryBasis,
): number {
  return basis === 'configured' ? target.memoryCommitted : target.memoryUsed;
}

export interface TargetLoad {
  node: string;
  memoryTotal: number;
  /** The figure the limit is checked against (`memoryBasis`), before and after the placement. */
  memoryBasis: MemoryBasis;
  memoryBefore: number;
  memoryAfter: number;
  /** Both figures, whichever the basis: configured memory of running guests, and reported use (plus arrivals). */
  memoryCommittedBefore: number;
  memoryCommittedAfter: number;
  memoryUsedBefore: number;
  memoryUsedAfter: number;
  /** The most memory the target may hold under the headroom policy. */
  memoryLimit: number;
  vcpusBefore: number;
  vcpusAfter: number;
  vcpuLimit: number;
  /** Items placed on it, in placement order. */
  items: string[];
}

export interface PlacementResult {
  /** Item id -> target node. */
  placements: Record<string, string>;
  /** Item id -> why that target. */
  why: Record<string, string>;
  /** Items that fit nowhere, with every target's reason and the constraints that refused it. */
  unplaced: { id: string; reasons: string[]; constraints: Constraint[] }[];
  targets: TargetLoad[];
  /** Targets already above the memory limit before anything arrives: they receive nothing. */
  overLimit: { node: string; reason: string }[];
}

/**
 * Places items on targets. Items bound by affinity move as one unit; units are placed
 * largest first. The first pass spreads (the target left with the most free memory wins, so
 * the load — and later the migration traffic — is shared out); when that strands something,
 * a best-fit pass is tried and kept if it places more.
 */
export function placeGuests(
  items: readonly PlacementItem[],
  targets: readonly PlacementTarget[],
  constraints: PlacementConstraints,
): PlacementResult {
  const ordered = [...targets].sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  const units = formUnits(items, ordered);
  const spread = assign(units, ordered, constraints, 'spread');
  if (spread.unplaced.length === 0) return spread;
  const packed = assign(units, ordered, constraints, 'pack');
  return placedCount(packed) > placedCount(spread) ? packed : spread;
}

/** What kept an item off a target: what would have to change for it to fit there. */
export type Constraint =
  | 'memory'
  | 'cpu'
  | 'storage'
  | 'node-affinity'
  | 'affinity'
  | 'anti-affinity'
  | 'affinity-conflict'
  | 'refused'
  | 'no-targets';

/** Items that move together, with their combined demand. */
interface Unit {
  members: PlacementItem[];
  memory: number;
  vcpus: number;
  storage: Record<string, number>;
  onlyOn?: { nodes: Set<string>; why: string; constraint: 'node-affinity' | 'affinity' };
  prefers: string[];
  refused: Record<string, string[]>;
  apart: string[];
  /** Set when the unit cannot be placed anywhere whatever the targets hold. */
  conflict?: string;
}

function formUnits(items: readonly PlacementItem[], targets: readonly PlacementTarget[]): Unit[] {
  // Union-find over shared affinity groups.
  const parent = items.map((_, i) => i);
  const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i]!)));
  const firstWithGroup = new Map<string, number>();
  items.forEach((item, i) => {
    for (const group of item.together ?? []) {
      const j = firstWithGroup.get(group);
      if (j === undefined) firstWithGroup.set(group, i);
      else parent[find(i)] = find(j);
    }
  });
  const byRoot = new Map<number, PlacementItem[]>();
  items.forEach((item, i) => {
    const root = find(i);
    byRoot.set(root, [...(byRoot.get(root) ?? []), item]);
  });

  return [...byRoot.values()].map((members) => {
    const unit: Unit = { members, memory: 0, vcpus: 0, storage: {}, prefers: [], refused: {}, apart: [] };
    const apartOwner = new Map<string, string>();
    for (const m of members) {
      unit.memory += m.memory;
      unit.vcpus += m.vcpus;
      for (const [sid, bytes] of Object.entries(m.storage)) unit.storage[sid] = (unit.storage[sid] ?? 0) + bytes;
      if (m.onlyOn) {
        const allowed = new Set(m.onlyOn);
        const nodes = unit.onlyOn ? new Set([...unit.onlyOn.nodes].filter((n) => allowed.has(n))) : allowed;
        unit.onlyOn = { nodes, why: `${m.id} may run only on ${m.onlyOn.join(', ')}`, constraint: 'node-affinity' };
      }
      for (const node of m.prefers ?? []) if (!unit.prefers.includes(node)) unit.prefers.push(node);
      for (const [node, why] of Object.entries(m.refused ?? {})) (unit.refused[node] ??= []).push(why);
      for (const group of m.apart ?? []) {
        const other = apartOwner.get(group);
        if (other !== undefined) {
          unit.conflict ??= `${other} and ${m.id} must share a node (affinity) but are in anti-affinity group ${group}`;
        }
        apartOwner.set(group, m.id);
        if (!unit.apart.includes(group)) unit.apart.push(group);
      }
    }
    // Affinity with guests that are not moving pins the unit to where those guests run.
    const together = new Set(members.flatMap((m) => m.together ?? []));
    const anchors = targets.filter((t) => Object.keys(t.groups).some((g) => together.has(g)));
    if (anchors.length > 0) {
      const nodes = new Set(anchors.map((t) => t.node).filter((n) => !unit.onlyOn || unit.onlyOn.nodes.has(n)));
      const groups = [...together].filter((g) => anchors.some((t) => g in t.groups));
      unit.onlyOn = {
        nodes,
        why: `affinity group ${groups.join(', ')} runs on ${anchors.map((t) => t.node).join(', ')}`,
        constraint: 'affinity',
      };
    }
    return unit;
  });
}

interface Load {
  target: PlacementTarget;
  memory: number;
  vcpus: number;
  storageFree: Record<string, number>;
  groups: Record<string, string[]>;
  items: string[];
}

function memoryLimit(target: PlacementTarget, c: PlacementConstraints): number {
  return Math.floor(target.memoryTotal * (1 - c.memoryHeadroom));
}

function vcpuLimit(target: PlacementTarget, c: PlacementConstraints): number {
  return Math.floor(target.cpus * c.cpuOversubscription);
}

/** Why a target may receive nothing at all: it is above the memory limit already. */
function overLimitReason(target: PlacementTarget, c: PlacementConstraints): string | undefined {
  const held = memoryHeld(target, c.memoryBasis);
  if (held <= memoryLimit(target, c)) return undefined;
  const what = c.memoryBasis === 'configured' ? 'configured memory of its running guests' : 'memory in use';
  return (
    `already above the memory limit: ${what} is ${formatBytes(held)}, ${Math.round((held / target.memoryTotal) * 100)}% ` +
    `of ${formatBytes(target.memoryTotal)} (limit ${Math.round((1 - c.memoryHeadroom) * 100)}%)`
  );
}

/** Why `unit` cannot go to `load`'s node as it stands, or undefined when it can. */
function refusal(unit: Unit, load: Load, c: PlacementConstraints): { constraint: Constraint; why: string } | undefined {
  const node = load.target.node;
  const full = overLimitReason(load.target, c);
  if (full) return { constraint: 'memory', why: full };
  const refused = unit.refused[node];
  if (refused) return { constraint: 'refused', why: refused.join('; ') };
  if (unit.onlyOn && !unit.onlyOn.nodes.has(node)) return { constraint: unit.onlyOn.constraint, why: unit.onlyOn.why };
  for (const group of unit.apart) {
    const present = load.groups[group];
    if (present?.length)
      return { constraint: 'anti-affinity', why: `holds ${present.join(', ')} of anti-affinity group ${group}` };
  }
  for (const [sid, bytes] of Object.entries(unit.storage)) {
    const free = load.storageFree[sid];
    if (free === undefined) return { constraint: 'storage', why: `storage ${sid} is not available` };
    if (free < bytes)
      return {
        constraint: 'storage',
        why: `storage ${sid} has ${formatBytes(free)} free, needs ${formatBytes(bytes)}`,
      };
  }
  const limit = memoryLimit(load.target, c);
  if (unit.memory > 0 && load.memory + unit.memory > limit) {
    const pct = Math.round(((load.memory + unit.memory) / load.target.memoryTotal) * 100);
    return {
      constraint: 'memory',
      why:
        `memory: ${formatBytes(unit.memory)} more would use ${pct}% of ${formatBytes(load.target.memoryTotal)}, ` +
        `above the ${Math.round((1 - c.memoryHeadroom) * 100)}% limit`,
    };
  }
  const vcpus = vcpuLimit(load.target, c);
  if (unit.vcpus > 0 && load.vcpus + unit.vcpus > vcpus) {
    return {
      constraint: 'cpu',
      why:
        `CPU: ${load.vcpus + unit.vcpus} vCPUs on ${load.target.cpus} CPUs exceeds ` +
        `the ${c.cpuOversubscription}x oversubscription limit`,
    };
  }
  return undefined;
}

function assign(
  units: readonly Unit[],
  targets: readonly PlacementTarget[],
  c: PlacementConstraints,
  strategy: 'spread' | 'pack',
): PlacementResult {
  const loads: Load[] = targets.map((t) => ({
    target: t,
    memory: memoryHeld(t, c.memoryBasis),
    vcpus: t.vcpusAssigned,
    storageFree: { ...t.storageFree },
    groups: Object.fromEntries(Object.entries(t.groups).map(([g, m]) => [g, [...m]])),
    items: [],
  }));
  const placements: Record<string, string> = {};
  const why: Record<string, string> = {};
  const unplaced: PlacementResult['unplaced'] = [];

  const storageBytes = (u: Unit) => Object.values(u.storage).reduce((a, b) => a + b, 0);
  const order = [...units].sort(
    (a, b) => b.memory - a.memory || storageBytes(b) - storageBytes(a) || b.vcpus - a.vcpus,
  );

  for (const unit of order) {
    if (unit.conflict) {
      for (const m of unit.members)
        unplaced.push({ id: m.id, reasons: [unit.conflict], constraints: ['affinity-conflict'] });
      continue;
    }
    const reasons: string[] = [];
    const constraints = new Set<Constraint>();
    const fits: Load[] = [];
    for (const load of loads) {
      const refused = refusal(unit, load, c);
      if (!refused) fits.push(load);
      else {
        reasons.push(`${load.target.node}: ${refused.why}`);
        constraints.add(refused.constraint);
      }
    }
    const best = choose(unit, fits, c, strategy);
    if (!best) {
      const why = reasons.length > 0 ? reasons : ['no target nodes to choose from'];
      if (reasons.length === 0) constraints.add('no-targets');
      for (const m of unit.members) unplaced.push({ id: m.id, reasons: why, constraints: [...constraints] });
      continue;
    }
    const reason = explain(unit, best, fits.length, strategy);
    best.memory += unit.memory;
    best.vcpus += unit.vcpus;
    for (const [sid, bytes] of Object.entries(unit.storage)) best.storageFree[sid]! -= bytes;
    for (const m of unit.members) {
      placements[m.id] = best.target.node;
      why[m.id] = reason;
      best.items.push(m.id);
      for (const group of [...(m.together ?? []), ...(m.apart ?? [])]) (best.groups[group] ??= []).push(m.id);
    }
  }

  return {
    placements,
    why,
    unplaced,
    targets: loads.map((l) => {
      const arrived = l.memory - memoryHeld(l.target, c.memoryBasis);
      return {
        node: l.target.node,
        memoryTotal: l.target.memoryTotal,
        memoryBasis: c.memoryBasis,
        memoryBefore: memoryHeld(l.target, c.memoryBasis),
        memoryAfter: l.memory,
        memoryCommittedBefore: l.target.memoryCommitted,
        memoryCommittedAfter: l.target.memoryCommitted + arrived,
        memoryUsedBefore: l.target.memoryUsed,
        memoryUsedAfter: l.target.memoryUsed + arrived,
        memoryLimit: memoryLimit(l.target, c),
        vcpusBefore: l.target.vcpusAssigned,
        vcpusAfter: l.vcpus,
        vcpuLimit: vcpuLimit(l.target, c),
        items: l.items,
      };
    }),
    overLimit: targets.flatMap((t) => {
      const reason = overLimitReason(t, c);
      return reason ? [{ node: t.node, reason }] : [];
    }),
  };
}

/**
 * The best of the targets that fit: preferred nodes first; then, spreading, the one left with
 * the largest free share of its memory (guests that add no memory go where fewest went), or,
 * packing, the one left with the least room. Ties go to the first node by name.
 */
function choose(
  unit: Unit,
  fits: readonly Load[],
  c: PlacementConstraints,
  strategy: 'spread' | 'pack',
): Load | undefined {
  const rank = (l: Load) => {
    const i = unit.prefers.indexOf(l.target.node);
    return i === -1 ? unit.prefers.length : i;
  };
  const room = (l: Load) => memoryLimit(l.target, c) - l.memory - unit.memory;
  const score = (l: Load): number => {
    if (strategy === 'pack') return room(l);
    if (unit.memory === 0) return l.items.length;
    return -room(l) / l.target.memoryTotal;
  };
  let best: Load | undefined;
  for (const l of fits) {
    if (!best || rank(l) < rank(best) || (rank(l) === rank(best) && score(l) < score(best))) best = l;
  }
  return best;
}

function explain(unit: Unit, chosen: Load, candidates: number, strategy: 'spread' | 'pack'): string {
  const parts: string[] = [];
  if (unit.members.length > 1) parts.push(`moves with ${unit.members.map((m) => m.id).join(', ')} (affinity)`);
  if (unit.onlyOn?.nodes.has(chosen.target.node)) parts.push(unit.onlyOn.why);
  else if (unit.prefers.includes(chosen.target.node)) parts.push('preferred node');
  if (candidates === 1) parts.push('the only target that fits');
  else if (unit.memory === 0) parts.push(`fewest guests placed there among ${candidates} fitting targets`);
  else {
    const freeAfter = 1 - (chosen.memory + unit.memory) / chosen.target.memoryTotal;
    parts.push(
      strategy === 'spread'
        ? `most memory left free among ${candidates} fitting targets (${Math.round(freeAfter * 100)}% free after)`
        : `tightest fit among ${candidates} targets, so the larger guests fit too (${Math.round(freeAfter * 100)}% free after)`,
    );
  }
  return parts.join('; ');
}

function placedCount(r: PlacementResult): number {
  return Object.keys(r.placements).length;
}
