import { describe, expect, it } from 'vitest';
import {
  estimateMigrationSeconds,
  MIGRATION_SETUP_SECONDS,
  migrationTransferBytes,
  shareBandwidth,
  simulateTransfers,
} from '../../sim/cost.js';

const GB = 1e9;
const link = (rates: Record<string, number>) => (node: string) => rates[node] ?? 1.25 * GB;

describe('migration cost model', () => {
  it('moves memory only when online, local disks always', () => {
    expect(migrationTransferBytes({ online: true, memoryBytes: 8 * GB, localDiskBytes: 0 })).toBe(8 * GB);
    expect(migrationTransferBytes({ online: false, memoryBytes: 8 * GB, localDiskBytes: 0 })).toBe(0);
    expect(migrationTransferBytes({ online: true, memoryBytes: 8 * GB, localDiskBytes: 32 * GB })).toBe(40 * GB);
  });

  it('takes setup time plus bytes over the slower of the two links, capped by bwlimit (KiB/s)', () => {
    const size = { online: true, memoryBytes: 10 * GB, localDiskBytes: 0 };
    expect(estimateMigrationSeconds(size, { source: 1.25 * GB, target: 1.25 * GB })).toBeCloseTo(
      MIGRATION_SETUP_SECONDS.online + 8,
    );
    expect(estimateMigrationSeconds(size, { source: 1.25 * GB, target: 0.3125 * GB })).toBeCloseTo(
      MIGRATION_SETUP_SECONDS.online + 32,
    );
    expect(
      estimateMigrationSeconds(size, { source: 1.25 * GB, target: 1.25 * GB }, (100 * 1024 * 1024) / 1024),
    ).toBeCloseTo(MIGRATION_SETUP_SECONDS.online + (10 * GB) / (100 * 1024 * 1024));
  });
});

describe('bandwidth sharing', () => {
  it('splits a source link evenly between migrations leaving it', () => {
    const rates = shareBandwidth(
      [
        { id: 'a', source: 'pve1', target: 'pve2' },
        { id: 'b', source: 'pve1', target: 'pve3' },
      ],
      link({}),
    );
    expect(rates.get('a')).toBeCloseTo(0.625 * GB);
    expect(rates.get('b')).toBeCloseTo(0.625 * GB);
  });

  it('splits a target link between migrations arriving at it', () => {
    const rates = shareBandwidth(
      [
        { id: 'a', source: 'pve1', target: 'pve3' },
        { id: 'b', source: 'pve2', target: 'pve3' },
      ],
      link({}),
    );
    expect(rates.get('a')! + rates.get('b')!).toBeCloseTo(1.25 * GB);
  });

  it('gives what a capped flow leaves unused to the others (max-min fairness)', () => {
    const rates = shareBandwidth(
      [
        { id: 'capped', source: 'pve1', target: 'pve2', limitBytesPerSecond: 0.25 * GB },
        { id: 'free', source: 'pve1', target: 'pve3' },
      ],
      link({}),
    );
    expect(rates.get('capped')).toBeCloseTo(0.25 * GB);
    expect(rates.get('free')).toBeCloseTo(1 * GB);
  });

  it('is bounded by the slowest link on the path', () => {
    const rates = shareBandwidth(
      [{ id: 'a', source: 'fast', target: 'slow' }],
      link({ fast: 1.25 * GB, slow: 0.3 * GB }),
    );
    expect(rates.get('a')).toBeCloseTo(0.3 * GB);
  });

  it('doubles the transfer time of two concurrent migrations from one source', () => {
    const one = { bytes: 10 * GB, setupSeconds: 4 };
    const alone = simulateTransfers([{ id: 'a', source: 'pve1', target: 'pve2', ...one }], link({}));
    const together = simulateTransfers(
      [
        { id: 'a', source: 'pve1', target: 'pve2', ...one },
        { id: 'b', source: 'pve1', target: 'pve3', ...one },
      ],
      link({}),
    );
    const transfer = (t: { transferStart: number; end: number }) => t.end - t.transferStart;
    expect(transfer(alone.get('a')!)).toBeCloseTo(8);
    expect(transfer(together.get('a')!)).toBeCloseTo(16);
    expect(transfer(together.get('b')!)).toBeCloseTo(16);
  });

  it('speeds the remaining migration up when the other one finishes', () => {
    const timeline = simulateTransfers(
      [
        { id: 'small', source: 'pve1', target: 'pve2', bytes: 2.5 * GB, setupSeconds: 0 },
        { id: 'big', source: 'pve1', target: 'pve3', bytes: 10 * GB, setupSeconds: 0 },
      ],
      link({}),
    );
    // Both at 0.625 GB/s until small is done at 4 s (big has 7.5 GB left), then big alone at 1.25 GB/s.
    expect(timeline.get('small')!.end).toBeCloseTo(4);
    expect(timeline.get('big')!.end).toBeCloseTo(10);
  });
});
