/**
 * VMs: `/nodes/{node}/qemu/*`. The calls containers have too come from guestEndpoints with
 * the VM's own parameters; the rest (clone, template, resize, the guest agent, pending
 * changes, the asynchronous config update) only VMs have.
 */
import { z } from 'zod';
import { defineEndpoint, perm, pveBoolean, UpidString } from '../endpoint.js';
import * as qemuFormats from './formats.js';
import {
  configPermissionNote,
  configUpdateControls,
  GuestStatus,
  guest,
  guestEndpoints,
  NotAllowedNode,
  vmPerm,
  vmPermAny,
} from '../guests/endpoints.js';
import { pve } from '../params.js';
import { qemuConfigProperties } from './config.js';

const QemuStatus = GuestStatus.extend({
  qmpstatus: z.string().optional(),
  agent: pveBoolean.optional(),
  ha: z.looseObject({ managed: pveBoolean.optional(), state: z.string().optional() }).optional(),
});

export const QemuMigratePreconditions = z.looseObject({
  running: pveBoolean,
  allowed_nodes: z.array(z.string()).optional(),
  not_allowed_nodes: z.record(z.string(), NotAllowedNode).optional(),
  local_disks: z.array(
    z.looseObject({
      volid: z.string(),
      size: z.number().optional(),
      cdrom: pveBoolean.optional(),
      is_unused: pveBoolean.optional(),
      shared: pveBoolean.optional(),
    }),
  ),
  local_resources: z.array(z.string()),
  'mapped-resources': z.array(z.string()).optional(),
  'dependent-ha-resources': z.array(z.string()).optional(),
});
export type QemuMigratePreconditions = z.output<typeof QemuMigratePreconditions>;

/** VM config updates also take these (containers' do not). */
const qemuUpdateControls = () => ({
  force: pve.boolean({ requires: 'delete' }).optional(),
  skiplock: pve.boolean().optional(),
});

const updatePrivileges = [
  'VM.Config.Disk',
  'VM.Config.CDROM',
  'VM.Config.CPU',
  'VM.Config.Memory',
  'VM.Config.Network',
  'VM.Config.HWType',
  'VM.Config.Options',
  'VM.Config.Cloudinit',
];

const qemuDisk = () =>
  pve.enum([
    ...(['ide0', 'ide1', 'ide2', 'ide3'] as const),
    ...Array.from({ length: 31 }, (_, i) => `scsi${i}`),
    ...Array.from({ length: 16 }, (_, i) => `virtio${i}`),
    ...Array.from({ length: 6 }, (_, i) => `sata${i}`),
    'efidisk0',
    'tpmstate0',
  ] as [string, ...string[]]);

