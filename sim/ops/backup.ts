/**
 * vzdump, restore and extractconfig, as pve-manager's VZDump and the create APIs of
 * qemu-server (`archive`) and pve-container (`ostemplate` + `restore`) do them.
 *
 * One vzdump job runs at a time per node (the global `/var/run/vzdump.lock`, waited for up to
 * `lockwait` minutes); within a job guests are backed up one after the other, each locked
 * `backup` while it runs, so anything else touching it meets `VM is locked (backup)`. The
 * archive crosses the storage's link, shared with every other backup writing there (cost
 * model in sim/cost.ts). A guest that fails is logged and the job ends `job errors`.
 */
import type { Caller, Cluster } from '../cluster.js';
import { backupArchiveBytes, BACKUP_SETUP_SECONDS, bwlimitToBytesPerSecond, storageLinkEnd } from '../cost.js';
import { PveError, fail } from '../errors.js';
import {
  formatDrive,
  isDriveKey,
  parseDrive,
  serializeConfig,
  storageOf,
  type GuestConfig,
  type GuestType,
} from '../guest-config.js';
import type { Can } from './views.js';
import { Guest, unitHash, type BackupRecord, type StoragePool, type Volume } from '../state.js';
import type { TaskContext, TaskRecord } from '../tasks.js';
import { formatDiskSize, parseSize, renderBytes } from '../units.js';
import { checkLock, label, lockGuestFile } from './common.js';
import { CONTROL_KEYS } from '../../lib/pve/params.js';
import { configValue } from './config.js';
import { markRunning, markStopped } from './power.js';

export type BackupMode = 'snapshot' | 'suspend' | 'stop';

export interface VzdumpRequest {
  vmids: number[];
  storage: string;
  mode: BackupMode;
  compress: string;
  notesTemplate?: string;
  protected?: boolean;
  bwlimit?: number;
  /** Minutes to wait for the node's global vzdump lock (PVE's default is 180). */
  lockwait: number;
}

const ARCHIVE_SUFFIX: Record<string, string> = { '0': '', '1': '.lzo', lzo: '.lzo', gzip: '.gz', zstd: '.zst' };

/** PVE's `Permission check failed (<path>, <priv>)` for a check made inside a handler. */
function requirePrivilege(can: Can, path: string, priv: string): void {
  if (!can(path, [priv])) throw new PveError(403, `Permission check failed (${path}, ${priv})`);
}

/** The backup storage on `node`, refused as PVE refuses a storage without `backup` content. */
function backupPool(cluster: Cluster, sid: string, node: string): StoragePool {
  const pool = cluster.state.pool(sid, node);
  if (!pool) throw fail(`storage '${sid}' does not exist`);
  if (!pool.spec.content.includes('backup')) throw fail(`can't use storage '${sid}' for backups - wrong content type`);
  return pool;
}

/** Allocated guest data a backup reads: each disk's size times a stable fill fraction. */
function guestDataBytes(cluster: Cluster, guest: Guest): number {
  let bytes = 0;
  for (const d of guest.drives) {
    if (d.cdrom || d.unused) continue;
    const size = cluster.state.volume(d.volid, guest.node)?.size ?? d.size ?? 0;
    bytes += Math.round(size * (0.15 + unitHash(`fill/${d.volid}`) * 0.45));
  }
  return bytes;
}

/** `2026_12_06-07_00_00`, the archive's timestamp. */
function archiveStamp(ms: number): string {
  return new Date(ms).toISOString().slice(0, 19).replace(/-/g, '_').replace('T', '-').replace(/:/g, '_');
}

function expandNotes(template: string, cluster: Cluster, guest: Guest): string {
  const vars: Record<string, string> = {
    cluster: cluster.state.clusterName,
    guestname: guest.name,
    node: guest.node,
    vmid: String(guest.vmid),
  };
  return template.replace(/\{\{(\w+)\}\}/g, (whole, name: string) => vars[name] ?? whole);
}

