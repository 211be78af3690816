/**
 * Guest lifecycle and configuration: create, update config (digest, lock file, lock
 * property, disk allocation `storage:size`), resize, convert to template, destroy.
 */
import { randomUUID } from 'node:crypto';
import type { Caller, Cluster } from '../cluster.js';
import { fail, parameterError } from '../errors.js';
import { formatDrive, isDriveKey, nextFreeKey, parseDrive, storageOf, type GuestConfig, type GuestType } from '../guest-config.js';
import { Guest, unitHash, type StoragePool } from '../state.js';
import type { TaskRecord } from '../tasks.js';
import { formatDiskSize, parseSize, renderBytes } from '../units.js';
import { checkLock, label, lockGuestFile, taskType } from './common.js';
import { bootGuest } from './power.js';

/** Request parameters that steer the call rather than being config keys. */
const CONTROL_KEYS = new Set([
  'node', 'vmid', 'digest', 'delete', 'revert', 'background_delay', 'skiplock', 'pool', 'storage', 'start',
  'ostemplate', 'ssh-public-keys', 'password', 'force',
]);

const ALLOCATE_RE = /^([a-z][a-z0-9\-_.]*[a-z0-9]):(\d+(?:\.\d+)?)$/i;

function configValue(value: unknown): string {
  if (typeof value === 'boolean') return value ? '1' : '0';
  return String(value);
}

interface DrivePlan {
  value: string;
  /** Bytes copied in by `import-from`, which takes time in the task. */
  importedBytes: number;
}

/**
 * A drive value from a request: `local-lvm:32` allocates a 32 GiB volume, `import-from=`
 * copies an existing volume, an existing volid is attached, cdrom values must name an ISO.
 */
function planDrive(cluster: Cluster, node: string, vmid: number, type: GuestType, key: string, value: string): DrivePlan {
  const { volid, options } = parseDrive(value);
  const isCdrom = options['media'] === 'cdrom';
  if (isCdrom || volid === 'none' || volid === 'cdrom') {
    if (volid.includes(':') && !cluster.state.volume(volid, node)) throw fail(`volume '${volid}' does not exist`);
    return { value, importedBytes: 0 };
  }
  const alloc = ALLOCATE_RE.exec(volid);
  if (!alloc) {
    const volume = cluster.state.volume(volid, node);
    if (!volume) throw fail(`volume '${volid}' does not exist`);
    return { value: formatDrive(volid, { ...options, size: formatDiskSize(volume.size) }), importedBytes: 0 };
  }
  const sid = alloc[1]!;
  const pool = cluster.state.pool(sid, node);
  if (!pool) throw fail(`storage '${sid}' does not exist`);
  const content = type === 'qemu' ? 'images' : 'rootdir';
  if (!pool.spec.content.includes(content)) throw fail(`storage '${sid}' does not support vm images`);
  let size = Math.round(Number(alloc[2]) * 1024 ** 3);
  let importedBytes = 0;
  const rest = { ...options };
  if (rest['import-from']) {
    const source = cluster.state.volume(rest['import-from'], node);
    if (!source) throw fail(`volume '${rest['import-from']}' does not exist`);
    size = Math.max(size, source.size);
    importedBytes = source.size;
    delete rest['import-from'];
  }
  if (key === 'efidisk0') size = rest['efitype'] === '2m' ? 528 * 1024 : 4 * 1024 ** 2;
  if (key === 'tpmstate0') size = 4 * 1024 ** 2;
  const volume = cluster.state.allocateDisk(pool, vmid, size, { content, now: cluster.clock.now() });
  return { value: formatDrive(volume.volid, { ...rest, size: formatDiskSize(size) }), importedBytes };
}

/** Removes volumes no config references any more. */
function freeVolume(cluster: Cluster, node: string, volid: string): void {
  cluster.state.pool(storageOf(volid), node)?.volumes.delete(volid);
}

/**
 * PUT/POST .../config: waits for the lock file, refuses locked guests and stale digests, then
 * applies `delete` (disks become unusedN) and new values.
 */
