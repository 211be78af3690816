/** Small rules every guest operation shares. */
import type { Caller, Cluster } from '../cluster.js';
import { fail } from '../errors.js';
import type { Release } from '../locks.js';
import type { Guest } from '../state.js';
import type { TaskRecord, TaskRunner } from '../tasks.js';

export type GuestAction =
  | 'start'
  | 'stop'
  | 'shutdown'
  | 'reboot'
  | 'create'
  | 'destroy'
  | 'snapshot'
  | 'delsnapshot'
  | 'rollback'
  | 'migrate'
  | 'template'
  | 'clone'
  | 'config';

/** PVE's worker types: qmstart/vzstart, qmigrate/vzmigrate, ... */
export function taskType(guest: Pick<Guest, 'type'>, action: GuestAction): string {
  if (action === 'migrate') return guest.type === 'qemu' ? 'qmigrate' : 'vzmigrate';
  return `${guest.type === 'qemu' ? 'qm' : 'vz'}${action}`;
}

/**
 * Starts the guest's `action` task (qmstart, vzsnapshot, ...) on its node for `caller`;
 * `onError` undoes what the API call prepared before it (a reserved config).
 */
export function guestTask(
  cluster: Cluster,
  caller: Caller,
  guest: Pick<Guest, 'type' | 'vmid' | 'node'>,
  action: GuestAction,
  run: TaskRunner,
  onError?: () => void,
): TaskRecord {
  return cluster.tasks.start({
    node: guest.node,
    type: taskType(guest, action),
    id: String(guest.vmid),
    authid: caller.authid,
    run,
    onError,
  });
}

/** `VM is locked (clone)` (PVE's check_lock), unless the caller skips it. */
export function checkLock(guest: Guest, skiplock = false): void {
  if (!skiplock && guest.lock) throw fail(`${guest.type === 'qemu' ? 'VM' : 'CT'} is locked (${guest.lock})`);
}

/** The guest's lock file with PVE's default 10 s timeout (or the scenario's). */
export function lockGuestFile(
  cluster: Cluster,
  guest: Guest,
  timeoutSeconds = cluster.state.timing.lock_timeout_seconds,
): Promise<Release> {
  return cluster.locks.acquire(guest.lockFilePath, timeoutSeconds * 1000);
}

/** Runs `work` holding the guest's lock file, once PVE's check_lock passes (unless `skiplock`). */
export async function withGuestFile<T>(
  cluster: Cluster,
  guest: Guest,
  work: () => Promise<T> | T,
  skiplock = false,
): Promise<T> {
  const release = await lockGuestFile(cluster, guest);
  try {
    checkLock(guest, skiplock);
    return await work();
  } finally {
    release();
  }
}

/** `VM 100` / `CT 100`, as messages name guests. */
export function label(guest: Pick<Guest, 'type' | 'vmid'>): string {
  return `${guest.type === 'qemu' ? 'VM' : 'CT'} ${guest.vmid}`;
}

export function isHaManaged(cluster: Cluster, guest: Guest): boolean {
  const ha = cluster.state.haOf(guest);
  return ha !== undefined && ha.state !== 'ignored';
}
