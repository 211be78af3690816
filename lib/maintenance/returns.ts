/**
 * Bringing a maintained node's guests home, planned like an evacuation in reverse: every
 * guest that left comes back from wherever it is now, in the state it is in now. All of them
 * arrive at one node, so its link is what the migrations share — as an evacuation's leave
 * through the source's link — and as many run at once as an evacuation starts
 * (`maxParallel`), in the evacuation planner's start order (sizes mixed in every round, so
 * the link never idles on a tail of small migrations while they set up).
 */
import {
  defaultCostAssumptions,
  evacuationMs,
  migrationMs,
  transferBytes,
  type MigrationMode,
} from '../planning/estimate.js';
import { startOrder, type EvacuationPlan, type GuestMove } from '../planning/evacuation.js';
import type { GuestType } from '../planning/snapshot.js';
import { MiB } from '../planning/units.js';
import type { DrainRequest } from './plan.js';

/** A guest that left the node, as its evacuation moved it. */
export interface ReturningGuest {
  vmid: number;
  name: string;
  type: GuestType;
  withLocalDisks: boolean;
  memoryBytes: number;
  localDiskBytes: number;
}

/** Where a guest is now, as the cluster reports it; absent when it no longer exists. */
export interface Whereabouts {
  node: string;
  running: boolean;
  haManaged: boolean;
}

export interface ReturnPlan {
  /** In the order they are started. */
  moves: GuestMove[];
  /** Already home. */
  home: number[];
  gone: { vmid: number; name: string; reason: string }[];
  limits: EvacuationPlan['limits'];
  estimatedMs: number;
}

export function planReturn(
  node: string,
  guests: readonly ReturningGuest[],
  whereabouts: (vmid: number) => Whereabouts | undefined,
  drain: Pick<DrainRequest, 'maxParallel' | 'bwlimitMiBps' | 'linkGbps' | 'containerShutdownTimeoutSeconds'>,
): ReturnPlan {
  const costs = defaultCostAssumptions(drain.linkGbps);
  const bwlimit = drain.bwlimitMiBps ? drain.bwlimitMiBps * MiB : undefined;
  const moves: GuestMove[] = [];
  const home: number[] = [];
  const gone: ReturnPlan['gone'] = [];
  for (const g of guests) {
    const now = whereabouts(g.vmid);
    if (!now) {
      gone.push({ vmid: g.vmid, name: g.name, reason: 'it no longer exists' });
      continue;
    }
    if (now.node === node) {
      home.push(g.vmid);
      continue;
    }
    const mode: MigrationMode = !now.running ? 'offline' : g.type === 'qemu' ? 'online' : 'restart';
    const bytes = transferBytes(mode, g.memoryBytes, g.localDiskBytes);
    moves.push({
      vmid: g.vmid,
      name: g.name,
      type: g.type,
      source: now.node,
      target: node,
      mode,
      priorStatus: now.running ? 'running' : 'stopped',
      haManaged: now.haManaged,
      withLocalDisks: mode === 'online' && g.withLocalDisks,
      memoryBytes: g.memoryBytes,
      localDiskBytes: g.localDiskBytes,
      transferBytes: bytes,
      estimatedMs: migrationMs(mode, bytes, costs, bwlimit),
      why: `back to ${node} after its maintenance`,
    });
  }
  const parallel = Math.max(1, drain.maxParallel);
  return {
    moves: startOrder(moves, parallel),
    home,
    gone,
    limits: {
      maxParallel: parallel,
      // Every return arrives at the one node: the per-target limit that spreads an evacuation over its targets would hold it to a few at a time.
      maxParallelPerTarget: parallel,
      ...(drain.bwlimitMiBps ? { bwlimitKiBps: drain.bwlimitMiBps * 1024 } : {}),
      containerShutdownTimeoutSeconds: drain.containerShutdownTimeoutSeconds,
    },
    estimatedMs: evacuationMs(
      moves.map((m) => ({ mode: m.mode, bytes: m.transferBytes, ms: m.estimatedMs })),
      parallel,
      costs,
    ),
  };
}