export async function updateConfig(cluster: Cluster, guest: Guest, params: Record<string, unknown>): Promise<void> {
  const deletes = typeof params['delete'] === 'string' ? params['delete'].split(/[\s,;]+/).filter(Boolean) : [];
  const sets = Object.entries(params).filter(([k, v]) => !CONTROL_KEYS.has(k) && v !== undefined);
  const both = deletes.find((k) => sets.some(([s]) => s === k));
  if (both) throw parameterError({ delete: `you can't use '-${both}' and '-delete ${both}' at the same time` });

  const release = await lockGuestFile(cluster, guest);
  try {
    checkLock(guest, params['skiplock'] === true);
    if (typeof params['digest'] === 'string' && params['digest'] !== guest.digest) {
      throw fail('checksum mismatch (file change by other user?)');
    }
    const planned: [string, string][] = sets.map(([key, value]) => [
      key,
      isDriveKey(guest.type, key) ? planDrive(cluster, guest.node, guest.vmid, guest.type, key, configValue(value)).value : configValue(value),
    ]);
    guest.update((config) => {
      for (const key of deletes) removeKey(cluster, guest, config, key);
      for (const [key, value] of planned) {
        // Attaching an unused disk takes it out of the unused list.
        const volid = parseDrive(value).volid;
        for (const [k, v] of Object.entries(config)) if (/^unused\d+$/.test(k) && v === volid) delete config[k];
        if (isDriveKey(guest.type, key) && config[key] && config[key] !== value) removeKey(cluster, guest, config, key);
        config[key] = value;
      }
    });
  } finally {
    release();
  }
}

function removeKey(cluster: Cluster, guest: Guest, config: GuestConfig, key: string): void {
  const value = config[key];
  if (value === undefined) return;
  delete config[key];
  if (!isDriveKey(guest.type, key)) return;
  const { volid, options } = parseDrive(value);
  if (options['media'] === 'cdrom' || !volid.includes(':')) return;
  if (/^unused\d+$/.test(key)) freeVolume(cluster, guest.node, volid);
  else config[nextFreeKey(config, 'unused')] = volid;
}

/**
 * POST .../config: PVE checks and writes under the lock in the API call, then forks a
 * `qmconfig` worker for what takes time; here that worker only logs the change.
 */
export async function updateConfigAsync(cluster: Cluster, caller: Caller, guest: Guest, params: Record<string, unknown>): Promise<TaskRecord> {
  await updateConfig(cluster, guest, params);
  const changes = Object.entries(params)
    .filter(([k, v]) => k !== 'node' && k !== 'vmid' && v !== undefined)
    .map(([k, v]) => `-${k} ${configValue(v)}`)
    .join(' ');
  return cluster.tasks.start({
    node: guest.node,
    type: taskType(guest, 'config'),
    id: String(guest.vmid),
    authid: caller.authid,
    run: async (ctx) => ctx.log(`update ${label(guest)}: ${changes}`),
  });
}

function newGuest(vmid: number, type: GuestType, node: string, config: GuestConfig): Guest {
  return new Guest(
    vmid,
    type,
    node,
    config,
    0.02 + unitHash(`cpu/${vmid}`) * 0.25,
    0.35 + unitHash(`mem/${vmid}`) * 0.4,
    `10.0.${(vmid >> 8) & 255}.${vmid & 255 || 1}`,
  );
}

function requireFreeVmid(cluster: Cluster, vmid: number, type: GuestType): void {
  const existing = cluster.state.guests.get(vmid);
  if (existing) {
    const what = type === 'qemu' ? 'VM' : 'CT';
    throw fail(`unable to create ${what} ${vmid} - ${label(existing)} already exists on node '${existing.node}'`);
  }
}

/** POST /nodes/{node}/qemu: the config appears at once (locked `create`), disks are made by the task. */
export function createQemu(cluster: Cluster, caller: Caller, node: string, params: Record<string, unknown>): TaskRecord {
  const vmid = params['vmid'] as number;
  requireFreeVmid(cluster, vmid, 'qemu');
  const config: GuestConfig = {};
  let importedBytes = 0;
  for (const [key, value] of Object.entries(params)) {
    if (CONTROL_KEYS.has(key) || value === undefined) continue;
    if (isDriveKey('qemu', key)) {
      const plan = planDrive(cluster, node, vmid, 'qemu', key, configValue(value));
      config[key] = plan.value;
      importedBytes += plan.importedBytes;
    } else config[key] = configValue(value);
  }
  config['smbios1'] ??= `uuid=${randomUUID()}`;
  config['vmgenid'] ??= randomUUID();
  config['meta'] ??= `creation-qemu=9.2.0,ctime=${cluster.clock.epochSeconds()}`;
  config['lock'] = 'create';
  const guest = newGuest(vmid, 'qemu', node, config);
  cluster.state.addGuest(guest);
  return cluster.tasks.start({
    node,
    type: taskType(guest, 'create'),
    id: String(vmid),
    authid: caller.authid,
    onError: () => discardReserved(cluster, guest),
    run: async (ctx) => {
      for (const d of guest.drives) if (!d.cdrom) ctx.log(`${d.key}: successfully created disk '${d.volid},size=${formatDiskSize(d.size ?? 0)}'`);
      if (importedBytes > 0) {
        ctx.log(`transferred ${renderBytes(importedBytes)} of ${renderBytes(importedBytes)} (100.00%)`);
      }
      await ctx.sleep(1000 + (importedBytes / cluster.state.timing.clone_bytes_per_second) * 1000);
      guest.update((c) => delete c['lock']);
      if (params['start'] === true) await bootGuest(cluster, guest, ctx);
    },
  });
}