/** POST /nodes/{node}/vzdump: checks made before the worker starts, then the job as a task. */
export function vzdump(cluster: Cluster, caller: Caller, node: string, req: VzdumpRequest, can: Can): TaskRecord {
  requirePrivilege(can, `/storage/${req.storage}`, 'Datastore.AllocateSpace');
  for (const vmid of req.vmids) requirePrivilege(can, `/vms/${vmid}`, 'VM.Backup');
  if (req.bwlimit !== undefined) requirePrivilege(can, '/', 'Sys.Modify');
  const pool = backupPool(cluster, req.storage, node);
  const local = req.vmids.filter((vmid) => cluster.state.guests.get(vmid)?.node === node);
  const external = req.vmids.filter((vmid) => !local.includes(vmid));
  return cluster.tasks.start({
    node,
    type: 'vzdump',
    id: local.length === 1 ? String(local[0]) : '',
    authid: caller.authid,
    run: async (ctx) => {
      const release = await globalLock(cluster, node, req.lockwait, ctx);
      try {
        ctx.log(
          `INFO: starting new backup job: vzdump ${req.vmids.join(' ')} --storage ${req.storage} --mode ${req.mode} --compress ${req.compress}`,
        );
        if (external.length > 0) ctx.log(`INFO: skip external VMs: ${external.join(', ')}`);
        let failed = 0;
        for (const vmid of local) {
          const guest = cluster.state.guests.get(vmid)!;
          try {
            await backupGuest(cluster, ctx, guest, pool, req);
          } catch (err) {
            if (ctx.signal.aborted) throw err;
            failed++;
            ctx.log(
              `ERROR: Backup of ${label(guest)} failed - ${err instanceof Error ? err.message.trim() : String(err)}`,
            );
          }
        }
        if (failed > 0) {
          ctx.log('INFO: Backup job finished with errors');
          throw new Error('job errors');
        }
        ctx.log('INFO: Backup job finished successfully');
      } finally {
        release();
      }
    },
  });
}

async function globalLock(cluster: Cluster, node: string, lockwait: number, ctx: TaskContext): Promise<() => void> {
  const path = `/var/run/vzdump.lock@${node}`;
  if (cluster.locks.isHeld(path)) ctx.log('INFO: trying to get global lock - waiting...');
  try {
    const release = await cluster.locks.acquire(path, lockwait * 60_000);
    return release;
  } catch {
    throw new Error(`can't acquire lock '/var/run/vzdump.lock' (wait = ${lockwait} minutes)`);
  }
}

/** One guest of a job: locked `backup` while its archive is written. */
async function backupGuest(
  cluster: Cluster,
  ctx: TaskContext,
  guest: Guest,
  pool: StoragePool,
  req: VzdumpRequest,
): Promise<void> {
  const started = cluster.clock.now();
  ctx.log(`INFO: Starting Backup of ${label(guest)} (${guest.type})`);
  const releaseFile = await lockGuestFile(cluster, guest);
  try {
    checkLock(guest);
    guest.update((c) => (c['lock'] = 'backup'));
  } finally {
    releaseFile();
  }
  const wasRunning = guest.status === 'running';
  try {
    ctx.log(`INFO: status = ${guest.status}`);
    ctx.log(`INFO: ${guest.type === 'qemu' ? 'VM' : 'CT'} Name: ${guest.name}`);
    for (const d of guest.drives)
      if (!d.cdrom && !d.unused) ctx.log(`INFO: include disk '${d.key}' '${d.volid}' ${formatDiskSize(d.size ?? 0)}`);
    ctx.log(`INFO: backup mode: ${req.mode}`);
    if (wasRunning && req.mode === 'stop') {
      ctx.log('INFO: stopping virtual guest');
      markStopped(guest);
    } else if (wasRunning && req.mode === 'suspend') {
      ctx.log('INFO: suspending guest');
    }
    const format = `${guest.type === 'qemu' ? 'vma' : 'tar'}${ARCHIVE_SUFFIX[req.compress] ?? ''}`;
    const volid = `${pool.id}:backup/vzdump-${guest.type}-${guest.vmid}-${archiveStamp(cluster.clock.now())}.${format}`;
    ctx.log(`INFO: creating vzdump archive '${pool.pathOf(volid) ?? volid}'`);
    const dataBytes = guestDataBytes(cluster, guest);
    const size = backupArchiveBytes(dataBytes, req.compress);
    await ctx.sleep(BACKUP_SETUP_SECONDS * 1000);
    const limit = bwlimitToBytesPerSecond(req.bwlimit);
    await cluster.transfers.start({
      source: guest.node,
      target: storageLinkEnd(pool.id, pool.shared ? null : guest.node),
      bytes: size,
      signal: ctx.signal,
      ...(limit ? { limitBytesPerSecond: limit } : {}),
    }).finished;
    if (pool.avail < size) throw new Error('vma_queue_write: write error - No space left on device');
    ctx.log(
      `INFO: transferred ${renderBytes(dataBytes)} in ${Math.round((cluster.clock.now() - started) / 1000)} seconds`,
    );
    ctx.log(`INFO: archive file size: ${renderBytes(size)}`);
    const config = { ...guest.config };
    delete config['lock'];
    const record: BackupRecord = { type: guest.type, config, dataBytes, protected: req.protected ?? false };
    if (req.notesTemplate !== undefined) {
      ctx.log('INFO: adding notes to backup');
      record.notes = expandNotes(req.notesTemplate, cluster, guest);
    }
    if (req.protected) ctx.log('INFO: marking backup as protected');
    pool.volumes.set(volid, {
      volid,
      content: 'backup',
      format,
      size,
      vmid: guest.vmid,
      ctime: Math.floor(started / 1000),
      backup: record,
    });
    ctx.log(`INFO: Finished Backup of ${label(guest)} (${clockTime((cluster.clock.now() - started) / 1000)})`);
  } finally {
    guest.update((c) => delete c['lock']);
    if (wasRunning && guest.status !== 'running') {
      ctx.log('INFO: restarting vm');
      markRunning(cluster, guest);
    }
  }
}

