import { describe, expect, it } from 'vitest';
import { planReturn, type ReturningGuest, type Whereabouts } from '../../lib/maintenance/returns.js';

const GiB = 1024 ** 3;
const drain = { maxParallel: 4, linkGbps: 10, containerShutdownTimeoutSeconds: 180 };

function guest(vmid: number, over: Partial<ReturningGuest> = {}): ReturningGuest {
  return {
    vmid,
    name: `guest${vmid}`,
    type: 'qemu',
    withLocalDisks: false,
    memoryBytes: 4 * GiB,
    localDiskBytes: 0,
    ...over,
  };
}

/** Guests spread over pve2 and pve3, running, as the cluster reports them. */
const spread = (vmid: number): Whereabouts => ({ node: vmid % 2 ? 'pve2' : 'pve3', running: true, haManaged: false });

describe('planning the return of a maintained node', () => {
  it('lets as many migrations arrive at the node as an evacuation starts, not a fixed two per target', () => {
    const guests = Array.from({ length: 12 }, (_, i) => guest(101 + i));
    const plan = planReturn('pve1', guests, spread, drain);
    expect(plan.limits.maxParallel).toBe(4);
    expect(plan.limits.maxParallelPerTarget).toBe(4);
    expect(plan.moves.every((m) => m.target === 'pve1')).toBe(true);
  });

  it('mixes sizes in every round of starts, as the evacuation planner does', () => {
    const sizes = [1, 1, 1, 1, 2, 2, 2, 2, 16, 16, 16, 16];
    const guests = sizes.map((size, i) => guest(101 + i, { memoryBytes: size * GiB }));
    const plan = planReturn('pve1', guests, spread, drain);
    const firstRound = plan.moves.slice(0, 4).map((m) => m.memoryBytes / GiB);
    expect(firstRound).toContain(16);
    expect(firstRound).toContain(1);
  });

  it('moves each guest from where it is now, in the state it is in now', () => {
    const plan = planReturn(
      'pve1',
      [
        guest(101, { withLocalDisks: true, localDiskBytes: 32 * GiB }),
        guest(102, { type: 'lxc', localDiskBytes: 8 * GiB }),
        guest(103),
      ],
      (vmid) =>
        ({
          101: { node: 'pve2', running: true, haManaged: true },
          102: { node: 'pve3', running: true, haManaged: false },
          103: { node: 'pve3', running: false, haManaged: false },
        })[vmid],
      drain,
    );
    const byVmid = Object.fromEntries(plan.moves.map((m) => [m.vmid, m]));
    expect(byVmid[101]).toMatchObject({
      source: 'pve2',
      mode: 'online',
      withLocalDisks: true,
      haManaged: true,
      transferBytes: 36 * GiB,
    });
    expect(byVmid[102]).toMatchObject({
      source: 'pve3',
      mode: 'restart',
      priorStatus: 'running',
      transferBytes: 8 * GiB,
    });
    expect(byVmid[103]).toMatchObject({ mode: 'offline', priorStatus: 'stopped', transferBytes: 0 });
  });

  it('names the guests already home and those that no longer exist, and moves neither', () => {
    const plan = planReturn(
      'pve1',
      [guest(101), guest(102), guest(103)],
      (vmid) =>
        vmid === 101 ? { node: 'pve1', running: true, haManaged: false } : vmid === 102 ? undefined : spread(vmid),
      drain,
    );
    expect(plan.home).toEqual([101]);
    expect(plan.gone).toEqual([{ vmid: 102, name: 'guest102', reason: 'it no longer exists' }]);
    expect(plan.moves.map((m) => m.vmid)).toEqual([103]);
  });
});
