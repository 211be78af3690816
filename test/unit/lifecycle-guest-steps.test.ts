import { describe, expect, it } from 'vitest';
import {
  planGuestSteps,
  settledState,
  StepRefusal,
  type GuestActionRequest,
  type GuestPreflight,
} from '../../lib/lifecycle/guest-steps.js';

const GiB = 1024 ** 3;
const now = new Date('2026-01-17T10:20:30Z');
const policy = { snapshotBeforeChange: true, now };

function vm(over: Partial<GuestPreflight> = {}): GuestPreflight {
  return {
    type: 'qemu',
    node: 'pve01',
    status: 'running',
    uptimeSeconds: 3600,
    tags: ['web'],
    snapshots: ['before-upgrade'],
    protection: false,
    cores: 2,
    memoryMb: 4096,
    disks: { scsi0: 32 * GiB },
    ...over,
  };
}

function request(action: GuestActionRequest['action'], over: Partial<GuestActionRequest> = {}): GuestActionRequest {
  return { action, vmid: 1004, name: 'web01', shutdownTimeoutSeconds: 120, forceStopAfterTimeout: false, ...over };
}

const actions = (steps: { action: string }[]) => steps.map((s) => s.action);

describe('planning one action on one guest', () => {
  it('takes a snapshot named for the operation before a rollback, when policy asks', () => {
    const steps = planGuestSteps(request('rollback', { snapshot: 'before-upgrade' }), vm(), policy);
    expect(actions(steps)).toEqual(['snapshot', 'rollback']);
    expect(steps[0]!.params).toEqual({ snapname: 'pm_pre_rollback_20260117102030' });
    expect(
      actions(
        planGuestSteps(request('rollback', { snapshot: 'before-upgrade' }), vm(), {
          ...policy,
          snapshotBeforeChange: false,
        }),
      ),
    ).toEqual(['rollback']);
  });

  it('refuses a rollback to a snapshot the guest does not have, naming the ones it has', () => {
    expect(() => planGuestSteps(request('rollback', { snapshot: 'nope' }), vm(), policy)).toThrow(
      "snapshot: VM 1004 has no snapshot 'nope' (has: before-upgrade)",
    );
  });

  it('powers a running guest off before destroying it, and refuses a protected one', () => {
    expect(actions(planGuestSteps(request('delete'), vm(), policy))).toEqual(['stop', 'destroy']);
    expect(actions(planGuestSteps(request('delete'), vm({ status: 'stopped' }), policy))).toEqual(['destroy']);
    expect(() => planGuestSteps(request('delete'), vm({ protection: true }), policy)).toThrow(/protection enabled/);
  });

  it('says how a shutdown ends when the guest does not stop in time', () => {
    const [graceful] = planGuestSteps(request('shutdown'), vm(), policy);
    expect(graceful!.description).toMatch(/leave it running if it does not stop/);
    const [forced] = planGuestSteps(request('shutdown', { forceStopAfterTimeout: true }), vm(), policy);
    expect(forced!.params).toEqual({ timeout: 120, forceStop: true });
    expect(forced!.description).toMatch(/then power it off/);
  });

  it('migrates VMs live, containers by restart, stopped guests offline', () => {
    const mode = (g: GuestPreflight) =>
      planGuestSteps(request('migrate', { target: 'pve02' }), g, policy)[0]!.params!['mode'];
    expect(mode(vm())).toBe('online');
    expect(mode(vm({ type: 'lxc' }))).toBe('restart');
    expect(mode(vm({ status: 'stopped' }))).toBe('offline');
    expect(() => planGuestSteps(request('migrate', { target: 'pve01' }), vm(), policy)).toThrow(
      'target: VM 1004 already runs on pve01',
    );
  });

  it('refuses to reboot a guest that is not running', () => {
    expect(() => planGuestSteps(request('reboot'), vm({ status: 'stopped' }), policy)).toThrow(StepRefusal);
  });

  it('resizes after a safety snapshot: config first, then grows the disk', () => {
    const steps = planGuestSteps(
      request('resize', { resize: { cores: 4, memoryMb: 8192, disk: { key: 'scsi0', sizeGb: 64 } } }),
      vm(),
      policy,
    );
    expect(actions(steps)).toEqual(['snapshot', 'config', 'resize-disk']);
    expect(steps[0]!.params).toEqual({ snapname: 'pm_pre_resize_20260117102030' });
    expect(steps[1]!.params).toEqual({ cores: 4, memory: 8192 });
    expect(steps[2]!.params).toEqual({ disk: 'scsi0', size: '64G' });
  });

  it('never shrinks a disk and refuses a resize that changes nothing', () => {
    expect(() =>
      planGuestSteps(request('resize', { resize: { disk: { key: 'scsi0', sizeGb: 16 } } }), vm(), policy),
    ).toThrow('disk.sizeGb: scsi0 is 32 GiB; disks only grow (asked for 16 GiB)');
    expect(() =>
      planGuestSteps(request('resize', { resize: { disk: { key: 'scsi1', sizeGb: 64 } } }), vm(), policy),
    ).toThrow("disk.key: VM 1004 has no disk 'scsi1' (has: scsi0)");
    expect(() => planGuestSteps(request('resize', { resize: { cores: 2, memoryMb: 4096 } }), vm(), policy)).toThrow(
      /already has/,
    );
  });
});

describe('where a step leaves the guest', () => {
  it('is checked for power and placement steps only', () => {
    expect(settledState({ action: 'start' })).toEqual({ status: 'running' });
    expect(settledState({ action: 'shutdown' })).toEqual({ status: 'stopped' });
    expect(settledState({ action: 'migrate', target: 'pve02' })).toEqual({ node: 'pve02' });
    expect(settledState({ action: 'snapshot' })).toBeUndefined();
  });
});
