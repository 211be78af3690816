export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;

/** Bytes as an operator reads them in a plan: `512 MiB`, `7.5 GiB`. */
export function formatBytes(bytes: number): string {
  if (Math.abs(bytes) < GiB) return `${Math.round(bytes / MiB)} MiB`;
  return `${(bytes / GiB).toFixed(1)} GiB`;
}

/** Milliseconds as a plan states durations: `45 s`, `12 min`, `1 h 05 min`. */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  const min = Math.round(s / 60);
  if (min < 120) return `${min} min`;
  return `${Math.floor(min / 60)} h ${String(min % 60).padStart(2, '0')} min`;
}
