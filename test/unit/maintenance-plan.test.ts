import { describe, expect, it } from 'vitest';
import {
  afterEvacuation,
  describeRollout,
  planRollout,
  RolloutRefusedError,
  type DrainRequest,
  type MaintenancePlan,
  type RolloutRequest,
} from '../../lib/maintenance/plan.js';
import { DEFAULT_UPGRADE_COMMAND } from '../../lib/maintenance/upgrade.js';
import type { ClusterSnapshot, GuestDisk, GuestState, MigrationFacts } from '../../lib/planning/snapshot.js';

const GiB = 1024 ** 3;
const policy = { memory_headroom: 0.2, cpu_oversubscription: 4, memory_basis: 'configured' as const };

const drain: DrainRequest = {
  maxParallel: 4,
  maxParallelPerTarget: 2,
  includeStopped: false,
  includeTemplates: false,
  localDisks: 'migrate',
  containers: 'restart',
  containerShutdownTimeoutSeconds: 180,
  onFailure: 'stop',
  linkGbps: 10,
};
const request = (over: Partial<RolloutRequest> = {}): RolloutRequest => ({
  keepOrder: false,
  parallelNodes: 1,
  overlap: false,
  drain,
  ...over,
});

type GuestSpec = Partial<GuestState> & Partial<MigrationFacts> & { vmid: number; node: string };

function shared(sizeGiB: number): GuestDisk {
  return {
    key: 'scsi0',
    volid: `ceph:vm-disk-${sizeGiB}`,
    storage: 'ceph',
    size: sizeGiB * GiB,
    shared: true,
    cdrom: false,
  };
}

/** `nodes` 64 GiB nodes with shared ceph and local-lvm; guests as given. */
function cluster(guests: GuestSpec[], nodes = ['pve1', 'pve2', 'pve3']): ClusterSnapshot {
  return {
    takenAt: '2026-01-01T00:00:00.000Z',
    nodes: nodes.map((name) => ({ name, online: true, memoryTotal: 64 * GiB, memoryUsed: 8 * GiB, cpus: 16 })),
    storages: nodes.flatMap((node) => [
      { storage: 'ceph', node, shared: true, active: true, content: ['images', 'rootdir'], total: 4096 * GiB, used: 0 },
      {
        storage: 'local-lvm',
        node,
        shared: false,
        active: true,
        content: ['images', 'rootdir'],
        total: 512 * GiB,
        used: 0,
      },
    ]),
    guests: guests.map(({ disks: _d, localResources: _l, notAllowedNodes: _n, hasSnapshots: _s, ...g }) => ({
      name: `guest${g.vmid}`,
      type: 'qemu',
      status: 'running',
      template: false,
      memory: 4 * GiB,
      vcpus: 2,
      tags: [],
      haManaged: false,
      ...g,
    })),
    haRules: [],
    unreadable: {},
    migration: Object.fromEntries(
      guests.map((g) => [
        g.vmid,
        {
          disks: g.disks ?? [shared(32)],
          localResources: g.localResources ?? [],
          notAllowedNodes: g.notAllowedNodes ?? {},
          hasSnapshots: false,
        },
      ]),
    ),
  };
}

/** pve1 holds the most memory, pve2 some, pve3 one small guest. */
const homelab = () =>
  cluster([
    { vmid: 101, node: 'pve1', memory: 16 * GiB },
    { vmid: 102, node: 'pve1', memory: 8 * GiB },
    { vmid: 201, node: 'pve2', memory: 8 * GiB },
    { vmid: 301, node: 'pve3', memory: 2 * GiB },
  ]);

function refusal(fn: () => unknown): RolloutRefusedError {
  try {
    fn();
  } catch (err) {
    if (err instanceof RolloutRefusedError) return err;
    throw err;
  }
  throw new Error('expected the rollout to be refused');
}

