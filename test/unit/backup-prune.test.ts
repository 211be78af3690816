/** PVE's prune-backups selection, and the per-key limits backups run under. */
import { describe, expect, it } from 'vitest';
import { mapWithLimits } from '../../lib/backup/limits.js';
import { markBackupGroup, type PruneCandidate } from '../../lib/backup/prune.js';

const day = 86_400;
const start = Date.UTC(2026, 11, 6, 7) / 1000; // Sunday 2026-12-06 07:00 UTC
/** One archive a day at 07:00 and one at 19:00, for `days` days back from the start. */
const twiceDaily = (days: number, protectedDays: number[] = []): PruneCandidate[] =>
  Array.from({ length: days }, (_, d) => [
    { volid: `d${d}-am`, ctime: start - d * day, protected: protectedDays.includes(d) },
    { volid: `d${d}-pm`, ctime: start - d * day + day / 2, protected: false },
  ]).flat();
const kept = (marks: Map<string, string>) => [...marks].filter(([, m]) => m === 'keep').map(([v]) => v);

describe('prune-backups selection', () => {
  it('keeps the newest N with keep-last', () => {
    expect(kept(markBackupGroup(twiceDaily(3), { 'keep-last': 2 }))).toEqual(['d0-pm', 'd0-am']);
  });

  it('keeps the newest of each day, and fills keep-daily after keep-last', () => {
    const marks = markBackupGroup(twiceDaily(5), { 'keep-last': 1, 'keep-daily': 3 });
    expect(kept(marks)).toEqual(['d0-pm', 'd1-pm', 'd2-pm', 'd3-pm']);
    expect(marks.get('d0-am')).toBe('remove');
  });

  it('groups keep-weekly by ISO week', () => {
    const marks = markBackupGroup(twiceDaily(10), { 'keep-weekly': 2 });
    // 2026-12-06 is a Sunday: its week began on Monday 11-30; the week before holds 11-26..11-29.
    expect(kept(marks)).toEqual(['d0-pm', 'd7-pm']);
  });

  it('never removes a protected backup, and does not count it', () => {
    const marks = markBackupGroup(twiceDaily(3, [0]), { 'keep-last': 1 });
    expect(marks.get('d0-am')).toBe('protected');
    expect(kept(marks)).toEqual(['d0-pm']);
    expect([...marks.values()].filter((m) => m === 'remove')).toHaveLength(4);
  });

  it('keeps everything when no keep option is set', () => {
    expect(new Set(markBackupGroup(twiceDaily(2), {}).values())).toEqual(new Set(['keep']));
  });
});

describe('work under per-key limits', () => {
  it('never runs more than a key allows, and starts later items whose keys are free', async () => {
    const running = new Map<string, number>();
    let peak = { a: 0, b: 0 };
    const gates: (() => void)[] = [];
    const items = ['a1', 'a2', 'b1', 'a3', 'b2'];
    const done = mapWithLimits(
      items,
      (item) => [{ key: item[0]!, limit: item[0] === 'a' ? 1 : 2 }],
      async (item) => {
        const key = item[0] as 'a' | 'b';
        running.set(key, (running.get(key) ?? 0) + 1);
        peak = { ...peak, [key]: Math.max(peak[key], running.get(key)!) };
        await new Promise<void>((resolve) => gates.push(resolve));
        running.set(key, running.get(key)! - 1);
        return item;
      },
    );
    for (let i = 0; i < 20 && gates.length + [...running.values()].reduce((s, n) => s + n, 0) > 0; i++) {
      await new Promise((r) => setImmediate(r));
      gates.splice(0).forEach((g) => g());
    }
    const results = await done;
    expect(results.map((r) => r.ok && r.value)).toEqual(items);
    expect(peak).toEqual({ a: 1, b: 2 });
  });
});
