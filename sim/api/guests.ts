/** /nodes/{node}/qemu/* and /nodes/{node}/lxc/* */
import type { z } from 'zod';
import { paramInfo } from '../../lib/pve/params.js';
import { endpoints } from '../../lib/pve/registry.js';
import type { Cluster } from '../cluster.js';
import { fail } from '../errors.js';
import type { GuestType } from '../guest-config.js';
import { cloneVm } from '../ops/clone.js';
import {
  convertToTemplate,
  createLxc,
  createQemu,
  destroyGuest,
  MASKED_SECRET,
  requestedChanges,
  resizeDisk,
  SECRET_KEYS,
  updateConfig,
  updateConfigAsync,
} from '../ops/config.js';
import { checkConfigWrites } from '../ops/config-permissions.js';
import type { Can } from '../ops/views.js';
import { lxcMigratePreconditions, migrateGuest, qemuMigratePreconditions } from '../ops/migration.js';
import { rebootGuest, shutdownGuest, startGuest, stopGuest } from '../ops/power.js';
import { createSnapshot, deleteSnapshot, listSnapshots, rollbackSnapshot } from '../ops/snapshots.js';
import { lxcInterfaces } from '../ops/node-config.js';
import { pendingList } from '../ops/pending.js';
import { agentNetworkInterfaces, guestList, guestStatus } from '../ops/views.js';
import type { Guest } from '../state.js';
import type { Handlers } from './context.js';

function guestAt(cluster: Cluster, params: { node: string; vmid: number }, type: GuestType): Guest {
  return cluster.state.guestOn(params.node, params.vmid, type);
}

/** The handler-side permission checks for what a create or config request writes. */
function mayWrite(can: Can, type: GuestType, params: { vmid: number } & Record<string, unknown>): void {
  const { sets, deletes } = requestedChanges(params);
  // A container created without rootfs gets one on `storage` (default local).
  if (type === 'lxc' && 'ostemplate' in params && !sets.some(([k]) => k === 'rootfs')) {
    sets.push(['rootfs', `${typeof params['storage'] === 'string' ? params['storage'] : 'local'}:4`]);
  }
  checkConfigWrites(can, type, params.vmid, sets, deletes);
}

/**
 * PVE reads a config file through check_type, so integer and boolean options come back as
 * JSON numbers (`template: 1`, `cores: 2`), not as the file's text; secrets come back masked.
 */
function typedConfig(type: GuestType, config: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const shape = (type === 'qemu' ? endpoints.qemuUpdateConfig : endpoints.lxcUpdateConfig).params.shape as Record<
    string,
    z.ZodType
  >;
  return Object.fromEntries(
    Object.entries(config).map(([key, value]) => {
      if (SECRET_KEYS.has(key)) return [key, MASKED_SECRET];
      const field = shape[key];
      if (!field || typeof value !== 'string' || !/^-?\d+(\.\d+)?$/.test(value)) return [key, value];
      const { type: pveType } = paramInfo(field).spec;
      return [key, pveType === 'string' ? value : Number(value)];
    }),
  );
}

/** GET .../config: with pending changes unless `current` (PVE's default), or a snapshot's. */
function configOf(guest: Guest, snapshot: string | undefined, current = false): Record<string, unknown> {
  if (snapshot === undefined) {
    return { ...typedConfig(guest.type, current ? guest.config : guest.configWithPending), digest: guest.digest };
  }
  const snap = guest.snapshots.get(snapshot);
  if (!snap) throw fail(`snapshot '${snapshot}' does not exist`);
  return {
    ...typedConfig(guest.type, snap.config),
    snaptime: snap.snaptime,
    ...(snap.parent ? { parent: snap.parent } : {}),
    digest: guest.digest,
  };
}

