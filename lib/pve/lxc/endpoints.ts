/**
 * Containers: `/nodes/{node}/lxc/*`. The calls VMs have too come from guestEndpoints with the
 * container's own parameters; reading its interfaces only containers have.
 */
import { z } from 'zod';
import { defineEndpoint, pveBoolean } from '../endpoint.js';
import { GuestStatus, guest, guestEndpoints, NotAllowedNode, vmPerm } from '../guests/endpoints.js';
import { pve } from '../params.js';
import { lxcConfigProperties } from './config.js';

export const LxcMigratePreconditions = z.looseObject({
  running: pveBoolean,
  'allowed-nodes': z.array(z.string()).optional(),
  'not-allowed-nodes': z.record(z.string(), NotAllowedNode).optional(),
  'dependent-ha-resources': z.array(z.string()).optional(),
});

export const lxc = {
  ...guestEndpoints('lxc', {
    list: {},
    create: {
      ostemplate: pve.string({ maxLength: 255 }),
      'ssh-public-keys': pve.string().optional(),
      bwlimit: pve.number({ minimum: 0 }).optional(),
      force: pve.boolean().optional(),
      'ignore-unpack-errors': pve.boolean().optional(),
      /** The root password, never stored in the config. */
      password: pve.string({ minLength: 5, secret: true }).optional(),
      restore: pve.boolean().optional(),
      unique: pve.boolean({ requires: 'restore' }).optional(),
    },
    createPermissionNote: 'plus Datastore.AllocateSpace on the storage, which we do not model',
    config: lxcConfigProperties(),
    update: {},
    updatePrivileges: ['VM.Config.Disk', 'VM.Config.CPU', 'VM.Config.Memory', 'VM.Config.Network', 'VM.Config.Options'],
    destroy: { force: pve.boolean().optional() },
    status: GuestStatus,
    start: { debug: pve.boolean().optional() },
    stop: {},
    shutdown: {},
    snapshotCreate: {},
    migratePreconditions: LxcMigratePreconditions,
    migrate: {
      restart: pve.boolean().optional(),
      timeout: pve.integer().optional(),
      'target-storage': pve.string({ format: 'storage-pair-list' }).optional(),
      bwlimit: pve.number({ minimum: 0 }).optional(),
    },
  }),
  interfaces: defineEndpoint({
    name: 'lxcInterfaces',
    method: 'GET',
    path: '/nodes/{node}/lxc/{vmid}/interfaces',
    params: guest,
    returns: z.array(
      z.looseObject({
        name: z.string(),
        hwaddr: z.string(),
        inet: z.string().optional(),
        inet6: z.string().optional(),
      }),
    ),
    permission: vmPerm('VM.Audit'),
    async: false,
  }),
} as const;