export const qemu = {
  ...guestEndpoints('qemu', {
    list: { full: pve.boolean().optional() },
    create: {
      archive: pve.string({ maxLength: 255 }).optional(),
      bwlimit: pve.integer({ minimum: 0 }).optional(),
      force: pve.boolean({ requires: 'archive' }).optional(),
      'import-working-storage': pve.storageId().optional(),
      'live-restore': pve.boolean().optional(),
      unique: pve.boolean({ requires: 'archive' }).optional(),
    },
    createPermissionNote: 'plus Datastore.AllocateSpace and SDN.Use on what the VM uses, which we do not model',
    config: qemuConfigProperties(),
    update: qemuUpdateControls(),
    updatePrivileges,
    destroy: { skiplock: pve.boolean().optional() },
    status: QemuStatus,
    start: {
      timeout: pve.integer({ minimum: 0 }).optional(),
      'force-cpu': pve.string().optional(),
      machine: pve.string({ format: qemuFormats.machine }).optional(),
      migratedfrom: pve.node().optional(),
      migration_network: pve.string({ format: 'CIDR' }).optional(),
      migration_type: pve.enum(['secure', 'insecure']).optional(),
      'nets-host-mtu': pve.string({ pattern: 'net\\d+=\\d+(,net\\d+=\\d+)*' }).optional(),
      stateuri: pve.string({ maxLength: 128 }).optional(),
      targetstorage: pve.string({ format: 'storage-pair-list' }).optional(),
      'with-conntrack-state': pve.boolean().optional(),
    },
    stop: {
      timeout: pve.integer({ minimum: 0 }).optional(),
      keepActive: pve.boolean().optional(),
      migratedfrom: pve.node().optional(),
    },
    shutdown: { keepActive: pve.boolean().optional(), skiplock: pve.boolean().optional() },
    snapshotCreate: { vmstate: pve.boolean().optional() },
    migratePreconditions: QemuMigratePreconditions,
    migrate: {
      'with-local-disks': pve.boolean().optional(),
      targetstorage: pve.string({ format: 'storage-pair-list' }).optional(),
      bwlimit: pve.integer({ minimum: 0 }).optional(),
      force: pve.boolean().optional(),
      migration_network: pve.string({ format: 'CIDR' }).optional(),
      migration_type: pve.enum(['secure', 'insecure']).optional(),
      'with-conntrack-state': pve.boolean().optional(),
    },
  }),
  /** Config change that may return a UPID (POST), e.g. when disks are allocated. */
  updateConfigAsync: defineEndpoint({
    name: 'qemuUpdateConfigAsync',
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/config',
    params: {
      ...guest,
      ...configUpdateControls(),
      ...qemuUpdateControls(),
      background_delay: pve.integer({ minimum: 1, maximum: 30 }).optional(),
      'import-working-storage': pve.storageId().optional(),
      ...qemuConfigProperties(),
    },
    // A UPID when PVE had work to do in a worker (e.g. allocating disks), otherwise null.
    returns: z.union([UpidString, z.null()]),
    permission: vmPermAny(...updatePrivileges),
    permissionNote: configPermissionNote,
    async: true,
  }),
  clone: defineEndpoint({
    name: 'qemuClone',
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/clone',
    params: {
      ...guest,
      newid: pve.vmid(),
      name: pve.string({ format: 'dns-name' }).optional(),
      description: pve.string().optional(),
      full: pve.boolean().optional(),
      format: pve.enum(['raw', 'qcow2', 'vmdk']).optional(),
      pool: pve.string({ format: 'pve-poolid' }).optional(),
      snapname: pve.configId().optional(),
      storage: pve.storageId().optional(),
      target: pve.node().optional(),
      bwlimit: pve.integer({ minimum: 0 }).optional(),
    },
    returns: UpidString,
    permission: {
      kind: 'and',
      checks: [
        vmPerm('VM.Clone'),
        {
          kind: 'or',
          checks: [
            perm('/vms/{newid}', ['VM.Allocate']),
            perm('/pool/{pool}', ['VM.Allocate'], { requireParam: 'pool' }),
          ],
        },
      ],
    },
    async: true,
  }),
  template: defineEndpoint({
    name: 'qemuTemplate',
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/template',
    params: { ...guest, disk: qemuDisk().optional() },
    returns: UpidString,
    permission: vmPerm('VM.Allocate'),
    async: true,
  }),
  resize: defineEndpoint({
    name: 'qemuResize',
    method: 'PUT',
    path: '/nodes/{node}/qemu/{vmid}/resize',
    params: {
      ...guest,
      disk: qemuDisk(),
      size: pve.string({ pattern: '\\+?\\d+(\\.\\d+)?[KMGT]?' }),
      digest: pve.digest().optional(),
      skiplock: pve.boolean().optional(),
    },
    returns: UpidString,
    permission: vmPerm('VM.Config.Disk'),
    async: true,
  }),
  agentNetworkInterfaces: defineEndpoint({
    name: 'qemuAgentNetworkInterfaces',
    method: 'GET',
    path: '/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces',
    params: guest,
    returns: z.looseObject({
      result: z.array(
        z.looseObject({
          name: z.string(),
          'hardware-address': z.string().optional(),
          'ip-addresses': z
            .array(
              z.looseObject({
                'ip-address': z.string(),
                'ip-address-type': z.enum(['ipv4', 'ipv6']),
                prefix: z.number().int(),
              }),
            )
            .optional(),
        }),
      ),
    }),
    permission: vmPermAny('VM.GuestAgent.Audit', 'VM.GuestAgent.Unrestricted'),
    async: false,
  }),
  /** Changes that wait for the VM's next start. */
  pending: defineEndpoint({
    name: 'qemuPending',
    method: 'GET',
    path: '/nodes/{node}/qemu/{vmid}/pending',
    params: guest,
    /** Every config key: `value` now, `pending` after the next start, `delete` 1 (2: forced) when it goes. */
    returns: z.array(
      z.looseObject({
        key: z.string(),
        value: z.unknown().optional(),
        pending: z.unknown().optional(),
        delete: z.number().int().optional(),
      }),
    ),
    permission: vmPerm('VM.Audit'),
    async: false,
  }),
} as const;
