/** What every part of one diff reads, and where it reports what it cannot plan. */
import type { Fleet, FleetGuest, ManifestProblem } from '../load.js';
import type { Problem } from '../match.js';
import type { GuestKind, ObservedCluster } from '../observed.js';
import type { DiffContext } from './types.js';

export interface DiffScope {
  fleet: Fleet;
  cluster: ObservedCluster;
  ctx: DiffContext;
  /** Each manifest guest's key: its name, service, or `service#vmid` (guestLabel). */
  label: Map<FleetGuest, string>;
  problem: Problem;
  /** What `problem` reported so far. */
  problems: readonly ManifestProblem[];
  warn: (line: string) => void;
}

/** The nodes a manifest guest may run on (its node, else its placement rule); undefined: any. */
export function allowedNodes(g: FleetGuest): string[] | undefined {
  return g.node !== undefined ? [g.node] : g.placement?.nodes;
}

/** The nodes that see `storage` as a place for this kind of guest's disks. */
export function storageNodes(cluster: ObservedCluster, storage: string, kind: GuestKind): string[] {
  return cluster.storages
    .filter((s) => s.storage === storage && s.content.includes(kind === 'qemu' ? 'images' : 'rootdir'))
    .map((s) => s.node);
}

export function isShared(cluster: ObservedCluster, storage: string): boolean {
  return cluster.storages.some((s) => s.storage === storage && s.shared);
}
