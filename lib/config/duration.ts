import { durationPattern } from './schema.js';

const unitMs = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Milliseconds in a validated duration string such as `30s` or `24h`. */
export function durationMs(duration: string): number {
  const match = durationPattern.exec(duration);
  if (!match) throw new Error(`not a duration: ${duration}`);
  return Number(match[1]) * unitMs[match[2] as keyof typeof unitMs];
}
