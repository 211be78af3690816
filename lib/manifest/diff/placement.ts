/**
 * Where new and moving guests go: one placement for all of them (lib/planning/placement.ts on
 * the online nodes), then each new guest's VMID and name, in manifest order.
 */
import { guestName, NamingError } from '../../lifecycle/naming.js';
import {
  placeGuests,
  placementConstraints,
  type PlacementItem,
  type PlacementTarget,
} from '../../planning/placement.js';
import type { Fleet, FleetGuest, VmidRange } from '../load.js';
import type { ObservedCluster, ObservedGuest } from '../observed.js';
import type { Pending } from './compare.js';
import { allowedNodes, isShared, type DiffScope } from './scope.js';

const MiB = 1024 ** 2;

/** The node of a new or moving guest; undefined (reported) when no node can take it. */
export type Placed = (p: Pending) => string | undefined;

export function placePending(
  scope: DiffScope,
  pending: readonly Pending[],
  matched: Map<FleetGuest, ObservedGuest>,
): Placed {
  const { cluster, fleet, label } = scope;
  const items = pending.flatMap((p) => placementItem(scope, p) ?? []);
  const placement =
    items.length === 0
      ? undefined
      : placeGuests(items, placementTargets(cluster, fleet, matched, label), placementConstraints(scope.ctx.policy));
  const anyOnline = cluster.nodes.some((n) => n.online);
  return (p) => {
    const key = label.get(p.g)!;
    const node = placement?.placements[key];
    if (!node) {
      const reasons = placement?.unplaced.find((u) => u.id === key)?.reasons ?? [];
      const text = `no node can take it${anyOnline ? '' : ' (no node is online)'}: ${reasons.join('; ') || 'no node qualifies'}`;
      if (p.draft) scope.problem(p.g, [p.g.node !== undefined ? 'node' : 'placement'], text);
      else scope.warn(`${key}: should move to ${allowedNodes(p.g)!.join(' or ')}, but ${text}`);
    }
    return node;
  };
}

/** What placing a new guest, or one that must move to a node its rule allows, takes. */
function placementItem(scope: DiffScope, p: Pending): PlacementItem | undefined {
  const groups = p.g.placement?.anti_affinity ? { apart: [p.g.placement.anti_affinity] } : {};
  if (p.draft) {
    const { key, memoryMb, cores, bootStorage, bootDiskBytes, template, onlyOn } = p.draft;
    return {
      id: key,
      memory: memoryMb * MiB,
      vcpus: cores,
      storage: isShared(scope.cluster, bootStorage) || template ? {} : { [bootStorage]: bootDiskBytes },
      ...(onlyOn ? { onlyOn } : {}),
      ...groups,
    };
  }
  if (!p.move) return undefined;
  return {
    id: scope.label.get(p.g)!,
    memory: p.observed!.memoryBytes,
    vcpus: p.observed!.cores,
    storage: {},
    onlyOn: allowedNodes(p.g)!,
    ...groups,
  };
}

/** VMIDs and names for new guests: free ones from the guest's range, names no guest has (reported otherwise). */
export function newGuestIdentities(scope: DiffScope) {
  const { cluster, fleet, ctx } = scope;
  const taken = new Set<number>([
    ...cluster.guests.map((o) => o.vmid),
    ...fleet.guests.flatMap((g) => (g.vmid !== undefined ? [g.vmid] : [])),
  ]);
  const existingNames = new Set(cluster.guests.map((o) => o.name.toLowerCase()));
  const allocate = (g: FleetGuest): { vmid: number; range: VmidRange } | undefined => {
    const range = g.vmidRange ?? ctx.vmids;
    if (g.vmid !== undefined) return { vmid: g.vmid, range };
    for (let vmid = range.min; vmid <= range.max; vmid++) {
      if (!taken.has(vmid)) {
        taken.add(vmid);
        return { vmid, range };
      }
    }
    scope.problem(g, ['vmid'], `no free VMID left in ${range.min}-${range.max}`);
    return undefined;
  };
  /** The new guest's name; a replacement may keep the name of the guest it replaces. */
  const name = (p: Pending, vmid: number): string | undefined => {
    const g = p.g;
    let name: string;
    try {
      name = g.name ?? guestName(ctx.naming.pattern, { service: g.service!, vmid });
    } catch (err) {
      if (!(err instanceof NamingError)) throw err;
      scope.problem(g, ['service'], err.message);
      return undefined;
    }
    if (existingNames.has(name.toLowerCase()) && name.toLowerCase() !== p.observed?.name.toLowerCase()) {
      scope.problem(g, [g.name !== undefined ? 'name' : 'service'], `a guest named '${name}' exists already`);
      return undefined;
    }
    existingNames.add(name.toLowerCase());
    return name;
  };
  return { allocate, name };
}

export type NewGuestIdentities = ReturnType<typeof newGuestIdentities>;

/** The online nodes as placement sees them, with the anti-affinity groups of the guests already on each. */
function placementTargets(
  cluster: ObservedCluster,
  fleet: Fleet,
  matched: Map<FleetGuest, ObservedGuest>,
  label: Map<FleetGuest, string>,
): PlacementTarget[] {
  return cluster.nodes
    .filter((n) => n.online)
    .map((n) => {
      const groups: Record<string, string[]> = {};
      for (const g of fleet.guests) {
        const group = g.placement?.anti_affinity;
        const o = matched.get(g);
        if (group && o?.node === n.name) (groups[group] ??= []).push(label.get(g)!);
      }
      const running = cluster.guests.filter((o) => o.node === n.name && o.status === 'running');
      return {
        node: n.name,
        memoryTotal: n.memoryTotalBytes,
        memoryUsed: n.memoryUsedBytes,
        memoryCommitted: running.reduce((sum, o) => sum + o.memoryBytes, 0),
        cpus: n.cores,
        vcpusAssigned: running.reduce((sum, o) => sum + o.cores, 0),
        storageFree: Object.fromEntries(
          cluster.storages
            .filter((s) => s.node === n.name && (s.content.includes('images') || s.content.includes('rootdir')))
            .map((s) => [s.storage, s.freeBytes]),
        ),
        groups,
      };
    });
}