/** POST /nodes/{node}/lxc: needs an existing template archive. */
export function createLxc(cluster: Cluster, caller: Caller, node: string, params: Record<string, unknown>): TaskRecord {
  const vmid = params['vmid'] as number;
  requireFreeVmid(cluster, vmid, 'lxc');
  const ostemplate = String(params['ostemplate']);
  const archive = cluster.state.volume(ostemplate, node);
  if (!archive) throw fail(`volume '${ostemplate}' does not exist`);
  const config: GuestConfig = { arch: 'amd64', ostype: 'debian', cores: '1', memory: '512', swap: '512' };
  for (const [key, value] of Object.entries(params)) {
    if (CONTROL_KEYS.has(key) || value === undefined) continue;
    config[key] = isDriveKey('lxc', key) ? planDrive(cluster, node, vmid, 'lxc', key, configValue(value)).value : configValue(value);
  }
  if (!config['rootfs']) {
    const sid = typeof params['storage'] === 'string' ? params['storage'] : 'local';
    config['rootfs'] = planDrive(cluster, node, vmid, 'lxc', 'rootfs', `${sid}:4`).value;
  }
  config['lock'] = 'create';
  const guest = newGuest(vmid, 'lxc', node, config);
  cluster.state.addGuest(guest);
  return cluster.tasks.start({
    node,
    type: taskType(guest, 'create'),
    id: String(vmid),
    authid: caller.authid,
    onError: () => discardReserved(cluster, guest),
    run: async (ctx) => {
      const pool = cluster.state.pool(storageOf(ostemplate), node);
      ctx.log(`extracting archive '${pool?.pathOf(ostemplate) ?? ostemplate}'`);
      await ctx.sleep(4000);
      ctx.log(`Total bytes read: ${archive.size * 3} (${renderBytes(archive.size * 3)})`);
      ctx.log('Detected container architecture: amd64');
      ctx.log('Creating SSH host key \'ssh_host_ed25519_key\' - this may take some time ...\ndone.');
      guest.update((c) => delete c['lock']);
      if (params['start'] === true) await bootGuest(cluster, guest, ctx);
    },
  });
}

/** A create that failed leaves nothing behind. */
function discardReserved(cluster: Cluster, guest: Guest): void {
  if (cluster.state.guests.get(guest.vmid) !== guest || guest.lock !== 'create') return;
  for (const d of guest.drives) if (!d.cdrom) freeVolume(cluster, guest.node, d.volid);
  cluster.state.guests.delete(guest.vmid);
}

export interface DestroyOptions {
  purge?: boolean;
  destroyUnreferencedDisks?: boolean;
  skiplock?: boolean;
}

