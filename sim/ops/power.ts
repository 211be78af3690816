/**
 * Start, stop, shutdown and reboot of VMs and containers, with PVE's quirks: a start of a
 * running VM is a task that fails, a stop of a stopped VM is a task that succeeds, reboot of
 * a stopped VM is refused at once, HA-managed guests get queued HA requests.
 */
import { HA_MANAGER, type Caller, type Cluster } from '../cluster.js';
import { unitHash, type Guest } from '../state.js';
import { fail } from '../errors.js';
import type { TaskContext, TaskRecord } from '../tasks.js';
import { guestTask, isHaManaged, label, withGuestFile } from './common.js';
import { requestHa } from './ha.js';

export interface PowerOptions {
  skiplock?: boolean;
}

function requireRunningContainer(guest: Guest): void {
  if (guest.type === 'lxc' && guest.status !== 'running') throw fail(`CT ${guest.vmid} not running`);
}

/** Brings a guest up inside a task: lock file, lock property, template, pending changes, memory, ISO, boot. */
export async function bootGuest(
  cluster: Cluster,
  guest: Guest,
  ctx: TaskContext,
  opts: PowerOptions = {},
): Promise<void> {
  await withGuestFile(
    cluster,
    guest,
    async () => {
      if (guest.template) throw new Error("you can't start a vm if it's a template");
      if (guest.status === 'running') throw new Error(`${label(guest)} already running`);
      guest.applyPending();
      for (const drive of guest.drives) {
        if (drive.unused) continue;
        if (!cluster.state.volume(drive.volid, guest.node)) throw new Error(`volume '${drive.volid}' does not exist`);
      }
      const needed = Math.round(guest.memoryBytes * guest.memUsage);
      if (cluster.freeMemory(guest.node) < needed) {
        ctx.log("kvm: cannot set up guest memory 'pc.ram': Cannot allocate memory");
        throw new Error('start failed: QEMU exited with code 1');
      }
      await ctx.sleep(cluster.state.timing.boot_seconds * 1000);
      markRunning(cluster, guest);
    },
    opts.skiplock,
  );
}

export function markRunning(cluster: Cluster, guest: Guest): void {
  guest.status = 'running';
  guest.startedAt = cluster.clock.now();
  guest.pid = 100_000 + Math.floor(unitHash(`${guest.vmid}@${guest.startedAt}`) * 3_000_000);
}

export function markStopped(guest: Guest): void {
  guest.status = 'stopped';
  guest.startedAt = undefined;
  guest.pid = undefined;
}

export function startGuest(cluster: Cluster, caller: Caller, guest: Guest, opts: PowerOptions = {}): TaskRecord {
  if (guest.type === 'lxc' && guest.status === 'running') throw fail(`CT ${guest.vmid} already running`);
  if (isHaManaged(cluster, guest) && caller !== HA_MANAGER) {
    return requestHa(cluster, caller, guest, 'start', (g) => {
      if (g.status !== 'running') startGuest(cluster, HA_MANAGER, g);
    });
  }
  return guestTask(cluster, caller, guest, 'start', (ctx) => bootGuest(cluster, guest, ctx, opts));
}

/** Hard stop; a stopped guest is already where the caller wants it, so the task ends OK. */
export function stopGuest(cluster: Cluster, caller: Caller, guest: Guest, opts: PowerOptions = {}): TaskRecord {
  requireRunningContainer(guest);
  if (isHaManaged(cluster, guest) && caller !== HA_MANAGER) {
    return requestHa(cluster, caller, guest, 'stop', (g) => {
      if (g.status === 'running') stopGuest(cluster, HA_MANAGER, g);
    });
  }
  return powerDownTask(cluster, caller, guest, 'stop', 1000, opts);
}

export function shutdownGuest(cluster: Cluster, caller: Caller, guest: Guest, opts: PowerOptions = {}): TaskRecord {
  requireRunningContainer(guest);
  if (isHaManaged(cluster, guest) && caller !== HA_MANAGER) {
    return requestHa(cluster, caller, guest, 'stop', (g) => {
      if (g.status === 'running') shutdownGuest(cluster, HA_MANAGER, g);
    });
  }
  return powerDownTask(cluster, caller, guest, 'shutdown', cluster.state.timing.shutdown_seconds * 1000, opts);
}

export function rebootGuest(cluster: Cluster, caller: Caller, guest: Guest): TaskRecord {
  if (guest.status !== 'running') throw fail(`${label(guest)} not running`);
  return guestTask(cluster, caller, guest, 'reboot', async (ctx) => {
    await withGuestFile(cluster, guest, async () => {
      if (guest.status !== 'running') throw new Error(`${label(guest)} not running`);
      await ctx.sleep(cluster.state.timing.shutdown_seconds * 1000);
      markStopped(guest);
      // A reboot through the API is a fresh start of QEMU, which takes the pending changes.
      guest.applyPending();
      await ctx.sleep(cluster.state.timing.boot_seconds * 1000);
      markRunning(cluster, guest);
    });
  });
}

function powerDownTask(
  cluster: Cluster,
  caller: Caller,
  guest: Guest,
  action: 'stop' | 'shutdown',
  durationMs: number,
  opts: PowerOptions,
): TaskRecord {
  return guestTask(cluster, caller, guest, action, async (ctx) => {
    await withGuestFile(
      cluster,
      guest,
      async () => {
        if (guest.status !== 'running') return;
        await ctx.sleep(durationMs);
        markStopped(guest);
      },
      opts.skiplock,
    );
  });
}
