/**
 * /nodes/{node}/qemu/* and /nodes/{node}/lxc/*. The calls both types have are answered once
 * here for either type, as lib/pve/guests/ defines them once; what one type does its own way
 * (creating, migrating) and the calls only one type has are given per type below.
 */
import type { z } from 'zod';
import { lxc } from '../../lib/pve/lxc/endpoints.js';
import { paramInfo } from '../../lib/pve/params.js';
import { qemu } from '../../lib/pve/qemu/endpoints.js';
import type { Caller, Cluster } from '../cluster.js';
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
import type { TaskRecord } from '../tasks.js';
import type { HandlerContext, Handlers } from './context.js';

const guestResources = { qemu, lxc };

/** The calls both guest types have, by their key in guestEndpoints (`list`, `config`, `start`, ...). */
type SharedCall = keyof typeof qemu & keyof typeof lxc;

/** A shared call's handler sees either type's parameters, so a type's own ones must be asked for (`'vmstate' in params`). */
type SharedHandler<C extends SharedCall> = (
  ctx: HandlerContext<z.output<(typeof qemu)[C]['params']> | z.output<(typeof lxc)[C]['params']>>,
) => unknown;

/** What a guest type does its own way on the calls both types have. */
interface GuestBehaviour {
  create: (cluster: Cluster, caller: Caller, node: string, params: Record<string, unknown>) => TaskRecord;
  migratePreconditions: (cluster: Cluster, guest: Guest) => Record<string, unknown>;
}

