/**
 * How long migrations take, for the estimates a plan states. PVE does not report link
 * speeds, so the caller says what to assume; the shape of the model — a fixed setup per
 * migration plus the bytes that must cross the link — is what PVE's migrations do: an online
 * migration copies the guest's memory and its local disks, an offline one only the disks, a
 * restart migration shuts the container down, copies its volumes and starts it again.
 */

export type MigrationMode = 'online' | 'offline' | 'restart';

export interface MigrationCostAssumptions {
  /** Usable bytes per second of a node's migration link. */
  linkBytesPerSecond: number;
  /** Fixed seconds per migration besides the copy (start the target, tunnel, hand over). */
  setupSeconds: Record<MigrationMode, number>;
}

export const defaultCostAssumptions = (linkGbps: number): MigrationCostAssumptions => ({
  linkBytesPerSecond: (linkGbps * 1e9) / 8,
  // Restart migrations add the container's shutdown and start to the copy.
  setupSeconds: { online: 4, offline: 2, restart: 15 },
});

/** Bytes a migration moves over the source node's link. */
export function transferBytes(mode: MigrationMode, memoryBytes: number, localDiskBytes: number): number {
  return (mode === 'online' ? memoryBytes : 0) + localDiskBytes;
}

/** Milliseconds one migration takes when it has the link to itself (capped by `bwlimit`, bytes/s). */
export function migrationMs(
  mode: MigrationMode,
  bytes: number,
  a: MigrationCostAssumptions,
  bwlimitBytesPerSecond?: number,
): number {
  const rate = Math.min(a.linkBytesPerSecond, bwlimitBytesPerSecond ?? Infinity);
  return Math.round((a.setupSeconds[mode] + bytes / rate) * 1000);
}

/**
 * Milliseconds to run all migrations from one source with `parallel` at a time: the source
 * link carrying every byte, or the slots working through every migration's own time, which
 * ever is longer — plus one setup, since the link idles while the first migrations start.
 */
export function evacuationMs(
  moves: readonly { mode: MigrationMode; bytes: number; ms: number }[],
  parallel: number,
  a: MigrationCostAssumptions,
): number {
  if (moves.length === 0) return 0;
  const bytes = moves.reduce((sum, m) => sum + m.bytes, 0);
  const work = moves.reduce((sum, m) => sum + m.ms, 0);
  const longest = Math.max(...moves.map((m) => m.ms));
  const firstSetup = Math.min(...moves.map((m) => a.setupSeconds[m.mode])) * 1000;
  return Math.round(
    Math.max((bytes / a.linkBytesPerSecond) * 1000 + firstSetup, work / Math.max(1, parallel), longest),
  );
}
