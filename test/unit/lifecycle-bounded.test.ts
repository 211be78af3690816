import { describe, expect, it } from 'vitest';
import { mapBounded } from '../../lib/lifecycle/bounded.js';

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('mapBounded', () => {
  it('never runs more than the limit at once, and uses the whole limit', async () => {
    let running = 0;
    let peak = 0;
    await mapBounded(
      Array.from({ length: 50 }, (_, i) => i),
      7,
      async () => {
        running++;
        peak = Math.max(peak, running);
        await tick();
        running--;
      },
    );
    expect(peak).toBe(7);
  });

  it('reports every item in order, failures beside successes', async () => {
    const results = await mapBounded([1, 2, 3, 4], 2, async (n) => {
      if (n % 2 === 0) throw new Error(`even ${n}`);
      return n * 10;
    });
    expect(results.map((r) => (r.ok ? r.value : (r.error as Error).message))).toEqual([10, 'even 2', 30, 'even 4']);
  });

  it('stops starting items after a halting error, lets running ones finish, then throws it', async () => {
    const started: number[] = [];
    const halt = new Error('cancelled');
    const run = mapBounded(
      [1, 2, 3, 4, 5, 6],
      2,
      async (n) => {
        started.push(n);
        await tick();
        if (n === 2) throw halt;
      },
      { haltOn: (e) => e === halt },
    );
    await expect(run).rejects.toBe(halt);
    expect(started).toEqual([1, 2, 3]);
  });
});
