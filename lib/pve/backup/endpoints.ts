/** Backups: `/nodes/{node}/vzdump/*`. */
import { z } from 'zod';
import { defineEndpoint, perm, UpidString, userAll } from '../endpoint.js';
import { pve } from '../params.js';

export const backup = {
  /** vzdump: back up guests of one node to a storage (a task). */
  vzdump: defineEndpoint({
    name: 'vzdump',
    method: 'POST',
    path: '/nodes/{node}/vzdump',
    params: {
      // Optional in PVE's schema (vzdump on the CLI runs on its own node); the path always carries it.
      node: pve.node().optional(),
      vmid: pve.string({ format: 'pve-vmid-list' }).optional(),
      storage: pve.storageId().optional(),
      mode: pve.enum(['snapshot', 'suspend', 'stop']).optional(),
      compress: pve.enum(['0', '1', 'gzip', 'lzo', 'zstd']).optional(),
      'notes-template': pve.string({ maxLength: 1024, requires: 'storage' }).optional(),
      protected: pve.boolean({ requires: 'storage' }).optional(),
      bwlimit: pve.integer({ minimum: 0 }).optional(),
      lockwait: pve.integer({ minimum: 0 }).optional(),
      remove: pve.boolean().optional(),
    },
    returns: UpidString,
    permission: {
      kind: 'and',
      checks: [perm('/vms/{vmid}', ['VM.Backup']), perm('/storage/{storage}', ['Datastore.AllocateSpace'])],
    },
    permissionNote:
      "PVE checks VM.Backup on each guest and Datastore.AllocateSpace on the storage in the handler (and Sys.Modify on / for bwlimit); the client sends one guest per call, so '/vms/{vmid}' names it.",
    async: true,
  }),
  /** The guest config stored in a backup archive. */
  extractConfig: defineEndpoint({
    name: 'vzdumpExtractConfig',
    method: 'GET',
    path: '/nodes/{node}/vzdump/extractconfig',
    params: { node: pve.node(), volume: pve.string() },
    returns: z.string(),
    permission: userAll,
    permissionNote:
      'PVE checks VM.Backup on the backed-up guest and Datastore.AllocateSpace on the backup storage in the handler, both read from the volume name.',
    async: false,
  }),
} as const;
