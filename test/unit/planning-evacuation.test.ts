import { describe, expect, it } from 'vitest';
import { evacuationOutcome, haMaintenanceBlocker } from '../../lib/planning/evacuation-outcome.js';
import {
  describeEvacuation,
  EvacuationRequestError,
  planEvacuation,
  type EvacuationRequest,
} from '../../lib/planning/evacuation.js';
import type { ClusterSnapshot, GuestDisk, GuestState, HaRule, MigrationFacts } from '../../lib/planning/snapshot.js';

const GiB = 1024 ** 3;
const policy = { memory_headroom: 0.2, cpu_oversubscription: 4, memory_basis: 'configured' as const };

const request: EvacuationRequest = {
  node: 'pve1',
  maxParallel: 4,
  maxParallelPerTarget: 2,
  includeStopped: true,
  includeTemplates: false,
  localDisks: 'migrate',
  containers: 'leave',
  containerShutdownTimeoutSeconds: 180,
  onFailure: 'stop',
  haMaintenance: false,
  linkGbps: 10,
};

type GuestSpec = Partial<GuestState> & Partial<MigrationFacts> & { vmid: number };

function disk(storage: string, sizeGiB: number, over: Partial<GuestDisk> = {}): GuestDisk {
  return {
    key: 'scsi0',
    volid: `${storage}:vm-disk-${sizeGiB}`,
    storage,
    size: sizeGiB * GiB,
    shared: storage === 'ceph',
    cdrom: false,
    ...over,
  };
}

/** Three 64 GiB nodes with shared ceph and local-lvm each; guests on pve1 unless stated. */
function cluster(guests: GuestSpec[], over: Partial<ClusterSnapshot> = {}): ClusterSnapshot {
  const nodes = ['pve1', 'pve2', 'pve3'];
  return {
    takenAt: '2026-01-01T00:00:00.000Z',
    nodes: nodes.map((name) => ({ name, online: true, memoryTotal: 64 * GiB, memoryUsed: 16 * GiB, cpus: 16 })),
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
      node: 'pve1',
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
          disks: g.disks ?? [disk('ceph', 32)],
          localResources: g.localResources ?? [],
          notAllowedNodes: g.notAllowedNodes ?? {},
          hasSnapshots: g.hasSnapshots ?? false,
        },
      ]),
    ),
    ...over,
  };
}

