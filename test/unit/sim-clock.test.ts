import { describe, expect, it } from 'vitest';
import { SimClock } from '../../sim/clock.js';

describe('simulated clock', () => {
  it('stands still in manual mode and fires timers in due order on advance', async () => {
    const clock = new SimClock({ manual: true, start: 1_000_000 });
    const fired: string[] = [];
    clock.schedule(3000, () => fired.push('3s'));
    clock.schedule(1000, () => fired.push('1s'));
    const cancel = clock.schedule(2000, () => fired.push('2s'));
    cancel();
    expect(clock.now()).toBe(1_000_000);
    await clock.advance(2500);
    expect(fired).toEqual(['1s']);
    expect(clock.now()).toBe(1_002_500);
    await clock.advance(1000);
    expect(fired).toEqual(['1s', '3s']);
  });

  it('lets chains of sleeps complete within one advance', async () => {
    const clock = new SimClock({ manual: true, start: 0 });
    const stamps: number[] = [];
    void (async () => {
      for (let i = 0; i < 3; i++) {
        await clock.sleep(1000);
        stamps.push(clock.now());
      }
    })();
    await clock.advance(10_000);
    expect(stamps).toEqual([1000, 2000, 3000]);
  });

  it('runs simulated time faster than wall time by the speed factor', async () => {
    const clock = new SimClock({ speed: 100 });
    const wallStart = performance.now();
    await clock.sleep(5000);
    const wall = performance.now() - wallStart;
    expect(wall).toBeGreaterThanOrEqual(40);
    expect(wall).toBeLessThan(1000);
    clock.stop();
  });
});
