/** Snapshots: create, delete, rollback, with the `snapshot` lock while they run. */
import type { Caller, Cluster } from '../cluster.js';
import { FILE_STORAGE_TYPES } from '../scenario.js';
import { storageOf } from '../guest-config.js';
import type { Guest } from '../state.js';
import type { TaskRecord } from '../tasks.js';
import { guestTask, withGuestFile } from './common.js';
import { markRunning, markStopped } from './power.js';

/** Storages whose volumes can be snapshotted (file storages only with qcow2). */
const SNAPSHOT_TYPES: ReadonlySet<string> = new Set(['lvmthin', 'zfspool', 'rbd']);

function requireSnapshotSupport(cluster: Cluster, guest: Guest): void {
  for (const d of guest.drives) {
    if (d.cdrom || d.unused) continue;
    const spec = cluster.state.storages.get(storageOf(d.volid));
    const volume = cluster.state.volume(d.volid, guest.node);
    const ok =
      spec && (SNAPSHOT_TYPES.has(spec.type) || (FILE_STORAGE_TYPES.has(spec.type) && volume?.format === 'qcow2'));
    if (!ok) throw new Error('snapshot feature is not available');
  }
}

/** PVE lists snapshots plus a `current` pseudo-entry whose parent is the active snapshot. */
export function listSnapshots(guest: Guest): Record<string, unknown>[] {
  const list: Record<string, unknown>[] = [...guest.snapshots.values()].map((s) => ({
    name: s.name,
    description: s.description,
    snaptime: s.snaptime,
    ...(s.parent ? { parent: s.parent } : {}),
    ...(guest.type === 'qemu' ? { vmstate: s.vmstate ? 1 : 0 } : {}),
  }));
  const current: Record<string, unknown> = { name: 'current', description: 'You are here!', digest: guest.digest };
  if (guest.config['parent']) current['parent'] = guest.config['parent'];
  if (guest.type === 'qemu') current['running'] = guest.status === 'running' ? 1 : 0;
  list.push(current);
  return list;
}

/** Runs `work` with the guest's lock file and a config `lock` property set for its duration. */
async function underLock(cluster: Cluster, guest: Guest, lock: string, work: () => Promise<void>): Promise<void> {
  await withGuestFile(cluster, guest, () => guest.update((c) => (c['lock'] = lock)));
  try {
    await work();
  } finally {
    guest.update((c) => delete c['lock']);
  }
}

export function createSnapshot(
  cluster: Cluster,
  caller: Caller,
  guest: Guest,
  name: string,
  description = '',
  vmstate = false,
): TaskRecord {
  return guestTask(cluster, caller, guest, 'snapshot', async (ctx) => {
    if (guest.snapshots.has(name)) throw new Error(`snapshot name '${name}' already used`);
    requireSnapshotSupport(cluster, guest);
    await underLock(cluster, guest, 'snapshot', async () => {
      const withState = vmstate && guest.status === 'running';
      if (withState) {
        ctx.log(`saving VM state and RAM using storage '${storageOf(guest.drives[0]?.volid ?? 'local-lvm:')}'`);
        await ctx.sleep((guest.memoryBytes / cluster.state.timing.clone_bytes_per_second) * 1000);
      }
      for (const d of guest.drives) {
        if (d.cdrom || d.unused) continue;
        ctx.log(`snapshotting 'drive-${d.key}' (${d.volid})`);
        ctx.log(`  Logical volume "snap_${d.volid.split(':')[1]!.split('/').pop()}_${name}" created.`);
      }
      await ctx.sleep(1000);
      const config = { ...guest.config };
      delete config['lock'];
      delete config['parent'];
      const parent = guest.config['parent'];
      guest.snapshots.set(name, {
        name,
        description,
        snaptime: cluster.clock.epochSeconds(),
        vmstate: withState,
        ...(parent ? { parent } : {}),
        config,
      });
      guest.update((c) => (c['parent'] = name));
    });
  });
}

export function deleteSnapshot(cluster: Cluster, caller: Caller, guest: Guest, name: string): TaskRecord {
  return guestTask(cluster, caller, guest, 'delsnapshot', async (ctx) => {
    const snap = guest.snapshots.get(name);
    if (!snap) throw new Error(`snapshot '${name}' does not exist`);
    await underLock(cluster, guest, 'snapshot-delete', async () => {
      await ctx.sleep(1000);
      guest.snapshots.delete(name);
      for (const other of guest.snapshots.values()) {
        if (other.parent === name) {
          if (snap.parent) other.parent = snap.parent;
          else delete other.parent;
        }
      }
      guest.update((c) => {
        if (c['parent'] !== name) return;
        if (snap.parent) c['parent'] = snap.parent;
        else delete c['parent'];
      });
    });
  });
}

export function rollbackSnapshot(
  cluster: Cluster,
  caller: Caller,
  guest: Guest,
  name: string,
  start = false,
): TaskRecord {
  return guestTask(cluster, caller, guest, 'rollback', async (ctx) => {
    const snap = guest.snapshots.get(name);
    if (!snap) throw new Error(`snapshot '${name}' does not exist`);
    await underLock(cluster, guest, 'rollback', async () => {
      if (guest.status === 'running' && !snap.vmstate) {
        ctx.log(`stopping ${guest.type === 'qemu' ? 'VM' : 'CT'} ${guest.vmid}`);
        markStopped(guest);
      }
      await ctx.sleep(2000);
      guest.update((c) => {
        for (const k of Object.keys(c)) delete c[k];
        Object.assign(c, snap.config, { parent: name, lock: 'rollback' });
      });
      if (snap.vmstate || start) markRunning(cluster, guest);
    });
  });
}