describe('planRollout', () => {
  it('maintains every node, one at a time, cheapest to empty first, each with its own evacuation', () => {
    const rollout = planRollout(homelab(), request(), policy);

    expect(rollout.turns.map((t) => t.node)).toEqual(['pve3', 'pve2', 'pve1']);
    expect(rollout.batches).toEqual([['pve3'], ['pve2'], ['pve1']]);
    expect(rollout.minNodesUp).toBe(2);
    expect(rollout.turns.map((t) => [t.node, t.evacuation.moves.map((m) => m.vmid)])).toEqual([
      ['pve3', [301]],
      ['pve2', [201]],
      ['pve1', [101, 102]],
    ]);
    for (const t of rollout.turns) expect(t.evacuation.moves.every((m) => m.target !== t.node)).toBe(true);
  });

  it('keeps the given order and nodes when asked', () => {
    const rollout = planRollout(homelab(), request({ nodes: ['pve1', 'pve3'], keepOrder: true }), policy);
    expect(rollout.turns.map((t) => t.node)).toEqual(['pve1', 'pve3']);
  });

  it('groups nodes for parallel maintenance, each group emptied onto the nodes outside it', () => {
    const snapshot = cluster(
      [
        { vmid: 101, node: 'pve1' },
        { vmid: 201, node: 'pve2' },
        { vmid: 301, node: 'pve3' },
        { vmid: 401, node: 'pve4' },
        { vmid: 501, node: 'pve5' },
      ],
      ['pve1', 'pve2', 'pve3', 'pve4', 'pve5'],
    );
    const rollout = planRollout(snapshot, request({ parallelNodes: 2, keepOrder: true }), policy);

    expect(rollout.batches).toEqual([['pve1', 'pve2'], ['pve3', 'pve4'], ['pve5']]);
    const [a, b] = rollout.turns;
    expect(a!.evacuation.moves[0]!.target).not.toBe('pve2');
    expect(b!.evacuation.moves[0]!.target).not.toBe('pve1');
    expect(b!.evacuation.excludedTargets).toContainEqual({ node: 'pve1', reason: 'in denyTargets' });
  });

  it('refuses a group size that would break quorum or minNodesUp', () => {
    expect(refusal(() => planRollout(homelab(), request({ parallelNodes: 2 }), policy)).problems).toEqual([
      '2 nodes at a time would leave 1 of 3 up, but 2 must stay up (quorum)',
    ]);
    expect(refusal(() => planRollout(homelab(), request({ minNodesUp: 3 }), policy)).problems).toEqual([
      '1 node at a time would leave 2 of 3 up, but 3 must stay up (minNodesUp; quorum needs 2)',
    ]);
    // Asking for fewer than quorum changes nothing: quorum is not optional.
    expect(planRollout(homelab(), request({ minNodesUp: 1 }), policy).minNodesUp).toBe(2);
  });

  it('refuses, with every reason at once, a node that cannot be emptied and a node that is offline', () => {
    const snapshot = cluster([
      { vmid: 101, node: 'pve1', localResources: ['hostpci0'] },
      { vmid: 102, node: 'pve1', status: 'stopped', localResources: ['usb0'] },
      { vmid: 201, node: 'pve2', memory: 100 * GiB },
    ]);
    expect(refusal(() => planRollout(snapshot, request(), policy)).problems).toEqual([
      'pve1 cannot be emptied: VM 101 (guest101) running — uses host-bound device hostpci0, which pins it to pve1; ' +
        'to unblock: remove hostpci0 from its config; or stop it before the maintenance (a stopped guest may stay on its node)',
      expect.stringMatching(
        /^pve2 cannot be emptied: VM 201 \(guest201\) running — no target can take it — .*; to unblock: room for 100\.0 GiB on a target: .*lower policy\.memory_headroom \(now 20%\)/,
      ),
    ]);

    const down = homelab();
    down.nodes[1]!.online = false;
    expect(refusal(() => planRollout(down, request(), policy)).problems).toEqual([
      'pve2 is offline: every node must be online before a rolling maintenance starts',
    ]);
  });

  it('names the field for nodes that are not in the cluster, or listed twice', () => {
    expect(refusal(() => planRollout(homelab(), request({ nodes: ['pve9'] }), policy))).toMatchObject({
      field: 'nodes',
      problems: ['pve9 is not a node of this cluster (pve1, pve2, pve3)'],
    });
    expect(refusal(() => planRollout(homelab(), request({ nodes: ['pve1', 'pve1'] }), policy))).toMatchObject({
      field: 'nodes',
      problems: ['pve1 listed more than once'],
    });
  });

  it('refuses a single-node cluster', () => {
    expect(refusal(() => planRollout(cluster([], ['solo']), request(), policy)).problems[0]).toMatch(
      /single-node cluster/,
    );
  });
});

describe('afterEvacuation', () => {
  it('puts the moved guests on their targets with their memory', () => {
    const snapshot = homelab();
    const { turns } = planRollout(snapshot, request({ nodes: ['pve1'] }), policy);
    const after = afterEvacuation(snapshot, turns[0]!.evacuation);
    const targets = turns[0]!.evacuation.moves.map((m) => m.target);
    expect(after.guests.filter((g) => g.node === 'pve1')).toEqual([]);
    const usedBefore = (node: string) => snapshot.nodes.find((n) => n.name === node)!.memoryUsed;
    const usedAfter = (node: string) => after.nodes.find((n) => n.name === node)!.memoryUsed;
    const arriving = (node: string) =>
      turns[0]!.evacuation.moves.filter((m) => m.target === node).reduce((sum, m) => sum + m.memoryBytes, 0);
    for (const node of new Set(targets)) expect(usedAfter(node) - usedBefore(node)).toBe(arriving(node));
  });
});

