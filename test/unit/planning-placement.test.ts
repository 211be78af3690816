import { describe, expect, it } from 'vitest';
import { placeGuests, type PlacementItem, type PlacementTarget } from '../../lib/planning/placement.js';

const GiB = 1024 ** 3;
const policy = { memoryHeadroom: 0.2, cpuOversubscription: 4, memoryBasis: 'configured' as const };

function target(node: string, over: Partial<PlacementTarget> = {}): PlacementTarget {
  return {
    node,
    memoryTotal: 100 * GiB,
    memoryUsed: 0,
    memoryCommitted: 0,
    cpus: 16,
    vcpusAssigned: 0,
    storageFree: { ceph: 10_000 * GiB, 'local-lvm': 500 * GiB },
    groups: {},
    ...over,
  };
}

function item(id: string, memoryGiB: number, over: Partial<PlacementItem> = {}): PlacementItem {
  return { id, memory: memoryGiB * GiB, vcpus: 2, storage: { ceph: 0 }, ...over };
}

describe('placeGuests', () => {
  it('never fills a target beyond its memory headroom', () => {
    // 30 guests of 1..10 GiB onto three 100 GiB nodes already 40-60% full.
    const items = Array.from({ length: 30 }, (_, i) => item(`g${i}`, 1 + ((i * 7) % 10)));
    const targets = [
      target('a', { memoryCommitted: 40 * GiB }),
      target('b', { memoryCommitted: 50 * GiB }),
      target('c', { memoryCommitted: 60 * GiB }),
    ];
    const result = placeGuests(items, targets, policy);

    for (const t of result.targets) {
      expect(t.memoryLimit).toBe(80 * GiB);
      expect(t.memoryAfter).toBeLessThanOrEqual(t.memoryLimit);
    }
    expect(Object.keys(result.placements).length + result.unplaced.length).toBe(items.length);
    for (const u of result.unplaced) expect(u.reasons.join(' ')).toMatch(/memory/);
  });

  it('uses the configured headroom', () => {
    const result = placeGuests([item('big', 60)], [target('a')], { ...policy, memoryHeadroom: 0.5 });
    expect(result.unplaced).toEqual([
      {
        id: 'big',
        reasons: ['a: memory: 60.0 GiB more would use 60% of 100.0 GiB, above the 50% limit'],
        constraints: ['memory'],
      },
    ]);
  });

  it('spreads guests so every target keeps a similar share of memory free', () => {
    const items = ['1', '2', '3', '4', '5', '6'].map((id) => item(id, 8));
    const result = placeGuests(items, [target('a'), target('b'), target('c')], policy);
    expect(result.targets.map((t) => t.items.length)).toEqual([2, 2, 2]);
  });

  it('places the largest guests first and packs tightly when spreading would strand one', () => {
    // Spreading puts the 6 on a (most room left), a 5 on b, and strands the other 5.
    const targets = [target('a', { memoryTotal: 10 * GiB }), target('b', { memoryTotal: 6 * GiB })];
    const items = [item('five-1', 5), item('five-2', 5), item('six', 6)];
    const result = placeGuests(items, targets, { ...policy, memoryHeadroom: 0 });
    expect(result.unplaced).toEqual([]);
    expect(result.placements).toEqual({ six: 'b', 'five-1': 'a', 'five-2': 'a' });
  });

  it('respects the CPU oversubscription limit', () => {
    const result = placeGuests([item('wide', 1, { vcpus: 8 })], [target('a', { cpus: 4, vcpusAssigned: 10 })], {
      ...policy,
      cpuOversubscription: 4,
    });
    expect(result.unplaced[0]?.reasons).toEqual(['a: CPU: 18 vCPUs on 4 CPUs exceeds the 4x oversubscription limit']);
  });

  it('counts guests that arrive stopped against neither memory nor CPU, and spreads them by count', () => {
    const full = { memoryCommitted: 80 * GiB, vcpusAssigned: 64 };
    const items = ['s1', 's2', 's3', 's4'].map((id) => item(id, 16, { memory: 0, vcpus: 0 }));
    const result = placeGuests(items, [target('a', full), target('b', full)], policy);
    expect(result.unplaced).toEqual([]);
    expect(result.targets.map((t) => t.items)).toEqual([
      ['s1', 's3'],
      ['s2', 's4'],
    ]);
  });

  it('keeps members of an anti-affinity group on different nodes', () => {
    const items = ['1', '2', '3'].map((id) => item(id, 1, { apart: ['anti-affinity-web'] }));
    const result = placeGuests(items, [target('a'), target('b')], policy);
    expect(new Set(Object.values(result.placements)).size).toBe(2);
    expect(result.unplaced).toHaveLength(1);
    expect(result.unplaced[0]?.reasons.join('; ')).toMatch(/a: holds .* of anti-affinity group anti-affinity-web/);
  });

  it('treats a member already running on a target as occupying it for its anti-affinity group', () => {
    const result = placeGuests(
      [item('2', 1, { apart: ['ha-rule:db-apart'] })],
      [target('a', { groups: { 'ha-rule:db-apart': ['101 (db1)'] } }), target('b', { memoryCommitted: 70 * GiB })],
      policy,
    );
    expect(result.placements).toEqual({ '2': 'b' });
  });

  it('moves an affinity group as one unit, to where its other members already run', () => {
    const items = [item('app', 4, { together: ['affinity-shop'] }), item('cache', 2, { together: ['affinity-shop'] })];
    const result = placeGuests(
      items,
      [target('a'), target('b', { memoryCommitted: 50 * GiB, groups: { 'affinity-shop': ['300 (db)'] } })],
      policy,
    );
    expect(result.placements).toEqual({ app: 'b', cache: 'b' });
    expect(result.why['app']).toMatch(/moves with app, cache \(affinity\); affinity group affinity-shop runs on b/);
  });

  it('reports a guest that is both bound to and kept apart from another as unplaceable, naming both groups', () => {
    const items = [
      item('x', 1, { together: ['affinity-pair'], apart: ['anti-affinity-pair'] }),
      item('y', 1, { together: ['affinity-pair'], apart: ['anti-affinity-pair'] }),
    ];
    const result = placeGuests(items, [target('a'), target('b')], policy);
    expect(result.placements).toEqual({});
    expect(result.unplaced.map((u) => u.id).sort()).toEqual(['x', 'y']);
    expect(result.unplaced[0]?.reasons[0]).toBe(
      'x and y must share a node (affinity) but are in anti-affinity group anti-affinity-pair',
    );
  });

  it('needs every storage the guest uses, with room for the disks it copies', () => {
    const items = [
      item('shared', 1, { storage: { nfs: 0 } }),
      item('copied', 1, { storage: { 'local-lvm': 200 * GiB } }),
    ];
    const result = placeGuests(items, [target('a', { storageFree: { 'local-lvm': 100 * GiB } })], policy);
    expect(result.unplaced).toEqual([
      { id: 'copied', reasons: ['a: storage local-lvm has 100.0 GiB free, needs 200.0 GiB'], constraints: ['storage'] },
      { id: 'shared', reasons: ['a: storage nfs is not available'], constraints: ['storage'] },
    ]);
  });

  it('follows strict node affinity, prefers preferred nodes and states refusals per target', () => {
    const result = placeGuests(
      [
        item('strict', 1, { onlyOn: ['c'] }),
        item('prefers', 1, { prefers: ['b'] }),
        item('refused', 1, {
          refused: { a: 'PVE: storage nfs unavailable', b: 'PVE: blocked by HA resource vm:9' },
          onlyOn: ['a', 'b'],
        }),
      ],
      [target('a'), target('b', { memoryCommitted: 70 * GiB }), target('c')],
      policy,
    );
    expect(result.placements).toEqual({ strict: 'c', prefers: 'b' });
    expect(result.unplaced).toEqual([
      {
        id: 'refused',
        reasons: [
          'a: PVE: storage nfs unavailable',
          'b: PVE: blocked by HA resource vm:9',
          'c: refused may run only on a, b',
        ],
        constraints: ['refused', 'node-affinity'],
      },
    ]);
  });

  it('gives the same answer whatever order the targets come in', () => {
    const items = Array.from({ length: 12 }, (_, i) => item(`g${i}`, 2 + (i % 5)));
    const targets = [
      target('a', { memoryCommitted: 30 * GiB }),
      target('b'),
      target('c', { memoryCommitted: 10 * GiB }),
    ];
    const forward = placeGuests(items, targets, policy);
    const backward = placeGuests(items, [...targets].reverse(), policy);
    expect(backward).toEqual(forward);
  });

  it('sends nothing, not even a stopped guest, to a target already above the limit, and names it', () => {
    const items = [item('running', 1), item('stopped', 0)];
    const targets = [
      target('a', { memoryCommitted: 85 * GiB, memoryUsed: 30 * GiB }),
      target('b', { memoryCommitted: 79 * GiB }),
    ];
    const result = placeGuests(items, targets, policy);

    expect(result.placements).toEqual({ running: 'b', stopped: 'b' });
    expect(result.overLimit).toEqual([
      {
        node: 'a',
        reason:
          'already above the memory limit: configured memory of its running guests is 85.0 GiB, 85% of 100.0 GiB (limit 80%)',
      },
    ]);
    // Counted by what it reports in use, the same target has room.
    expect(placeGuests(items, targets, { ...policy, memoryBasis: 'used' }).overLimit).toEqual([]);
  });

  it('explains that nothing can be placed when there are no targets', () => {
    expect(placeGuests([item('lonely', 1)], [], policy).unplaced).toEqual([
      { id: 'lonely', reasons: ['no target nodes to choose from'], constraints: ['no-targets'] },
    ]);
  });
});