function clockTime(seconds: number): string {
  const s = Math.round(seconds);
  return [Math.floor(s / 3600), Math.floor(s / 60) % 60, s % 60].map((n) => String(n).padStart(2, '0')).join(':');
}

/** A backup archive visible from `node`, with PVE's check_volume_access for backups. */
function backupVolume(cluster: Cluster, node: string, volid: string, can: Can): Volume & { backup: BackupRecord } {
  const volume = cluster.state.volume(volid, node);
  if (!volume) throw fail(`volume '${volid}' does not exist`);
  if (!volume.backup) throw fail(`volume '${volid}' is not a backup archive`);
  requirePrivilege(can, `/storage/${storageOf(volid)}`, 'Datastore.AllocateSpace');
  if (volume.vmid !== undefined) requirePrivilege(can, `/vms/${volume.vmid}`, 'VM.Backup');
  return volume as Volume & { backup: BackupRecord };
}

/** GET /nodes/{node}/vzdump/extractconfig: the guest config stored in the archive. */
export function extractConfig(cluster: Cluster, node: string, volid: string, can: Can): string {
  return serializeConfig(backupVolume(cluster, node, volid, can).backup.config, []);
}

export interface RestoreRequest {
  vmid: number;
  archive: string;
  force: boolean;
  /** Where new disks go; each disk's original storage when absent. */
  storage?: string;
  start: boolean;
  /** Config values that replace the archive's (name, net0, ...). */
  overrides: GuestConfig;
}

/** Refusals before the worker: an existing guest without `force`, or one that cannot be overwritten. */
function checkRestoreTarget(cluster: Cluster, node: string, type: GuestType, req: RestoreRequest): Guest | undefined {
  const prefix = `unable to restore ${type === 'qemu' ? 'VM' : 'CT'} ${req.vmid} -`;
  const existing = cluster.state.guests.get(req.vmid);
  if (!existing) return undefined;
  if (!req.force) throw fail(`${prefix} ${label(existing)} already exists on node '${existing.node}'`);
  if (existing.node !== node || existing.type !== type)
    throw fail(`${prefix} ${label(existing)} already exists on node '${existing.node}'`);
  if (existing.protection) throw fail(`${prefix} protection mode enabled`);
  if (existing.status === 'running') throw fail(`${prefix} ${type === 'qemu' ? 'VM' : 'CT'} is running`);
  checkLock(existing);
  return existing;
}

