/**
 * One guest's config change, as the reconcile applies it (activity applyGuestConfig) against
 * the simulated cluster: safe to repeat, never over someone else's edit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReconcileActivities } from '../../activities/reconcile.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';

let env: SimulatedEnvironment;
let apply: ReturnType<typeof createReconcileActivities>['applyGuestConfig'];

beforeAll(async () => {
  env = await startSimulatedEnvironment({ speed: 500 });
  apply = createReconcileActivities(env.deps).applyGuestConfig;
});
afterAll(() => env?.stop());

const guest = (vmid: number) => env.sim.state.guests.get(vmid)!;
const digest = (vmid: number) => guest(vmid).digest;

describe('a config change', () => {
  it('is sent once: repeated after PVE applied it (a lost answer), it finds its values in place', async () => {
    const planned = digest(1012);
    const params = { memory: '6144', net0: 'virtio,bridge=vmbr1', scsi1: 'local-lvm:4,iothread=1', digest: planned };
    // The running VM hot-plugs the NIC and the disk; its memory waits for the next start, and the outcome says so.
    expect(await apply({ environment: 'home', vmid: 1012, name: 'web02', params })).toMatchObject({
      kind: 'applied',
      detail: expect.stringMatching(/; memory needs a restart of VM 1012 to take effect \(PVE keeps it pending\)$/),
    });
    expect(guest(1012).pending.get('memory')).toBe('6144');
    // PVE gives the NIC a MAC address; the repeated attempt still sees its change made, and allocates no second disk.
    expect(guest(1012).config).toMatchObject({
      net0: expect.stringMatching(/^virtio=BC:24:11(:[0-9A-F]{2}){3},bridge=vmbr1$/),
    });
    expect(guest(1012).config['scsi1']).toMatch(/^local-lvm:vm-1012-disk-\d+,iothread=1,size=4G$/);
    const disks = env.sim.state.pool('local-lvm', 'pve02')!.volumes.size;
    expect(await apply({ environment: 'home', vmid: 1012, name: 'web02', params })).toMatchObject({
      kind: 'already-done',
    });
    expect(env.sim.state.pool('local-lvm', 'pve02')!.volumes.size).toBe(disks);
  });

  it('goes ahead after this operation’s own safety snapshot, which changes the digest but not the keys it sets', async () => {
    const planned = digest(1018);
    guest(1018).update((c) => (c['description'] = 'a snapshot (or any unrelated edit) moves the digest'));
    const outcome = await apply({
      environment: 'home',
      vmid: 1018,
      name: 'grafana',
      params: { memory: '4096', digest: planned },
      before: { memory: '2048' },
    });
    expect(outcome.kind).toBe('applied');
    expect(guest(1018).configWithPending['memory']).toBe('4096');
  });

  it('refuses, changing nothing, when a key it sets was edited since the plan — or when it cannot tell', async () => {
    const planned = digest(1026);
    guest(1026).update((c) => (c['memory'] = '3072'));
    await expect(
      apply({
        environment: 'home',
        vmid: 1026,
        name: 'wiki',
        params: { memory: '4096', digest: planned },
        before: { memory: '2048' },
      }),
    ).rejects.toMatchObject({
      type: 'ConcurrentChange',
      message:
        "VM 1026 'wiki' changed since the plan was made (memory is 3072, was 2048); nothing was changed: plan again",
    });
    await expect(
      apply({ environment: 'home', vmid: 1026, name: 'wiki', params: { cores: 4, digest: planned } }),
    ).rejects.toMatchObject({ type: 'ConcurrentChange' });
    expect(guest(1026).config).toMatchObject({ memory: '3072', cores: '2' });
  });

  it('checks the guest’s vmid and name first', async () => {
    await expect(
      apply({ environment: 'home', vmid: 1026, name: 'not-wiki', params: { cores: 4 } }),
    ).rejects.toMatchObject({ type: 'VmIdentityMismatch' });
  });
});
