/**
 * PVE's prune-backups selection (PVE::Storage::prune_mark_backup_group), for one backup group
 * (one guest's archives on one storage): newest first, each keep option in turn keeps the
 * newest archive of each of its periods not already covered, up to its count; protected
 * archives are never removed and count for nothing; whatever no option keeps is removed.
 */

export interface PruneOptions {
  'keep-last'?: number;
  'keep-hourly'?: number;
  'keep-daily'?: number;
  'keep-weekly'?: number;
  'keep-monthly'?: number;
  'keep-yearly'?: number;
}

export type PruneMark = 'keep' | 'remove' | 'protected';

export interface PruneCandidate {
  volid: string;
  /** Epoch seconds. */
  ctime: number;
  protected: boolean;
}

const pad = (n: number) => String(n).padStart(2, '0');

/** ISO 8601 week-numbering year and week (`%G/%V`), as PVE's keep-weekly groups. */
function isoWeek(d: Date): string {
  const day = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const weekday = day.getUTCDay() || 7;
  day.setUTCDate(day.getUTCDate() + 4 - weekday);
  const yearStart = Date.UTC(day.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((day.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${day.getUTCFullYear()}/${pad(week)}`;
}

/** The period an archive falls in, per option (UTC: the simulated cluster's and the demo's zone). */
const PERIOD: Record<keyof PruneOptions, (ctime: number) => string> = {
  'keep-last': (ctime) => String(ctime),
  'keep-hourly': (ctime) => new Date(ctime * 1000).toISOString().slice(0, 13),
  'keep-daily': (ctime) => new Date(ctime * 1000).toISOString().slice(0, 10),
  'keep-weekly': (ctime) => isoWeek(new Date(ctime * 1000)),
  'keep-monthly': (ctime) => new Date(ctime * 1000).toISOString().slice(0, 7),
  'keep-yearly': (ctime) => new Date(ctime * 1000).toISOString().slice(0, 4),
};

const ORDER: (keyof PruneOptions)[] = [
  'keep-last',
  'keep-hourly',
  'keep-daily',
  'keep-weekly',
  'keep-monthly',
  'keep-yearly',
];

/** Marks every archive of one group; with no keep option at all PVE keeps everything. */
export function markBackupGroup(group: readonly PruneCandidate[], keep: PruneOptions): Map<string, PruneMark> {
  const list = [...group].sort((a, b) => b.ctime - a.ctime);
  const marks = new Map<string, PruneMark>(list.filter((b) => b.protected).map((b) => [b.volid, 'protected']));
  const options = ORDER.filter((o) => (keep[o] ?? 0) > 0);
  if (options.length === 0) {
    for (const b of list) if (!marks.has(b.volid)) marks.set(b.volid, 'keep');
    return marks;
  }
  for (const option of options) {
    const period = PERIOD[option];
    const covered = new Set(list.filter((b) => marks.get(b.volid) === 'keep').map((b) => period(b.ctime)));
    const kept = new Set<string>();
    for (const b of list) {
      if (marks.has(b.volid)) continue;
      const id = period(b.ctime);
      if (covered.has(id)) continue;
      if (kept.has(id)) {
        marks.set(b.volid, 'remove');
        continue;
      }
      if (kept.size >= keep[option]!) break;
      kept.add(id);
      marks.set(b.volid, 'keep');
    }
  }
  for (const b of list) if (!marks.has(b.volid)) marks.set(b.volid, 'remove');
  return marks;
}
