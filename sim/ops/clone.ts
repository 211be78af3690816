/**
 * Clones. The new VM's config appears at once with `lock: clone`; the task holds the source's
 * lock file while it copies disks — shared when the source is stopped (a template), exclusive
 * when it runs, as qemu-server does — so clones of a running VM queue up, and a clone that
 * waits longer than the timeout fails with PVE's lock-file message.
 */
import { randomUUID } from 'node:crypto';
import type { Caller, Cluster } from '../cluster.js';
import { fail } from '../errors.js';
import { formatDrive, storageOf, type GuestConfig } from '../guest-config.js';
import { diskVolumeName, Guest, macFrom, unitHash } from '../state.js';
import type { TaskRecord } from '../tasks.js';
import { formatDiskSize, renderBytes } from '../units.js';
import { checkLock, guestTask } from './common.js';

export interface CloneRequest {
  newid: number;
  name?: string;
  description?: string;
  full?: boolean;
  target?: string;
  storage?: string;
  format?: string;
  bwlimit?: number;
}

/** Keys a clone does not inherit (identity, template flag, lock, snapshot pointer). */
const NOT_CLONED = new Set(['template', 'lock', 'parent', 'smbios1', 'vmgenid', 'protection']);

export function cloneVm(cluster: Cluster, caller: Caller, source: Guest, req: CloneRequest): TaskRecord {
  const full = req.full ?? !source.template;
  const targetNode = req.target ?? source.node;
  checkLock(source);
  const existing = cluster.state.guests.get(req.newid);
  if (existing) throw fail(`unable to create VM ${req.newid}: config file already exists`);
  cluster.state.node(targetNode);
  const disks = source.drives.filter((d) => !d.cdrom && !d.unused);
  if (targetNode !== source.node) {
    const local = disks.find((d) => !cluster.state.isShared(storageOf(d.volid)));
    if (local) throw fail(`can't clone VM to node '${targetNode}' (VM uses local storage)`);
  }
  if (!full) {
    const notBase = disks.find((d) => !/base-\d+-disk-\d+/.test(d.volid));
    if (notBase) throw fail(`Linked clone feature is not supported for '${notBase.volid}' (${notBase.key})`);
  }
  if (req.storage) {
    const pool = cluster.state.pool(req.storage, targetNode);
    if (!pool) throw fail(`storage '${req.storage}' does not exist`);
    if (!full) throw fail('storage migration not supported for linked clones');
  }

  const config: GuestConfig = {};
  for (const [k, v] of Object.entries(source.config)) if (!NOT_CLONED.has(k) && !/^unused\d+$/.test(k)) config[k] = v;
  config['name'] = req.name ?? `Copy-of-VM-${source.name}`;
  if (req.description !== undefined) config['description'] = req.description;
  config['smbios1'] = `uuid=${randomUUID()}`;
  config['vmgenid'] = randomUUID();
  for (const k of Object.keys(config)) {
    if (/^net\d+$/.test(k))
      config[k] = config[k]!.replace(/=([0-9A-F]{2}:){5}[0-9A-F]{2}/i, `=${macFrom(`${req.newid}/${k}`)}`);
    if (disks.some((d) => d.key === k)) delete config[k];
  }
  config['lock'] = 'clone';
  const clone = new Guest(
    req.newid,
    'qemu',
    targetNode,
    config,
    0.02 + unitHash(`cpu/${req.newid}`) * 0.25,
    0.35 + unitHash(`mem/${req.newid}`) * 0.4,
    `10.0.${(req.newid >> 8) & 255}.${req.newid & 255 || 1}`,
  );
  cluster.state.addGuest(clone);
  // A failed clone leaves neither the reserved config nor the disks it made.
  const discardClone = () => {
    if (cluster.state.guests.get(clone.vmid) !== clone) return;
    for (const d of clone.drives)
      if (!d.cdrom) cluster.state.pool(storageOf(d.volid), targetNode)?.volumes.delete(d.volid);
    cluster.state.guests.delete(clone.vmid);
  };

  return guestTask(
    cluster,
    caller,
    source,
    'clone',
    async (ctx) => {
      const timeout = cluster.state.timing.clone_lock_timeout_seconds * 1000;
      // qemu-server: "exclusive lock if VM is running - else shared lock is enough".
      const release =
        source.status === 'running'
          ? await cluster.locks.acquire(source.lockFilePath, timeout)
          : await cluster.locks.acquireShared(source.lockFilePath, timeout);
      try {
        for (const d of disks) {
          const sid = req.storage ?? storageOf(d.volid);
          const pool = cluster.state.pool(sid, targetNode)!;
          const sourceVolume = cluster.state.volume(d.volid, source.node);
          const size = sourceVolume?.size ?? d.size ?? 0;
          let volid: string;
          if (full) {
            ctx.log(`create full clone of drive ${d.key} (${d.volid})`);
            const volume = cluster.state.allocateDisk(pool, req.newid, size, {
              now: cluster.clock.now(),
              ...(req.format ? { format: req.format } : {}),
            });
            volid = volume.volid;
            await copyWithProgress(ctx, size, copyRate(cluster, req.bwlimit));
          } else {
            ctx.log(`create linked clone of drive ${d.key} (${d.volid})`);
            const base = d.volid.split(':')[1]!;
            const own = diskVolumeName(
              pool.spec,
              req.newid,
              cluster.state.nextDiskIndex(pool, req.newid),
              false,
              sourceVolume?.format ?? 'raw',
            );
            volid = `${sid}:${base}/${own.split(':')[1]}`;
            pool.volumes.set(volid, {
              volid,
              content: 'images',
              size,
              format: sourceVolume?.format ?? 'raw',
              vmid: req.newid,
              ctime: cluster.clock.epochSeconds(),
            });
            const path = pool.pathOf(own);
            ctx.log(
              path
                ? `Formatting '${path}', fmt=qcow2 size=${size} backing_file=../${base}`
                : `  Logical volume "${own.split(':')[1]}" created.`,
            );
            await ctx.sleep(1000);
          }
          clone.update((c) => (c[d.key] = formatDrive(volid, { ...d.options, size: formatDiskSize(size) })));
        }
      } finally {
        release();
      }
      clone.update((c) => delete c['lock']);
    },
    discardClone,
  );
}

function copyRate(cluster: Cluster, bwlimitKiB: number | undefined): number {
  const rate = cluster.state.timing.clone_bytes_per_second;
  return bwlimitKiB ? Math.min(rate, bwlimitKiB * 1024) : rate;
}

/** Sleeps for the copy and logs PVE-style progress lines (`transferred X of Y (Z%)`). */
async function copyWithProgress(
  ctx: { log(l: string): void; sleep(ms: number): Promise<void> },
  bytes: number,
  rate: number,
): Promise<void> {
  const seconds = bytes / rate;
  const steps = Math.max(1, Math.min(10, Math.ceil(seconds)));
  for (let i = 1; i <= steps; i++) {
    await ctx.sleep((seconds / steps) * 1000);
    const done = (bytes * i) / steps;
    ctx.log(`transferred ${renderBytes(done)} of ${renderBytes(bytes)} (${((done / bytes) * 100 || 100).toFixed(2)}%)`);
  }
}