export const qemuHandlers: Handlers = {
  qemuList: ({ cluster, params, can }) => guestList(cluster, params.node, 'qemu', can),
  qemuCreate: ({ cluster, caller, params, can }) => {
    mayWrite(can, 'qemu', params);
    return createQemu(cluster, caller, params.node, params).upid;
  },
  qemuConfig: ({ cluster, params }) => configOf(guestAt(cluster, params, 'qemu'), params.snapshot, params.current),
  qemuUpdateConfig: async ({ cluster, params, can }) => {
    const guest = guestAt(cluster, params, 'qemu');
    mayWrite(can, 'qemu', params);
    await updateConfig(cluster, guest, params);
    return null;
  },
  qemuUpdateConfigAsync: async ({ cluster, caller, params, can }) => {
    const guest = guestAt(cluster, params, 'qemu');
    mayWrite(can, 'qemu', params);
    return (await updateConfigAsync(cluster, caller, guest, params)).upid;
  },
  qemuDestroy: ({ cluster, caller, params }) =>
    destroyGuest(cluster, caller, guestAt(cluster, params, 'qemu'), {
      ...(params.purge !== undefined ? { purge: params.purge } : {}),
      ...(params['destroy-unreferenced-disks'] !== undefined
        ? { destroyUnreferencedDisks: params['destroy-unreferenced-disks'] }
        : {}),
      ...(params.skiplock !== undefined ? { skiplock: params.skiplock } : {}),
    }).upid,
  qemuStatus: ({ cluster, params }) => guestStatus(cluster, guestAt(cluster, params, 'qemu')),
  qemuStart: ({ cluster, caller, params }) =>
    startGuest(cluster, caller, guestAt(cluster, params, 'qemu'), { skiplock: params.skiplock ?? false }).upid,
  qemuStop: ({ cluster, caller, params }) =>
    stopGuest(cluster, caller, guestAt(cluster, params, 'qemu'), { skiplock: params.skiplock ?? false }).upid,
  qemuShutdown: ({ cluster, caller, params }) =>
    shutdownGuest(cluster, caller, guestAt(cluster, params, 'qemu'), { skiplock: params.skiplock ?? false }).upid,
  qemuReboot: ({ cluster, caller, params }) => rebootGuest(cluster, caller, guestAt(cluster, params, 'qemu')).upid,
  qemuClone: ({ cluster, caller, params }) =>
    cloneVm(cluster, caller, guestAt(cluster, params, 'qemu'), {
      newid: params.newid,
      ...(params.name !== undefined ? { name: params.name } : {}),
      ...(params.description !== undefined ? { description: params.description } : {}),
      ...(params.full !== undefined ? { full: params.full } : {}),
      ...(params.target !== undefined ? { target: params.target } : {}),
      ...(params.storage !== undefined ? { storage: params.storage } : {}),
      ...(params.format !== undefined ? { format: params.format } : {}),
      ...(params.bwlimit !== undefined ? { bwlimit: params.bwlimit } : {}),
    }).upid,
  qemuTemplate: ({ cluster, caller, params }) =>
    convertToTemplate(cluster, caller, guestAt(cluster, params, 'qemu')).upid,
  qemuResize: ({ cluster, caller, params }) => {
    const guest = guestAt(cluster, params, 'qemu');
    if (params.digest !== undefined && params.digest !== guest.digest)
      throw fail('checksum mismatch (file change by other user?)');
    return resizeDisk(cluster, caller, guest, params.disk, params.size).upid;
  },
  qemuSnapshots: ({ cluster, params }) => listSnapshots(guestAt(cluster, params, 'qemu')),
  qemuSnapshotCreate: ({ cluster, caller, params }) =>
    createSnapshot(
      cluster,
      caller,
      guestAt(cluster, params, 'qemu'),
      params.snapname,
      params.description,
      params.vmstate,
    ).upid,
  qemuSnapshotDelete: ({ cluster, caller, params }) =>
    deleteSnapshot(cluster, caller, guestAt(cluster, params, 'qemu'), params.snapname).upid,
  qemuSnapshotRollback: ({ cluster, caller, params }) =>
    rollbackSnapshot(cluster, caller, guestAt(cluster, params, 'qemu'), params.snapname, params.start).upid,
  qemuMigratePreconditions: ({ cluster, params }) =>
    qemuMigratePreconditions(cluster, guestAt(cluster, params, 'qemu')),
  qemuMigrate: ({ cluster, caller, params }) =>
    migrateGuest(cluster, caller, guestAt(cluster, params, 'qemu'), {
      target: params.target,
      online: params.online ?? false,
      withLocalDisks: params['with-local-disks'] ?? false,
      force: params.force ?? false,
      ...(params.bwlimit !== undefined ? { bwlimit: params.bwlimit } : {}),
      ...(params.targetstorage !== undefined ? { targetstorage: params.targetstorage } : {}),
    }).upid,
  qemuAgentNetworkInterfaces: ({ cluster, params }) =>
    agentNetworkInterfaces(cluster, guestAt(cluster, params, 'qemu')),
  qemuPending: ({ cluster, params }) => pendingList(guestAt(cluster, params, 'qemu')),
  qemuSnapshotConfig: ({ cluster, params }) => configOf(guestAt(cluster, params, 'qemu'), params.snapname),
};