describe('planEvacuation', () => {
  it('accounts for every guest on the node: moved, or left behind with a reason', () => {
    const snapshot = cluster([
      { vmid: 101 },
      { vmid: 102, status: 'stopped' },
      { vmid: 103, template: true, status: 'stopped' },
      { vmid: 104, localResources: ['hostpci0'] },
      {
        vmid: 105,
        disks: [disk('ceph', 8), disk('local', 1, { key: 'ide2', volid: 'local:iso/debian.iso', cdrom: true })],
      },
      { vmid: 106, type: 'lxc' },
      { vmid: 107, lock: 'backup' },
      { vmid: 200, node: 'pve2' },
    ]);
    const plan = planEvacuation(snapshot, request, policy);

    expect(plan.moves.map((m) => [m.vmid, m.mode])).toEqual([
      [101, 'online'],
      [102, 'offline'],
    ]);
    expect(plan.leftBehind.map((l) => [l.vmid, l.reason])).toEqual([
      [103, 'template, and includeTemplates is off'],
      [104, 'uses host-bound device hostpci0, which pins it to pve1'],
      [105, 'local ISO local:iso/debian.iso is attached (ide2); eject it or keep the ISO on shared storage'],
      [
        106,
        "running container: containers cannot live-migrate, and a restart migration (downtime) is not allowed (containers: 'leave')",
      ],
      [107, 'locked (backup); PVE refuses to migrate a locked guest'],
    ]);
  });

  it('leaves a guest whose facts could not be read, saying why', () => {
    const snapshot = cluster([{ vmid: 101 }, { vmid: 102 }]);
    delete snapshot.migration[102];
    snapshot.unreadable[102] = 'GET /nodes/pve1/qemu/102/config failed (403): token lacks VM.Audit on /vms/102';
    const plan = planEvacuation(snapshot, request, policy);
    expect(plan.moves.map((m) => m.vmid)).toEqual([101]);
    expect(plan.leftBehind[0]?.reason).toBe(
      'its config and migrate preconditions could not be read: GET /nodes/pve1/qemu/102/config failed (403): token lacks VM.Audit on /vms/102',
    );
  });

  it('restart-migrates running containers only when allowed, and moves templates and stopped guests when asked', () => {
    const snapshot = cluster([
      { vmid: 101, type: 'lxc' },
      { vmid: 102, template: true, status: 'stopped' },
      { vmid: 103, status: 'stopped' },
    ]);
    const plan = planEvacuation(snapshot, { ...request, containers: 'restart', includeTemplates: true }, policy);
    expect(plan.moves.map((m) => [m.vmid, m.mode, m.priorStatus]).sort()).toEqual([
      [101, 'restart', 'running'],
      [102, 'offline', 'stopped'],
      [103, 'offline', 'stopped'],
    ]);

    const noStopped = planEvacuation(snapshot, { ...request, includeStopped: false }, policy);
    expect(noStopped.moves).toEqual([]);
    expect(noStopped.leftBehind.find((l) => l.vmid === 103)?.reason).toBe('stopped, and includeStopped is off');
  });

  it('copies local disks along a live migration, or leaves the guest when the policy says so', () => {
    const snapshot = cluster([{ vmid: 101, disks: [disk('local-lvm', 40)] }]);
    const [move] = planEvacuation(snapshot, { ...request, targetStorage: 'local-lvm' }, policy).moves;
    expect(move).toMatchObject({
      mode: 'online',
      withLocalDisks: true,
      targetStorage: 'local-lvm',
      localDiskBytes: 40 * GiB,
    });
    expect(move?.transferBytes).toBe(44 * GiB);
    expect(move?.why).toMatch(/^running VM: live migration, copying its local disks; pve[23]: /);

    const left = planEvacuation(snapshot, { ...request, localDisks: 'leave' }, policy);
    expect(left.leftBehind[0]?.reason).toBe("has local disks (local-lvm:vm-disk-40), and localDisks is 'leave'");
  });

  it('leaves a running VM whose local disks have snapshots, which PVE cannot live-migrate', () => {
    const snapshot = cluster([
      { vmid: 101, disks: [disk('local-lvm', 40)], hasSnapshots: true },
      { vmid: 102, disks: [disk('ceph', 40)], hasSnapshots: true },
      { vmid: 103, disks: [disk('local-lvm', 40)], hasSnapshots: true, status: 'stopped' },
    ]);
    const plan = planEvacuation(snapshot, request, policy);
    expect(plan.moves.map((m) => m.vmid).sort()).toEqual([102, 103]);
    expect(plan.leftBehind).toEqual([
      expect.objectContaining({ vmid: 101, reason: expect.stringMatching(/^its local disks have snapshots/) }),
    ]);
  });

  it('keeps at least the configured share of memory free on every target', () => {
    // 20 guests of 8 GiB = 160 GiB onto two nodes that may each take 64*0.8-16 = 35.2 GiB more.
    const residents = [
      { vmid: 201, node: 'pve2', memory: 16 * GiB },
      { vmid: 202, node: 'pve3', memory: 16 * GiB },
    ];
    const guests = [...Array.from({ length: 20 }, (_, i) => ({ vmid: 101 + i, memory: 8 * GiB })), ...residents];
    const plan = planEvacuation(cluster(guests), request, policy);

    expect(plan.moves).toHaveLength(8);
    for (const t of plan.targets) expect(t.memoryAfter).toBeLessThanOrEqual(t.memoryLimit);
    expect(plan.leftBehind).toHaveLength(12);
    expect(plan.leftBehind[0]?.reason).toMatch(
      /^no target can take it — pve2: memory: 8.0 GiB more would use 88% of 64.0 GiB, above the 80% limit; pve3: memory/,
    );

    const roomier = planEvacuation(cluster(guests), request, { ...policy, memory_headroom: 0.1 });
    expect(roomier.moves.length).toBeGreaterThan(8);
  });

  it('names the first 100 targets that refuse a guest no target can take, and counts the rest', () => {
    // 150 targets of 64 GiB, none with room for a 128 GiB guest.
    const names = ['pve1', ...Array.from({ length: 150 }, (_, i) => `t${String(i + 1).padStart(3, '0')}`)];
    const small = cluster([{ vmid: 101, memory: 128 * GiB }]);
    const large = cluster([{ vmid: 101, memory: 128 * GiB }], {
      nodes: names.map((name) => ({ ...small.nodes[0]!, name })),
      storages: names.flatMap((node) =>
        small.storages.filter((st) => st.node === 'pve1').map((st) => ({ ...st, node })),
      ),
    });

    const reason = planEvacuation(large, request, policy).leftBehind[0]!.reason;

    expect(reason).toMatch(/^no target can take it — t001: memory: .*; t100: memory: [^;]*; and 50 more targets$/);
    expect(reason).not.toContain('t101');
    expect(planEvacuation(small, request, policy).leftBehind[0]!.reason).not.toContain('more target');
  });

  it('respects target allow and deny lists, and says which nodes receive nothing', () => {
    const snapshot = cluster([{ vmid: 101 }, { vmid: 102 }]);
    const allow = planEvacuation(snapshot, { ...request, allowTargets: ['pve3'] }, policy);
    expect(allow.moves.map((m) => m.target)).toEqual(['pve3', 'pve3']);
    expect(allow.excludedTargets).toEqual([{ node: 'pve2', reason: 'not in allowTargets' }]);

    const deny = planEvacuation(snapshot, { ...request, denyTargets: ['pve2', 'pve3'] }, policy);
    expect(deny.moves).toEqual([]);
    expect(deny.leftBehind[0]?.reason).toBe('no target can take it — no target nodes to choose from');
  });

  it('skips offline nodes as targets', () => {
    const snapshot = cluster([{ vmid: 101 }]);
    snapshot.nodes[1]!.online = false;
    expect(planEvacuation(snapshot, request, policy).moves[0]?.target).toBe('pve3');
  });

  it('honours PVE 9 HA rules: strict node affinity and negative resource affinity', () => {
    const rules: HaRule[] = [
      {
        rule: 'pin',
        type: 'node-affinity',
        resources: ['vm:101'],
        nodes: [{ node: 'pve3', priority: 1 }],
        strict: true,
        disabled: false,
      },
      {
        rule: 'apart',
        type: 'resource-affinity',
        resources: ['vm:102', 'vm:300'],
        affinity: 'negative',
        disabled: false,
      },
      {
        rule: 'off',
        type: 'node-affinity',
        resources: ['vm:103'],
        nodes: [{ node: 'pve9', priority: 1 }],
        strict: true,
        disabled: true,
      },
    ];
    const snapshot = cluster(
      [
        { vmid: 101, haManaged: true },
        { vmid: 102, haManaged: true },
        { vmid: 103 },
        { vmid: 300, node: 'pve2', haManaged: true },
      ],
      { haRules: rules },
    );
    const plan = planEvacuation(snapshot, request, policy);
    const targetOf = (vmid: number) => plan.moves.find((m) => m.vmid === vmid)?.target;
    expect(targetOf(101)).toBe('pve3');
    expect(targetOf(102)).toBe('pve3');
    expect(targetOf(103)).toBeDefined();
    expect(plan.moves.find((m) => m.vmid === 101)?.haManaged).toBe(true);
  });

  it('keeps tag-based affinity groups together and anti-affinity groups apart', () => {
    const snapshot = cluster([
      { vmid: 101, tags: ['affinity-shop'] },
      { vmid: 102, tags: ['affinity-shop'] },
      { vmid: 103, tags: ['anti-affinity-dns'] },
      { vmid: 104, tags: ['anti-affinity-dns'] },
    ]);
    const plan = planEvacuation(snapshot, request, policy);
    const targetOf = (vmid: number) => plan.moves.find((m) => m.vmid === vmid)?.target;
    expect(targetOf(101)).toBe(targetOf(102));
    expect(targetOf(103)).not.toBe(targetOf(104));
  });

  it("passes on PVE's own refusals of a target", () => {
    const snapshot = cluster([
      {
        vmid: 101,
        notAllowedNodes: { pve2: "storage 'nfs' is not available", pve3: "storage 'nfs' is not available" },
      },
    ]);
    const plan = planEvacuation(snapshot, request, policy);
    expect(plan.leftBehind[0]?.reason).toBe(
      "no target can take it — pve2: storage 'nfs' is not available; pve3: storage 'nfs' is not available",
    );
  });

  it('mixes large and small migrations in every round of starts, so no tail of small ones idles the link', () => {
    const sizes = [8, 7, 6, 5, 4, 3, 2, 1];
    const snapshot = cluster(sizes.map((gib, i) => ({ vmid: 101 + i, memory: gib * GiB })));
    const plan = planEvacuation(snapshot, request, policy);
    // Four at a time (2 targets x 2 each): two rounds, each taking one guest from every size quartile.
    expect(plan.moves.map((m) => m.memoryBytes / GiB)).toEqual([8, 6, 4, 2, 7, 5, 3, 1]);
  });

  it('estimates each migration from its transfer at the assumed link speed', () => {
    const snapshot = cluster([
      { vmid: 101, memory: 2 * GiB },
      { vmid: 102, memory: 16 * GiB },
      { vmid: 103, memory: 2 * GiB, disks: [disk('local-lvm', 20)] },
    ]);
    const plan = planEvacuation(snapshot, request, policy);
    expect(plan.moves.map((m) => m.vmid)).toEqual([103, 102, 101]);
    // 16 GiB at 10 Gbit/s plus 4 s of setup.
    expect(plan.moves[1]?.estimatedMs).toBe(Math.round((4 + (16 * GiB) / 1.25e9) * 1000));
    expect(plan.totalTransferBytes).toBe(40 * GiB);
  });

  it('is the same plan for the same snapshot', () => {
    const guests = Array.from({ length: 40 }, (_, i) => ({
      vmid: 100 + i,
      memory: ((i % 6) + 1) * GiB,
      status: i % 5 === 0 ? ('stopped' as const) : ('running' as const),
    }));
    expect(planEvacuation(cluster(guests), request, policy)).toEqual(planEvacuation(cluster(guests), request, policy));
  });

  it('refuses a request naming nodes the cluster does not have, naming the field', () => {
    const snapshot = cluster([]);
    expect(() => planEvacuation(snapshot, { ...request, node: 'pve9' }, policy)).toThrow(
      new EvacuationRequestError('node', "'pve9' is not a node of this cluster (pve1, pve2, pve3)"),
    );
    expect(() => planEvacuation(snapshot, { ...request, denyTargets: ['nope'] }, policy)).toThrow(
      /^denyTargets: 'nope'/,
    );
    snapshot.nodes[0]!.online = false;
    expect(() => planEvacuation(snapshot, request, policy)).toThrow(/^node: 'pve1' is offline/);
  });
});

