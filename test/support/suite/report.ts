/**
 * What the fault, load and security suite measured, for `npm run suite` to tabulate.
 *
 * Tests call `record(...)` with what they injected and what they observed; when the suite
 * runner set PM_SUITE_REPORT, each figure is appended to that file as one JSON line (test
 * files run in separate processes, so a file is the meeting point). Outside the runner the
 * figures are only kept in memory.
 */
import { appendFileSync } from 'node:fs';

export interface SuiteFigure {
  /** Table row group: `faults`, `load`, `security`, ... */
  section: string;
  /** What was measured, e.g. `worker SIGKILLs (vm-action)`. */
  name: string;
  value: number | string;
  unit?: string;
  /** How to read it (seed, scenario, what passing means). */
  note?: string;
}

export function record(figure: SuiteFigure): void {
  const path = process.env.PM_SUITE_REPORT;
  if (path) appendFileSync(path, `${JSON.stringify(figure)}\n`);
}

/** Heavier variants (more kills, more kinds, longer recoveries) run only when asked. */
export const heavy = process.env.PM_SUITE_HEAVY === '1';

/** The seed every random choice of the suite derives from: PM_SUITE_SEED, else a fixed one. */
export function suiteSeed(): number {
  const seed = Number(process.env.PM_SUITE_SEED ?? 20251122);
  if (!Number.isSafeInteger(seed))
    throw new Error(`PM_SUITE_SEED must be an integer, got '${process.env.PM_SUITE_SEED}'`);
  return seed;
}

/** Deterministic PRNG: the same seed reproduces the same kill points and inputs. */
export { seededRandom as random } from '../../../sim/faults.js';

/** An integer in [min, max]. */
export function between(next: () => number, min: number, max: number): number {
  return min + Math.floor(next() * (max - min + 1));
}
