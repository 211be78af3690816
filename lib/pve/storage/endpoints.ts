/** Storage: a node's view of it, `/nodes/{node}/storage/*`, and storage.cfg, `/storage`. */
import { z } from 'zod';
import { defineEndpoint, perm, pveBoolean, UpidString, userAll } from '../endpoint.js';
import { pve } from '../params.js';

const Storage = z.looseObject({
  storage: z.string(),
  type: z.string(),
  content: z.string(),
  active: pveBoolean.optional(),
  enabled: pveBoolean.optional(),
  shared: pveBoolean.optional(),
  avail: z.number().optional(),
  total: z.number().optional(),
  used: z.number().optional(),
});

const StorageVolume = z.looseObject({
  volid: z.string(),
  format: z.string(),
  size: z.number(),
  content: z.string().optional(),
  vmid: z.number().int().optional(),
  ctime: z.number().optional(),
  /** Backup volumes: their notes, protection and guest type (`qemu`/`lxc`). */
  notes: z.string().optional(),
  protected: pveBoolean.optional(),
  subtype: z.string().optional(),
});
export type StorageVolume = z.output<typeof StorageVolume>;

export const storage = {
  list: defineEndpoint({
    name: 'storageList',
    method: 'GET',
    path: '/nodes/{node}/storage',
    params: {
      node: pve.node(),
      content: pve.string({ format: 'pve-storage-content-list' }).optional(),
      enabled: pve.boolean().optional(),
      format: pve.boolean().optional(),
      storage: pve.storageId().optional(),
      target: pve.node().optional(),
    },
    returns: z.array(Storage),
    permission: userAll,
    async: false,
  }),
  content: defineEndpoint({
    name: 'storageContent',
    method: 'GET',
    path: '/nodes/{node}/storage/{storage}/content',
    params: {
      node: pve.node(),
      storage: pve.storageId(),
      content: pve.string({ format: 'pve-storage-content' }).optional(),
      vmid: pve.vmid().optional(),
    },
    returns: z.array(StorageVolume),
    permission: perm('/storage/{storage}', ['Datastore.Audit', 'Datastore.AllocateSpace'], { any: true }),
    async: false,
  }),
  downloadUrl: defineEndpoint({
    name: 'storageDownloadUrl',
    method: 'POST',
    path: '/nodes/{node}/storage/{storage}/download-url',
    params: {
      node: pve.node(),
      storage: pve.storageId(),
      url: pve.string({ pattern: 'https?://.*' }),
      content: pve.enum(['iso', 'vztmpl', 'import'], { format: 'pve-storage-content' }),
      filename: pve.string({ maxLength: 255 }),
      checksum: pve.string({ requires: 'checksum-algorithm' }).optional(),
      'checksum-algorithm': pve
        .enum(['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512'], { requires: 'checksum' })
        .optional(),
      'verify-certificates': pve.boolean().optional(),
      compression: pve.string().optional(),
    },
    returns: UpidString,
    permission: {
      kind: 'and',
      checks: [
        perm('/storage/{storage}', ['Datastore.AllocateTemplate']),
        { kind: 'or', checks: [perm('/', ['Sys.Audit', 'Sys.Modify']), perm('/nodes/{node}', ['Sys.AccessNetwork'])] },
      ],
    },
    async: true,
  }),
  deleteVolume: defineEndpoint({
    name: 'storageDeleteVolume',
    method: 'DELETE',
    path: '/nodes/{node}/storage/{storage}/content/{volume}',
    params: {
      node: pve.node(),
      // Optional in PVE's schema (the volume id may name the storage); the path always carries it.
      storage: pve.storageId().optional(),
      volume: pve.string(),
      delay: pve.integer({ minimum: 1, maximum: 30 }).optional(),
    },
    // A UPID, or null when PVE finished within `delay` seconds.
    returns: z.union([UpidString, z.null()]),
    permission: perm('/storage/{storage}', ['Datastore.Allocate']),
    permissionNote:
      'PVE checks Datastore.Allocate on the storage in the handler (backup volumes also allow Datastore.AllocateSpace with VM.Backup, which we do not model).',
    async: true,
  }),
  status: defineEndpoint({
    name: 'storageStatus',
    method: 'GET',
    path: '/nodes/{node}/storage/{storage}/status',
    params: { node: pve.node(), storage: pve.storageId() },
    returns: Storage.omit({ storage: true }),
    permission: perm('/storage/{storage}', ['Datastore.Audit', 'Datastore.AllocateSpace'], { any: true }),
    async: false,
  }),
} as const;

/** storage.cfg: every storage, whichever node has it (`/storage`). */
export const storageConfig = {
  list: defineEndpoint({
    name: 'storageConfigs',
    method: 'GET',
    path: '/storage',
    params: {
      type: pve
        .enum([
          'btrfs',
          'cephfs',
          'cifs',
          'dir',
          'esxi',
          'iscsi',
          'iscsidirect',
          'lvm',
          'lvmthin',
          'nfs',
          'pbs',
          'rbd',
          'zfs',
          'zfspool',
        ])
        .optional(),
    },
    returns: z.array(
      z.looseObject({
        storage: z.string(),
        type: z.string(),
        content: z.string().optional(),
        shared: pveBoolean.optional(),
      }),
    ),
    permission: userAll,
    async: false,
  }),
} as const;