/** The guest of `type` a call names by node and VMID. */
function guestAt(type: GuestType): (cluster: Cluster, params: { node: string; vmid: number }) => Guest {
  return (cluster, params) => cluster.state.guestOn(params.node, params.vmid, type);
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
  const shape = guestResources[type].updateConfig.params.shape as Record<string, z.ZodType>;
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

/** The handlers of the calls both types have, for one type, under that type's endpoint names (`qemuStart`, `lxcStart`). */
function guestHandlers(type: GuestType, own: GuestBehaviour): Handlers {
  const at = guestAt(type);
  const shared: { [C in Exclude<SharedCall, 'migrate'>]: SharedHandler<C> } = {
    list: ({ cluster, params, can }) => guestList(cluster, params.node, type, can),
    create: ({ cluster, caller, params, can }) => {
      mayWrite(can, type, params);
      return own.create(cluster, caller, params.node, params).upid;
    },
    config: ({ cluster, params }) => configOf(at(cluster, params), params.snapshot, params.current),
    updateConfig: async ({ cluster, params, can }) => {
      const guest = at(cluster, params);
      mayWrite(can, type, params);
      await updateConfig(cluster, guest, params);
      return null;
    },
    destroy: ({ cluster, caller, params }) =>
      destroyGuest(cluster, caller, at(cluster, params), {
        purge: params.purge,
        destroyUnreferencedDisks: params['destroy-unreferenced-disks'],
        skiplock: 'skiplock' in params ? params.skiplock : undefined,
      }).upid,
    status: ({ cluster, params }) => guestStatus(cluster, at(cluster, params)),
    start: ({ cluster, caller, params }) =>
      startGuest(cluster, caller, at(cluster, params), { skiplock: params.skiplock ?? false }).upid,
    stop: ({ cluster, caller, params }) =>
      stopGuest(cluster, caller, at(cluster, params), { skiplock: params.skiplock ?? false }).upid,
    // A container's shutdown takes no skiplock.
    shutdown: ({ cluster, caller, params }) =>
      shutdownGuest(cluster, caller, at(cluster, params), {
        skiplock: 'skiplock' in params ? (params.skiplock ?? false) : false,
      }).upid,
    reboot: ({ cluster, caller, params }) => rebootGuest(cluster, caller, at(cluster, params)).upid,
    snapshots: ({ cluster, params }) => listSnapshots(at(cluster, params)),
    // Only a VM's snapshot can hold its RAM (vmstate).
    snapshot: ({ cluster, caller, params }) =>
      createSnapshot(
        cluster,
        caller,
        at(cluster, params),
        params.snapname,
        params.description,
        'vmstate' in params ? params.vmstate : undefined,
      ).upid,
    deleteSnapshot: ({ cluster, caller, params }) =>
      deleteSnapshot(cluster, caller, at(cluster, params), params.snapname).upid,
    rollback: ({ cluster, caller, params }) =>
      rollbackSnapshot(cluster, caller, at(cluster, params), params.snapname, params.start).upid,
    snapshotConfig: ({ cluster, params }) => configOf(at(cluster, params), params.snapname),
    migratePreconditions: ({ cluster, params }) => own.migratePreconditions(cluster, at(cluster, params)),
  };
  const resource = guestResources[type];
  return Object.fromEntries(
    Object.entries(shared).map(([call, handler]) => [resource[call as keyof typeof shared].name, handler]),
  ) as Handlers;
}

const qemuAt = guestAt('qemu');
const lxcAt = guestAt('lxc');

export const qemuHandlers: Handlers = {
  ...guestHandlers('qemu', { create: createQemu, migratePreconditions: qemuMigratePreconditions }),
  qemuUpdateConfigAsync: async ({ cluster, caller, params, can }) => {
    const guest = qemuAt(cluster, params);
    mayWrite(can, 'qemu', params);
    return (await updateConfigAsync(cluster, caller, guest, params)).upid;
  },
  qemuClone: ({ cluster, caller, params }) =>
    cloneVm(cluster, caller, qemuAt(cluster, params), {
      newid: params.newid,
      ...(params.name !== undefined ? { name: params.name } : {}),
      ...(params.description !== undefined ? { description: params.description } : {}),
      ...(params.full !== undefined ? { full: params.full } : {}),
      ...(params.target !== undefined ? { target: params.target } : {}),
      ...(params.storage !== undefined ? { storage: params.storage } : {}),
      ...(params.format !== undefined ? { format: params.format } : {}),
      ...(params.bwlimit !== undefined ? { bwlimit: params.bwlimit } : {}),
    }).upid,
  qemuTemplate: ({ cluster, caller, params }) => convertToTemplate(cluster, caller, qemuAt(cluster, params)).upid,
  qemuResize: ({ cluster, caller, params }) => {
    const guest = qemuAt(cluster, params);
    if (params.digest !== undefined && params.digest !== guest.digest)
      throw fail('checksum mismatch (file change by other user?)');
    return resizeDisk(cluster, caller, guest, params.disk, params.size).upid;
  },
  qemuMigrate: ({ cluster, caller, params }) =>
    migrateGuest(cluster, caller, qemuAt(cluster, params), {
      target: params.target,
      online: params.online ?? false,
      withLocalDisks: params['with-local-disks'] ?? false,
      force: params.force ?? false,
      ...(params.bwlimit !== undefined ? { bwlimit: params.bwlimit } : {}),
      ...(params.targetstorage !== undefined ? { targetstorage: params.targetstorage } : {}),
    }).upid,
  qemuAgentNetworkInterfaces: ({ cluster, params }) => agentNetworkInterfaces(cluster, qemuAt(cluster, params)),
  qemuPending: ({ cluster, params }) => pendingList(qemuAt(cluster, params)),
};

export const lxcHandlers: Handlers = {
  ...guestHandlers('lxc', { create: createLxc, migratePreconditions: lxcMigratePreconditions }),
  lxcInterfaces: ({ cluster, params }) => lxcInterfaces(lxcAt(cluster, params)),
  lxcMigrate: ({ cluster, caller, params }) =>
    migrateGuest(cluster, caller, lxcAt(cluster, params), {
      target: params.target,
      online: params.online ?? false,
      restart: params.restart ?? false,
      ...(params.bwlimit !== undefined ? { bwlimit: Math.floor(params.bwlimit) } : {}),
      ...(params['target-storage'] !== undefined ? { targetstorage: params['target-storage'] } : {}),
    }).upid,
};