/** DELETE /nodes/{node}/{qemu|lxc}/{vmid}: refusals are immediate, the removal is a task. */
export function destroyGuest(cluster: Cluster, caller: Caller, guest: Guest, opts: DestroyOptions): TaskRecord {
  if (guest.status === 'running') {
    throw fail(guest.type === 'qemu' ? `VM ${guest.vmid} is running - destroy failed` : `unable to destroy CT ${guest.vmid} - container is running`);
  }
  if (guest.protection) throw fail(`can't remove ${label(guest)} - protection mode enabled`);
  if (cluster.state.haOf(guest) && !opts.purge) {
    throw fail(`unable to remove ${label(guest)} - used in HA resources and purge parameter not set.`);
  }
  checkLock(guest, opts.skiplock);
  return cluster.tasks.start({
    node: guest.node,
    type: taskType(guest, 'destroy'),
    id: String(guest.vmid),
    authid: caller.authid,
    run: async (ctx) => {
      const release = await lockGuestFile(cluster, guest);
      try {
        checkLock(guest, opts.skiplock);
        const volids = new Set(guest.drives.filter((d) => !d.cdrom).map((d) => d.volid));
        if (opts.destroyUnreferencedDisks !== false) {
          for (const pool of cluster.state.poolsOn(guest.node)) {
            for (const v of pool.volumes.values()) if (v.vmid === guest.vmid) volids.add(v.volid);
          }
        }
        for (const volid of volids) {
          const user = linkedCloneOf(cluster, guest.node, volid);
          if (user) throw new Error(`base volume '${volid.split(':')[1]}' is still in use by linked cloned`);
        }
        await ctx.sleep(1500);
        for (const volid of volids) {
          ctx.log(`  Logical volume "${volid.split(':')[1]}" successfully removed.`);
          freeVolume(cluster, guest.node, volid);
        }
        cluster.state.guests.delete(guest.vmid);
        if (opts.purge) cluster.state.ha.delete(`${guest.type === 'qemu' ? 'vm' : 'ct'}:${guest.vmid}`);
        if (opts.purge) ctx.log(`purging ${label(guest)} from related configurations..`);
      } finally {
        release();
      }
    },
  });
}

/** A volume that is the base of someone's linked clone, if any. */
function linkedCloneOf(cluster: Cluster, node: string, volid: string): string | undefined {
  const name = volid.split(':')[1]!;
  const pool = cluster.state.pool(storageOf(volid), node);
  if (!pool) return undefined;
  for (const other of pool.volumes.keys()) {
    if (other !== volid && other.split(':')[1]!.startsWith(`${name}/`)) return other;
  }
  return undefined;
}

/** PUT .../resize: grows a disk (`+10G` or an absolute size); shrinking is refused. */
export function resizeDisk(cluster: Cluster, caller: Caller, guest: Guest, disk: string, size: string): TaskRecord {
  return cluster.tasks.start({
    node: guest.node,
    type: 'resize',
    id: String(guest.vmid),
    authid: caller.authid,
    run: async (ctx) => {
      const release = await lockGuestFile(cluster, guest);
      try {
        checkLock(guest);
        const value = guest.config[disk];
        if (!value) throw new Error(`disk '${disk}' does not exist`);
        const { volid, options } = parseDrive(value);
        if (options['media'] === 'cdrom') throw new Error("you can't resize a cdrom");
        const volume = cluster.state.volume(volid, guest.node);
        if (!volume) throw new Error(`volume '${volid}' does not exist`);
        const relative = size.startsWith('+');
        const amount = parseSize(relative ? size.slice(1) : size) ?? 0;
        const next = relative ? volume.size + amount : amount;
        if (next < volume.size) throw new Error('shrinking disks is not supported');
        ctx.log(`  Size of logical volume ${volid.split(':')[1]} changed from ${renderBytes(volume.size)} to ${renderBytes(next)}.`);
        volume.size = next;
        guest.update((c) => (c[disk] = formatDrive(volid, { ...options, size: formatDiskSize(next) })));
      } finally {
        release();
      }
    },
  });
}

/** POST .../template: renames disks to base-* volumes and marks the VM a template. */
export function convertToTemplate(cluster: Cluster, caller: Caller, guest: Guest): TaskRecord {
  if (guest.template) throw fail("you can't convert a template to a template");
  if (guest.status === 'running') throw fail("you can't convert a VM to template if VM is running");
  return cluster.tasks.start({
    node: guest.node,
    type: taskType(guest, 'template'),
    id: String(guest.vmid),
    authid: caller.authid,
    run: async (ctx) => {
      const release = await lockGuestFile(cluster, guest);
      try {
        checkLock(guest);
        await ctx.sleep(1000);
        guest.update((config) => {
          for (const d of guest.drives) {
            if (d.cdrom) continue;
            const pool = cluster.state.pool(storageOf(d.volid), guest.node) as StoragePool;
            const volume = pool.volumes.get(d.volid);
            if (!volume) continue;
            const renamed = d.volid.replace(`vm-${guest.vmid}-disk-`, `base-${guest.vmid}-disk-`);
            pool.volumes.delete(d.volid);
            pool.volumes.set(renamed, { ...volume, volid: renamed });
            ctx.log(`  Renamed "${d.volid.split(':')[1]}" to "${renamed.split(':')[1]}"`);
            config[d.key] = formatDrive(renamed, d.options);
          }
          config['template'] = '1';
        });
      } finally {
        release();
      }
    },
  });
}