describe('memory that is really committed', () => {
  // Three 64 GiB nodes whose guests use far less than they are configured with: the nodes
  // report 20-30 GiB in use, but their running guests may claim 32, 60 and 40 GiB.
  const drain = () =>
    cluster(
      [
        ...Array.from({ length: 8 }, (_, i) => ({ vmid: 101 + i, memory: 4 * GiB })),
        ...Array.from({ length: 5 }, (_, i) => ({ vmid: 201 + i, node: 'pve2', memory: 12 * GiB })),
        ...Array.from({ length: 5 }, (_, i) => ({ vmid: 301 + i, node: 'pve3', memory: 8 * GiB })),
        { vmid: 399, node: 'pve3', memory: 32 * GiB, status: 'stopped' as const },
      ],
      {
        nodes: [
          { name: 'pve1', online: true, memoryTotal: 64 * GiB, memoryUsed: 20 * GiB, cpus: 16 },
          { name: 'pve2', online: true, memoryTotal: 64 * GiB, memoryUsed: 30 * GiB, cpus: 16 },
          { name: 'pve3', online: true, memoryTotal: 64 * GiB, memoryUsed: 22 * GiB, cpus: 16 },
        ],
      },
    );
  /** Configured memory of the running guests on a node once the plan has run, as PVE's static CRS counts it. */
  const committedAfter = (snapshot: ClusterSnapshot, plan: ReturnType<typeof planEvacuation>, node: string) => {
    const movedTo = new Map(plan.moves.map((m) => [m.vmid, m.target]));
    return snapshot.guests
      .filter((g) => g.status === 'running' && (movedTo.get(g.vmid) ?? g.node) === node)
      .reduce((sum, g) => sum + g.memory, 0);
  };

  it('counts what a target holds by the configured memory of its running guests, as it counts arrivals', () => {
    const snapshot = drain();
    const plan = planEvacuation(snapshot, request, policy);

    expect(committedAfter(snapshot, plan, 'pve3')).toBeLessThanOrEqual(0.8 * 64 * GiB);
    expect(committedAfter(snapshot, plan, 'pve2')).toBe(60 * GiB);
    expect(plan.moves.map((m) => m.target)).toEqual(['pve3', 'pve3']);
    expect(plan.leftBehind).toHaveLength(6);
  });

  it('sends nothing to a target already above the limit, and names it in the warnings', () => {
    const plan = planEvacuation(drain(), { ...request, includeStopped: true }, policy);
    const described = describeEvacuation(plan);

    expect(plan.moves.some((m) => m.target === 'pve2')).toBe(false);
    expect(described.warnings).toContain(
      'pve2 receives nothing: already above the memory limit: configured memory of its running guests is 60.0 GiB, 94% of 64.0 GiB (limit 80%)',
    );
  });

  it('shows both figures per target: configured-committed and reported used', () => {
    const pve3 = planEvacuation(drain(), request, policy).targets.find((t) => t.node === 'pve3')!;
    expect(pve3).toMatchObject({
      memoryBasis: 'configured',
      memoryCommittedBefore: 40 * GiB,
      memoryCommittedAfter: 48 * GiB,
      memoryUsedBefore: 22 * GiB,
      memoryUsedAfter: 30 * GiB,
      memoryLimit: Math.floor(0.8 * 64 * GiB),
    });
  });

  it("with memory_basis 'used', counts what targets report in use instead (overcommitting configured memory)", () => {
    const snapshot = drain();
    const plan = planEvacuation(snapshot, request, { ...policy, memory_basis: 'used' });
    expect(plan.moves).toHaveLength(8);
    expect(committedAfter(snapshot, plan, 'pve2')).toBeGreaterThan(64 * GiB);
  });
});

