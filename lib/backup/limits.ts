/**
 * Runs work over items in order, never more than a limit at a time per key (a backup holds
 * one slot of its storage and one of its node). An item waits while any of its keys is full;
 * items behind it whose keys are free start meanwhile. Pure promise plumbing, deterministic
 * in workflows; every item's outcome is reported, as mapBounded does.
 */
import type { Settled } from '../lifecycle/bounded.js';

export interface Slot {
  key: string;
  limit: number;
}

export async function mapWithLimits<T, R>(
  items: readonly T[],
  slotsOf: (item: T) => readonly Slot[],
  work: (item: T, index: number) => Promise<R>,
  options: { haltOn?: (error: unknown) => boolean } = {},
): Promise<Settled<R>[]> {
  const results: Settled<R>[] = new Array(items.length);
  const inUse = new Map<string, number>();
  const waiting = items.map((_, i) => i);
  let halt: { error: unknown } | undefined;
  let wake: () => void = () => {};
  const started: Promise<void>[] = [];
  let active = 0;

  const fits = (i: number) => slotsOf(items[i]!).every((s) => (inUse.get(s.key) ?? 0) < s.limit);
  const take = (i: number, delta: 1 | -1) => {
    for (const s of slotsOf(items[i]!)) inUse.set(s.key, (inUse.get(s.key) ?? 0) + delta);
  };
  const start = (i: number) => {
    take(i, 1);
    active++;
    const run = (async () => {
      try {
        results[i] = { ok: true, value: await work(items[i]!, i) };
      } catch (error) {
        results[i] = { ok: false, error };
        if (options.haltOn?.(error)) halt ??= { error };
      } finally {
        take(i, -1);
        active--;
        wake();
      }
    })();
    started.push(run);
  };

  while (waiting.length > 0 && !halt) {
    for (let w = 0; w < waiting.length;) {
      if (fits(waiting[w]!)) start(waiting.splice(w, 1)[0]!);
      else w++;
    }
    if (waiting.length === 0) break;
    if (active === 0) throw new RangeError('an item needs a slot whose limit is below 1');
    await new Promise<void>((resolve) => (wake = resolve));
  }
  await Promise.all(started);
  if (halt) throw halt.error;
  return results;
}