describe('describeRollout', () => {
  it('states the order, the work, the risk and a step per node and phase', () => {
    const rollout = planRollout(homelab(), request(), policy);
    const plan: MaintenancePlan = {
      environment: 'home',
      clusterNodes: rollout.clusterNodes,
      turns: rollout.turns,
      batches: rollout.batches,
      versions: { pve1: '9.1.2', pve2: '9.1.2', pve3: '9.1.2' },
      approveEachNode: true,
      pauseBetweenNodesMs: 0,
      settings: {
        upgrade: true,
        upgradeCommand: DEFAULT_UPGRADE_COMMAND,
        reboot: 'if-required',
        returnGuests: true,
        haMaintenance: false,
        drain,
        memoryHeadroom: 0.2,
        minNodesUp: 2,
        upgradeTimeoutMs: 3_600_000,
        bootTimeoutMs: 900_000,
        maxNodeMs: 7_200_000,
        stopOnFailure: true,
      },
    };
    const described = describeRollout(plan);

    expect(described.risk).toBe('high');
    expect(described.summary).toMatch(
      /^Rolling maintenance of home: pve3, then pve2, then pve1 — upgrade, reboot if required; 4 guests move out and back; about /,
    );
    expect(described.nodes).toEqual(['pve3', 'pve2', 'pve1']);
    expect(described.vmids).toEqual([101, 102, 201, 301]);
    expect(described.steps.filter((s) => s.node === 'pve3').map((s) => s.id)).toEqual([
      'pve3/approval',
      'pve3/check',
      'pve3/evacuate',
      'pve3/upgrade',
      'pve3/reboot',
      'pve3/return',
      'pve3/verify',
    ]);
    expect(described.steps.find((s) => s.id === 'pve3/upgrade')?.params).toEqual({ command: DEFAULT_UPGRADE_COMMAND });
    expect(described.reasons).toContain('one node at a time; at least 2 of 3 nodes stay up');
  });
});

describe('planRollout, overlapping a node with the previous one’s return', () => {
  const overlapped = (snapshot: ClusterSnapshot, over: Partial<RolloutRequest> = {}) =>
    planRollout(snapshot, request({ overlap: true, keepOrder: true, ...over }), policy);
  const turn = (rollout: ReturnType<typeof planRollout>, node: string) => rollout.turns.find((t) => t.node === node)!;

  it('empties the next node while the guests of the previous one return, and leaves them to their return: no guest moved twice', () => {
    // pve1's guest can only go to pve2; pve2 is emptied while it returns.
    const snapshot = cluster([
      { vmid: 101, node: 'pve1', notAllowedNodes: { pve3: 'storage' } },
      { vmid: 201, node: 'pve2' },
      { vmid: 301, node: 'pve3' },
    ]);
    const rollout = overlapped(snapshot, { nodes: ['pve1', 'pve2', 'pve3'] });

    expect(turn(rollout, 'pve1').evacuation.moves.map((m) => [m.vmid, m.target])).toEqual([[101, 'pve2']]);
    expect(turn(rollout, 'pve2').overlaps).toEqual(['pve1']);
    const pve2 = turn(rollout, 'pve2').evacuation;
    expect(pve2.moves.map((m) => m.vmid)).toEqual([201]);
    expect(pve2.leftBehind).toEqual([]);
    expect(turn(rollout, 'pve1').overlaps).toBeUndefined();
  });

  it('counts the returning guests both where they are and at home, so headroom holds whenever they move', () => {
    // 64 GiB nodes, 20% headroom: 51.2 GiB each. pve3's 40 GiB guest returning leaves pve3 no room
    // for pve2's 20 GiB guest, and pve1 (holding it until it leaves) none either: pve2 waits.
    const snapshot = cluster([
      { vmid: 301, node: 'pve3', memory: 40 * GiB },
      { vmid: 201, node: 'pve2', memory: 20 * GiB },
    ]);
    const rollout = overlapped(snapshot, { nodes: ['pve3', 'pve2'] });

    expect(turn(rollout, 'pve3').evacuation.moves[0]!.target).toBe('pve1');
    expect(turn(rollout, 'pve2').overlaps).toBeUndefined();
    expect(turn(rollout, 'pve2').evacuation.moves.map((m) => m.vmid)).toEqual([201]);
  });

  it.each([
    ['an anti-affinity tag', { tags: ['anti-affinity-db'] }, []],
    [
      'a negative HA resource-affinity rule',
      { haManaged: true },
      [
        {
          rule: 'apart',
          type: 'resource-affinity' as const,
          resources: ['vm:101', 'vm:201'],
          affinity: 'negative' as const,
          disabled: false,
        },
      ],
    ],
  ])(
    'keeps guests apart by %s on neither the returning guest’s current node nor its home',
    (_what, keepApart, haRules) => {
      const snapshot = {
        ...cluster(
          [
            { vmid: 101, node: 'pve1', ...keepApart, notAllowedNodes: { pve2: 'storage', pve4: 'storage' } },
            { vmid: 201, node: 'pve2', ...keepApart },
          ],
          ['pve1', 'pve2', 'pve3', 'pve4'],
        ),
        haRules,
      };
      const rollout = overlapped(snapshot, { nodes: ['pve1', 'pve2'] });

      expect(turn(rollout, 'pve1').evacuation.moves[0]!.target).toBe('pve3');
      expect(turn(rollout, 'pve2').overlaps).toEqual(['pve1']);
      expect(turn(rollout, 'pve2').evacuation.moves[0]!.target).toBe('pve4');
    },
  );

  it('does not overlap when asked not to', () => {
    const rollout = planRollout(homelab(), request({ overlap: false }), policy);
    expect(rollout.turns.every((t) => t.overlaps === undefined)).toBe(true);
  });
});