describe('evacuationOutcome', () => {
  const verified = { ok: true, unexpectedOnSource: [] };
  const migrated = (plan: ReturnType<typeof planEvacuation>) =>
    plan.moves.map((m) => ({ vmid: m.vmid, name: m.name, state: 'migrated' }));

  it('is incomplete, naming each guest and why, when running guests the request covers stay (no target has room)', () => {
    // Twelve 8 GiB guests; the two targets have room for two each.
    const residents = [
      { vmid: 201, node: 'pve2', memory: 32 * GiB },
      { vmid: 202, node: 'pve3', memory: 32 * GiB },
    ];
    const plan = planEvacuation(
      cluster([...Array.from({ length: 12 }, (_, i) => ({ vmid: 101 + i, memory: 8 * GiB })), ...residents]),
      request,
      policy,
    );
    const { outcome, stayed } = evacuationOutcome(plan, migrated(plan), verified);

    expect(plan.moves).toHaveLength(4);
    expect(outcome).toBe('incomplete');
    expect(stayed).toHaveLength(8);
    expect(stayed[0]!.reason).toMatch(
      /^no target can take it — pve2: memory: .*; to move it: room for 8\.0 GiB on a target/,
    );
  });

  it('is evacuated when only what the request itself leaves stays (a stopped guest with includeStopped off)', () => {
    const plan = planEvacuation(
      cluster([{ vmid: 101 }, { vmid: 102, status: 'stopped' }]),
      { ...request, includeStopped: false },
      policy,
    );
    expect(evacuationOutcome(plan, migrated(plan), verified)).toEqual({ outcome: 'evacuated', stayed: [] });
  });

  it('is incomplete when a migration failed or never started, or a guest is still on the node', () => {
    const plan = planEvacuation(cluster([{ vmid: 101 }, { vmid: 102 }, { vmid: 103 }]), request, policy);
    const outcomes = [
      { vmid: 101, name: 'guest101', state: 'failed', error: 'migration aborted' },
      { vmid: 102, name: 'guest102', state: 'not-started', error: 'VM 101 failed' },
      { vmid: 103, name: 'guest103', state: 'migrated' },
    ];
    const verification = {
      ok: false,
      unexpectedOnSource: [
        { vmid: 101, name: 'guest101' },
        { vmid: 104, name: 'newcomer' },
      ],
    };
    expect(evacuationOutcome(plan, outcomes, verification)).toEqual({
      outcome: 'incomplete',
      stayed: [
        { vmid: 101, name: 'guest101', reason: 'its migration failed: migration aborted' },
        { vmid: 102, name: 'guest102', reason: 'not started: VM 101 failed' },
        { vmid: 104, name: 'newcomer', reason: 'still on pve1 after its migrations' },
      ],
    });
  });

  it('says why HA maintenance is skipped: which guests stay, or that the node is not verified empty', () => {
    const plan = planEvacuation(cluster([{ vmid: 101 }, { vmid: 102, localResources: ['hostpci0'] }]), request, policy);
    const { stayed } = evacuationOutcome(plan, migrated(plan), verified);
    expect(haMaintenanceBlocker(plan, verified, stayed)).toBe(
      'pve1 is not empty: 1 guest stays (102 (guest102)), and HA maintenance would fence or move them',
    );

    const empty = planEvacuation(cluster([{ vmid: 101 }]), request, policy);
    expect(haMaintenanceBlocker(empty, verified, [])).toBeUndefined();
    expect(haMaintenanceBlocker(empty, { ok: false }, [])).toBe(
      'the verification of pve1 failed, so it is not known to be empty',
    );
  });
});

describe('describeEvacuation', () => {
  it('is a high-risk plan with one step per move, a verification step, and every guest that stays as a warning', () => {
    const snapshot = cluster([
      { vmid: 101, name: 'web' },
      { vmid: 102, localResources: ['usb0'] },
    ]);
    const described = describeEvacuation(planEvacuation(snapshot, { ...request, haMaintenance: true }, policy));

    expect(described.risk).toBe('high');
    expect(described.summary).toMatch(/^Evacuate pve1: move 1 guest to pve[23] \(1 live\); 1 stay; about \d+ s$/);
    expect(described.steps.map((s) => s.id)).toEqual(['migrate-101', 'verify', 'ha-maintenance']);
    expect(described.steps[0]).toMatchObject({ action: 'migrate-online', vmid: 101, name: 'web', node: 'pve1' });
    expect(described.warnings).toEqual([
      "1 guest the request covers cannot move, so pve1 will not be empty and the outcome will be 'incomplete'",
      'VM 102 (guest102) stays on pve1: uses host-bound device usb0, which pins it to pve1 (to move it: remove usb0 from its config)',
    ]);
    expect(described.vmids).toEqual([101]);
  });
});
