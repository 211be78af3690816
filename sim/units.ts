/** Sizes the way PVE writes and reads them. */

const UNIT_POWER: Record<string, number> = { '': 0, B: 0, K: 1, M: 2, G: 3, T: 4, P: 5 };

/**
 * Parses `32G`, `754M`, `4T`, `64GiB`, `1.5G` or a plain byte count into bytes
 * (binary units, as PVE uses them). Returns undefined for anything else.
 */
export function parseSize(value: string | number): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.round(value) : undefined;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:i?B)?\s*$/i.exec(value);
  if (!m) return undefined;
  return Math.round(Number(m[1]) * 1024 ** UNIT_POWER[m[2]!.toUpperCase()]!);
}

/** PVE's disk size notation in configs (`size=32G`): the largest unit that divides evenly. */
export function formatDiskSize(bytes: number): string {
  for (const [unit, power] of [
    ['T', 4],
    ['G', 3],
    ['M', 2],
    ['K', 1],
  ] as const) {
    if (bytes >= 1024 ** power && bytes % 1024 ** power === 0) return `${bytes / 1024 ** power}${unit}`;
  }
  return `${Math.ceil(bytes / 1024)}K`;
}

/** PVE::Tools::render_bytes with hide_zeroes: `8 GiB`, `1.25 GiB`, `512 MiB`. */
export function renderBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let power = bytes > 0 ? Math.floor(Math.log(bytes) / Math.log(1024)) : 0;
  power = Math.min(Math.max(power, 0), units.length - 1);
  const text = (bytes / 1024 ** power).toFixed(2).replace(/\.?0+$/, '');
  return `${text} ${units[power]}`;
}

export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;
