/**
 * Runs work over many items, at most `limit` at a time, and reports every item's outcome:
 * one failure never hides the others. Pure promise plumbing (no timers, no I/O), so
 * workflows use it as deterministically as activities and benchmarks do.
 */
export type Settled<R> = { ok: true; value: R } | { ok: false; error: unknown };

export interface MapBoundedOptions {
  /**
   * An error that ends the whole run rather than one item (a cancelled workflow): no further
   * items start, the running ones finish, and then it is thrown.
   */
  haltOn?: (error: unknown) => boolean;
}

export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<R>,
  options: MapBoundedOptions = {},
): Promise<Settled<R>[]> {
  if (!(limit >= 1)) throw new RangeError('limit must be at least 1');
  const results: Settled<R>[] = new Array(items.length);
  let next = 0;
  let halt: { error: unknown } | undefined;
  const lane = async () => {
    while (next < items.length && !halt) {
      const index = next++;
      try {
        results[index] = { ok: true, value: await work(items[index]!, index) };
      } catch (error) {
        results[index] = { ok: false, error };
        if (options.haltOn?.(error)) halt ??= { error };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  if (halt) throw halt.error;
  return results;
}
