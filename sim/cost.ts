/**
 * Migration cost model, pure so that the simulator and the benchmarks share it.
 *
 * A migration takes a fixed setup time (start the target VM, open the tunnel, finalise)
 * plus the bytes it moves divided by the bandwidth it gets. Bytes are the guest's memory
 * when it migrates online, plus its local disks (which are copied in both modes). Each node
 * has one full-duplex link: concurrent migrations leaving the same node share its egress
 * and those arriving at the same node share its ingress, max-min fairly, and each is
 * capped by its own `bwlimit`. Parallel migrations therefore have diminishing returns.
 */

/** Seconds of fixed overhead per migration, independent of size. */
export const MIGRATION_SETUP_SECONDS = { online: 4, offline: 2 } as const;

export interface MigrationSize {
  online: boolean;
  memoryBytes: number;
  /** Local (non-shared) disk bytes that must be copied to the target. */
  localDiskBytes: number;
}

export function migrationTransferBytes(m: MigrationSize): number {
  return (m.online ? m.memoryBytes : 0) + m.localDiskBytes;
}

export function migrationSetupSeconds(online: boolean): number {
  return online ? MIGRATION_SETUP_SECONDS.online : MIGRATION_SETUP_SECONDS.offline;
}

/** PVE's `bwlimit` is KiB/s. */
export function bwlimitToBytesPerSecond(kibPerSecond: number | undefined): number | undefined {
  return kibPerSecond && kibPerSecond > 0 ? kibPerSecond * 1024 : undefined;
}

/** Duration of one migration running alone. */
export function estimateMigrationSeconds(
  m: MigrationSize,
  linkBytesPerSecond: { source: number; target: number },
  bwlimitKiBps?: number,
): number {
  const limit = bwlimitToBytesPerSecond(bwlimitKiBps) ?? Infinity;
  const rate = Math.min(linkBytesPerSecond.source, linkBytesPerSecond.target, limit);
  const bytes = migrationTransferBytes(m);
  return migrationSetupSeconds(m.online) + (bytes === 0 ? 0 : bytes / rate);
}

export interface TransferFlow {
  id: string;
  source: string;
  target: string;
  /** Per-flow cap in bytes/s (`bwlimit`). */
  limitBytesPerSecond?: number;
}

/**
 * Max-min fair rates (bytes/s) for flows competing for node links: progressive filling,
 * where every flow grows at the same pace until its source egress, its target ingress or
 * its own limit saturates.
 */
export function shareBandwidth(
  flows: readonly TransferFlow[],
  linkBytesPerSecond: (node: string) => number,
): Map<string, number> {
  const rates = new Map<string, number>(flows.map((f) => [f.id, 0]));
  const remaining = new Map<string, number>();
  const resourcesOf = (f: TransferFlow) => [`out:${f.source}`, `in:${f.target}`] as const;
  for (const f of flows) {
    remaining.set(`out:${f.source}`, linkBytesPerSecond(f.source));
    remaining.set(`in:${f.target}`, linkBytesPerSecond(f.target));
  }
  const EPS = 1e-9;
  let active = flows.filter((f) => (f.limitBytesPerSecond ?? Infinity) > 0);
  while (active.length > 0) {
    const users = new Map<string, number>();
    for (const f of active) for (const r of resourcesOf(f)) users.set(r, (users.get(r) ?? 0) + 1);
    let step = Infinity;
    for (const [r, n] of users) step = Math.min(step, remaining.get(r)! / n);
    for (const f of active) step = Math.min(step, (f.limitBytesPerSecond ?? Infinity) - rates.get(f.id)!);
    if (!Number.isFinite(step)) break;
    for (const f of active) {
      rates.set(f.id, rates.get(f.id)! + step);
      for (const r of resourcesOf(f)) remaining.set(r, remaining.get(r)! - step);
    }
    active = active.filter(
      (f) =>
        (f.limitBytesPerSecond ?? Infinity) - rates.get(f.id)! > EPS &&
        resourcesOf(f).every((r) => remaining.get(r)! > EPS),
    );
  }
  return rates;
}

export interface PlannedTransfer extends TransferFlow {
  bytes: number;
  setupSeconds: number;
  /** Seconds from time zero at which the migration is started. */
  startAt?: number;
}

export interface TransferTimeline {
  start: number;
  transferStart: number;
  end: number;
}

/**
 * Event-driven timeline of a set of migrations sharing links: when each starts moving
 * bytes and when each ends. Rates are recomputed whenever a transfer starts or finishes,
 * exactly as the live simulator does, so benchmarks can predict what the simulator measures.
 */
export function simulateTransfers(
  transfers: readonly PlannedTransfer[],
  linkBytesPerSecond: (node: string) => number,
): Map<string, TransferTimeline> {
  const result = new Map<string, TransferTimeline>();
  const left = new Map<string, number>();
  const pendingStarts = transfers
    .map((t) => ({ t, at: (t.startAt ?? 0) + t.setupSeconds }))
    .sort((a, b) => a.at - b.at);
  for (const t of transfers) {
    const start = t.startAt ?? 0;
    result.set(t.id, { start, transferStart: start + t.setupSeconds, end: Infinity });
  }
  const moving: PlannedTransfer[] = [];
  let now = 0;
  while (pendingStarts.length > 0 || moving.length > 0) {
    const rates = shareBandwidth(moving, linkBytesPerSecond);
    let nextFinish = Infinity;
    for (const t of moving) {
      const rate = rates.get(t.id)!;
      if (rate > 0) nextFinish = Math.min(nextFinish, now + left.get(t.id)! / rate);
    }
    const nextStart = pendingStarts[0]?.at ?? Infinity;
    const next = Math.min(nextFinish, nextStart);
    if (!Number.isFinite(next)) break; // stalled: zero bandwidth somewhere
    for (const t of moving) left.set(t.id, left.get(t.id)! - rates.get(t.id)! * (next - now));
    now = next;
    for (let i = moving.length - 1; i >= 0; i--) {
      const t = moving[i]!;
      if (left.get(t.id)! <= 1e-6 * Math.max(1, t.bytes)) {
        result.get(t.id)!.end = now;
        moving.splice(i, 1);
      }
    }
    while (pendingStarts[0] && pendingStarts[0].at <= now) {
      const { t } = pendingStarts.shift()!;
      if (t.bytes <= 0) {
        result.get(t.id)!.end = now;
      } else {
        left.set(t.id, t.bytes);
        moving.push(t);
      }
    }
  }
  return result;
}

/**
 * Backup cost model: vzdump reads the guest's allocated data, compresses it on the node and
 * writes the archive over the storage's link, which every backup writing to that storage
 * shares (as node links are shared by migrations). Compression ratios are typical of
 * mixed guest data; `0` stores it raw.
 */
export const BACKUP_COMPRESSION_RATIO: Readonly<Record<string, number>> = {
  '0': 1,
  '1': 0.55,
  lzo: 0.55,
  gzip: 0.42,
  zstd: 0.38,
};

/** Seconds per backup spent outside the transfer: freeze/snapshot, config, notes, finish. */
export const BACKUP_SETUP_SECONDS = 3;

export function backupArchiveBytes(dataBytes: number, compress: string): number {
  return Math.round(dataBytes * (BACKUP_COMPRESSION_RATIO[compress] ?? 1));
}

/** Transfer endpoint name of a storage's link: one per shared storage, one per node for local ones. */
export function storageLinkEnd(sid: string, node: string | null): string {
  return node === null ? `storage:${sid}` : `storage:${sid}@${node}`;
}