export const lxcHandlers: Handlers = {
  lxcList: ({ cluster, params, can }) => guestList(cluster, params.node, 'lxc', can),
  lxcCreate: ({ cluster, caller, params, can }) => {
    mayWrite(can, 'lxc', params);
    return createLxc(cluster, caller, params.node, params).upid;
  },
  lxcConfig: ({ cluster, params }) => configOf(guestAt(cluster, params, 'lxc'), params.snapshot, params.current),
  lxcUpdateConfig: async ({ cluster, params, can }) => {
    const guest = guestAt(cluster, params, 'lxc');
    mayWrite(can, 'lxc', params);
    await updateConfig(cluster, guest, params);
    return null;
  },
  lxcDestroy: ({ cluster, caller, params }) =>
    destroyGuest(cluster, caller, guestAt(cluster, params, 'lxc'), {
      ...(params.purge !== undefined ? { purge: params.purge } : {}),
      ...(params['destroy-unreferenced-disks'] !== undefined
        ? { destroyUnreferencedDisks: params['destroy-unreferenced-disks'] }
        : {}),
    }).upid,
  lxcStatus: ({ cluster, params }) => guestStatus(cluster, guestAt(cluster, params, 'lxc')),
  lxcStart: ({ cluster, caller, params }) =>
    startGuest(cluster, caller, guestAt(cluster, params, 'lxc'), { skiplock: params.skiplock ?? false }).upid,
  lxcStop: ({ cluster, caller, params }) =>
    stopGuest(cluster, caller, guestAt(cluster, params, 'lxc'), { skiplock: params.skiplock ?? false }).upid,
  lxcShutdown: ({ cluster, caller, params }) => shutdownGuest(cluster, caller, guestAt(cluster, params, 'lxc')).upid,
  lxcReboot: ({ cluster, caller, params }) => rebootGuest(cluster, caller, guestAt(cluster, params, 'lxc')).upid,
  lxcSnapshots: ({ cluster, params }) => listSnapshots(guestAt(cluster, params, 'lxc')),
  lxcSnapshotConfig: ({ cluster, params }) => configOf(guestAt(cluster, params, 'lxc'), params.snapname),
  lxcInterfaces: ({ cluster, params }) => lxcInterfaces(guestAt(cluster, params, 'lxc')),
  lxcSnapshotCreate: ({ cluster, caller, params }) =>
    createSnapshot(cluster, caller, guestAt(cluster, params, 'lxc'), params.snapname, params.description).upid,
  lxcSnapshotDelete: ({ cluster, caller, params }) =>
    deleteSnapshot(cluster, caller, guestAt(cluster, params, 'lxc'), params.snapname).upid,
  lxcSnapshotRollback: ({ cluster, caller, params }) =>
    rollbackSnapshot(cluster, caller, guestAt(cluster, params, 'lxc'), params.snapname, params.start).upid,
  lxcMigratePreconditions: ({ cluster, params }) => lxcMigratePreconditions(cluster, guestAt(cluster, params, 'lxc')),
  lxcMigrate: ({ cluster, caller, params }) =>
    migrateGuest(cluster, caller, guestAt(cluster, params, 'lxc'), {
      target: params.target,
      online: params.online ?? false,
      restart: params.restart ?? false,
      ...(params.bwlimit !== undefined ? { bwlimit: Math.floor(params.bwlimit) } : {}),
      ...(params['target-storage'] !== undefined ? { targetstorage: params['target-storage'] } : {}),
    }).upid,
};