/** The archive's disks, allocated anew for `vmid` on `node`. */
function allocateRestoredDisks(
  cluster: Cluster,
  node: string,
  type: GuestType,
  vmid: number,
  config: GuestConfig,
  storage: string | undefined,
): void {
  const draft = new Guest(vmid, type, node, config, 0, 0, '');
  for (const d of draft.drives) {
    if (d.cdrom || d.unused) continue;
    const sid = storage ?? storageOf(d.volid);
    const pool = cluster.state.pool(sid, node);
    if (!pool) throw fail(`storage '${sid}' does not exist`);
    const { options } = parseDrive(config[d.key]!);
    const size = parseSize(options['size'] ?? '0') ?? 0;
    const volume = cluster.state.allocateDisk(pool, vmid, size, {
      content: type === 'qemu' ? 'images' : 'rootdir',
      now: cluster.clock.now(),
    });
    config[d.key] = formatDrive(volume.volid, options);
  }
}

/** POST /nodes/{node}/qemu with `archive`, or /lxc with `restore=1`: a new (or overwritten) guest from a backup. */
export function restoreGuest(
  cluster: Cluster,
  caller: Caller,
  node: string,
  type: GuestType,
  req: RestoreRequest,
  can: Can,
): TaskRecord {
  const volume = backupVolume(cluster, node, req.archive, can);
  if (volume.backup.type !== type)
    throw fail(`archive '${req.archive}' is not a ${type === 'qemu' ? 'VM' : 'container'} backup`);
  const existing = checkRestoreTarget(cluster, node, type, req);
  return cluster.tasks.start({
    node,
    type: type === 'qemu' ? 'qmrestore' : 'vzrestore',
    id: String(req.vmid),
    authid: caller.authid,
    run: async (ctx) => {
      ctx.log(`restore ${type === 'qemu' ? 'vma' : 'tar'} archive: ${req.archive}`);
      if (existing) {
        for (const d of existing.drives)
          if (!d.cdrom) cluster.state.pool(storageOf(d.volid), node)?.volumes.delete(d.volid);
        cluster.state.guests.delete(existing.vmid);
        ctx.log(`destroyed old ${label(existing)} and its disks`);
      }
      const config: GuestConfig = { ...volume.backup.config, ...req.overrides, lock: 'create' };
      allocateRestoredDisks(cluster, node, type, req.vmid, config, req.storage);
      const guest = new Guest(
        req.vmid,
        type,
        node,
        config,
        0.05,
        0.5,
        `10.0.${(req.vmid >> 8) & 255}.${req.vmid & 255 || 1}`,
      );
      cluster.state.addGuest(guest);
      try {
        await cluster.transfers.start({
          source: storageLinkEnd(storageOf(req.archive), cluster.state.isShared(storageOf(req.archive)) ? null : node),
          target: node,
          bytes: volume.size,
          signal: ctx.signal,
        }).finished;
        await ctx.sleep(BACKUP_SETUP_SECONDS * 1000);
      } catch (err) {
        for (const d of guest.drives)
          if (!d.cdrom) cluster.state.pool(storageOf(d.volid), node)?.volumes.delete(d.volid);
        cluster.state.guests.delete(guest.vmid);
        throw err;
      }
      ctx.log(`restored ${renderBytes(volume.backup.dataBytes)} from ${renderBytes(volume.size)} archive`);
      guest.update((c) => delete c['lock']);
      if (req.start) markRunning(cluster, guest);
    },
  });
}

/** The restore a create call asks for; its config values (not its disks) override the archive's. */
export function restoreRequest(params: Record<string, unknown>, archive: string): RestoreRequest {
  const overrides: GuestConfig = {};
  for (const [key, value] of Object.entries(params)) {
    if (CONTROL_KEYS.has(key) || value === undefined) continue;
    if (isDriveKey(params['restore'] === undefined ? 'qemu' : 'lxc', key))
      throw fail(`option '${key}' is not allowed with a restore`);
    overrides[key] = configValue(value);
  }
  return {
    vmid: params['vmid'] as number,
    archive,
    force: params['force'] === true,
    start: params['start'] === true,
    overrides,
    ...(typeof params['storage'] === 'string' ? { storage: params['storage'] } : {}),
  };
}
