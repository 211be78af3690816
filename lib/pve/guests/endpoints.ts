/**
 * What VMs (`/nodes/{node}/qemu`) and containers (`/nodes/{node}/lxc`) share: the same calls
 * at the same paths below their type, with the same answers and permission checks. They are
 * defined once here, for either type; qemu/ and lxc/ pass each type's own parameters (where
 * PVE's schema differs) and add the calls only one type has.
 */
import { z } from 'zod';
import { defineEndpoint, perm, pveBoolean, UpidString, userAll } from '../endpoint.js';
import { pve } from '../params.js';

export type GuestType = 'qemu' | 'lxc';

export const vmPerm = (...privs: string[]) => perm('/vms/{vmid}', privs);
export const vmPermAny = (...privs: string[]) => perm('/vms/{vmid}', privs, { any: true });

/** The node and VMID every call on one guest names. */
export const guest = { node: pve.node(), vmid: pve.vmid() };

export const GuestStatus = z.looseObject({
  vmid: z.number().int(),
  status: z.enum(['stopped', 'running']),
  name: z.string().optional(),
  lock: z.string().optional(),
  tags: z.string().optional(),
  template: pveBoolean.optional(),
  uptime: z.number().optional(),
  cpu: z.number().optional(),
  cpus: z.number().optional(),
  mem: z.number().optional(),
  maxmem: z.number().optional(),
  maxdisk: z.number().optional(),
});
export type GuestStatus = z.output<typeof GuestStatus>;

export const Snapshot = z.looseObject({
  name: z.string(),
  description: z.string().optional(),
  parent: z.string().optional(),
  snaptime: z.number().int().optional(),
  vmstate: pveBoolean.optional(),
});
export type Snapshot = z.output<typeof Snapshot>;

/** A guest's configuration: values are strings or numbers, keys as in the config file. */
export const GuestConfig = z.looseObject({
  digest: z.string().optional(),
  name: z.string().optional(),
  hostname: z.string().optional(),
  tags: z.string().optional(),
  lock: z.string().optional(),
  template: pveBoolean.optional(),
  protection: pveBoolean.optional(),
});
export type GuestConfig = z.output<typeof GuestConfig>;

/** Why a migration target is refused; `not_allowed_nodes` is keyed by node name (allowed nodes may appear there with `{}`). */
export const NotAllowedNode = z.looseObject({
  unavailable_storages: z.array(z.string()).optional(),
  'unavailable-resources': z.array(z.string()).optional(),
  'blocking-ha-resources': z.array(z.looseObject({ sid: z.string(), cause: z.string() })).optional(),
});

/** What every config update takes besides the properties. */
export const configUpdateControls = () => ({
  digest: pve.digest().optional(),
  delete: pve.string({ format: 'pve-configid-list' }).optional(),
  revert: pve.string({ format: 'pve-configid-list' }).optional(),
});

export const configPermissionNote =
  "PVE also checks privileges per changed property inside the handler; we enforce the schema's any-of check.";

/** One guest type's own parameters and answers on the calls both types have. */
export interface GuestVariant {
  /** Listing a node's guests. */
  list: z.ZodRawShape;
  /** Creating (or restoring) one, besides its configuration properties. */
  create: z.ZodRawShape;
  /** What PVE checks inside the create handler besides VM.Allocate. */
  createPermissionNote: string;
  /** The configuration properties (the subset we use), taken by create and config updates. */
  config: z.ZodRawShape;
  /** What a config update takes besides configUpdateControls() and the properties. */
  update: z.ZodRawShape;
  /** The schema's any-of privileges for a config update. */
  updatePrivileges: string[];
  destroy: z.ZodRawShape;
  /** The answer of status/current. */
  status: z.ZodType;
  start: z.ZodRawShape;
  stop: z.ZodRawShape;
  shutdown: z.ZodRawShape;
  snapshotCreate: z.ZodRawShape;
  /** The answer of GET migrate. */
  migratePreconditions: z.ZodType;
  /** What a migration takes besides the target and `online`. */
  migrate: z.ZodRawShape;
}

/** One parameter shape from a shared part and a guest type's own (a spread would not keep the generic part's type). */
function withVariant<A extends z.ZodRawShape, B extends z.ZodRawShape>(shared: A, own: B): A & B {
  return { ...shared, ...own };
}

/** The calls VMs and containers share, keyed by their client method name, for one guest type. */
export function guestEndpoints<T extends GuestType, V extends GuestVariant>(type: T, v: V) {
  // `v.list` would be typed as the constraint's ZodRawShape; an indexed read keeps V's own keys.
  const own = <K extends keyof GuestVariant>(key: K): V[K] => v[key];
  const all = `/nodes/{node}/${type}` as const;
  const one = `${all}/{vmid}` as const;
  return {
    list: defineEndpoint({
      name: `${type}List` as const,
      method: 'GET',
      path: all,
      params: withVariant({ node: pve.node() }, own('list')),
      returns: z.array(GuestStatus),
      permission: userAll,
      async: false,
    }),
    create: defineEndpoint({
      name: `${type}Create` as const,
      method: 'POST',
      path: all,
      params: withVariant(
        {
          ...guest,
          pool: pve.string({ format: 'pve-poolid' }).optional(),
          storage: pve.storageId().optional(),
          start: pve.boolean().optional(),
          'ha-managed': pve.boolean().optional(),
        },
        withVariant(own('create'), own('config')),
      ),
      returns: UpidString,
      permission: {
        kind: 'or',
        checks: [perm('/vms/{vmid}', ['VM.Allocate']), perm('/pool/{pool}', ['VM.Allocate'], { requireParam: 'pool' })],
      },
      permissionNote: `PVE checks VM.Allocate on /vms/{vmid} or the pool in the handler (${v.createPermissionNote}).`,
      async: true,
    }),
    config: defineEndpoint({
      name: `${type}Config` as const,
      method: 'GET',
      path: `${one}/config`,
      params: { ...guest, current: pve.boolean().optional(), snapshot: pve.configId().optional() },
      returns: GuestConfig,
      permission: vmPerm('VM.Audit'),
      async: false,
    }),
    /** Synchronous config change (PUT). */
    updateConfig: defineEndpoint({
      name: `${type}UpdateConfig` as const,
      method: 'PUT',
      path: `${one}/config`,
      params: withVariant({ ...guest, ...configUpdateControls() }, withVariant(own('update'), own('config'))),
      returns: z.null(),
      permission: vmPermAny(...v.updatePrivileges),
      permissionNote: configPermissionNote,
      async: false,
    }),
    destroy: defineEndpoint({
      name: `${type}Destroy` as const,
      method: 'DELETE',
      path: one,
      params: withVariant(
        { ...guest, purge: pve.boolean().optional(), 'destroy-unreferenced-disks': pve.boolean().optional() },
        own('destroy'),
      ),
      returns: UpidString,
      permission: vmPerm('VM.Allocate'),
      async: true,
    }),
    status: defineEndpoint({
      name: `${type}Status` as const,
      method: 'GET',
      path: `${one}/status/current`,
      params: guest,
      returns: own('status'),
      permission: vmPerm('VM.Audit'),
      async: false,
    }),
    start: defineEndpoint({
      name: `${type}Start` as const,
      method: 'POST',
      path: `${one}/status/start`,
      params: withVariant({ ...guest, skiplock: pve.boolean().optional() }, own('start')),
      returns: UpidString,
      permission: vmPerm('VM.PowerMgmt'),
      async: true,
    }),
    stop: defineEndpoint({
      name: `${type}Stop` as const,
      method: 'POST',
      path: `${one}/status/stop`,
      params: withVariant(
        { ...guest, skiplock: pve.boolean().optional(), 'overrule-shutdown': pve.boolean().optional() },
        own('stop'),
      ),
      returns: UpidString,
      permission: vmPerm('VM.PowerMgmt'),
      async: true,
    }),
    shutdown: defineEndpoint({
      name: `${type}Shutdown` as const,
      method: 'POST',
      path: `${one}/status/shutdown`,
      params: withVariant(
        { ...guest, timeout: pve.integer({ minimum: 0 }).optional(), forceStop: pve.boolean().optional() },
        own('shutdown'),
      ),
      returns: UpidString,
      permission: vmPerm('VM.PowerMgmt'),
      async: true,
    }),
    reboot: defineEndpoint({
      name: `${type}Reboot` as const,
      method: 'POST',
      path: `${one}/status/reboot`,
      params: { ...guest, timeout: pve.integer({ minimum: 0 }).optional() },
      returns: UpidString,
      permission: vmPerm('VM.PowerMgmt'),
      async: true,
    }),
    snapshots: defineEndpoint({
      name: `${type}Snapshots` as const,
      method: 'GET',
      path: `${one}/snapshot`,
      params: guest,
      returns: z.array(Snapshot),
      permission: vmPerm('VM.Audit'),
      async: false,
    }),
    snapshot: defineEndpoint({
      name: `${type}SnapshotCreate` as const,
      method: 'POST',
      path: `${one}/snapshot`,
      params: withVariant(
        { ...guest, snapname: pve.configId(), description: pve.string().optional() },
        own('snapshotCreate'),
      ),
      returns: UpidString,
      permission: vmPerm('VM.Snapshot'),
      async: true,
    }),
    deleteSnapshot: defineEndpoint({
      name: `${type}SnapshotDelete` as const,
      method: 'DELETE',
      path: `${one}/snapshot/{snapname}`,
      params: { ...guest, snapname: pve.configId(), force: pve.boolean().optional() },
      returns: UpidString,
      permission: vmPerm('VM.Snapshot'),
      async: true,
    }),
    rollback: defineEndpoint({
      name: `${type}SnapshotRollback` as const,
      method: 'POST',
      path: `${one}/snapshot/{snapname}/rollback`,
      params: { ...guest, snapname: pve.configId(), start: pve.boolean().optional() },
      returns: UpidString,
      permission: vmPermAny('VM.Snapshot', 'VM.Snapshot.Rollback'),
      async: true,
    }),
    snapshotConfig: defineEndpoint({
      name: `${type}SnapshotConfig` as const,
      method: 'GET',
      path: `${one}/snapshot/{snapname}/config`,
      params: { ...guest, snapname: pve.configId() },
      returns: GuestConfig,
      permission: vmPermAny('VM.Snapshot', 'VM.Snapshot.Rollback', 'VM.Audit'),
      async: false,
    }),
    migratePreconditions: defineEndpoint({
      name: `${type}MigratePreconditions` as const,
      method: 'GET',
      path: `${one}/migrate`,
      params: { ...guest, target: pve.node().optional() },
      returns: own('migratePreconditions'),
      permission: vmPerm('VM.Migrate'),
      async: false,
    }),
    migrate: defineEndpoint({
      name: `${type}Migrate` as const,
      method: 'POST',
      path: `${one}/migrate`,
      params: withVariant({ ...guest, target: pve.node(), online: pve.boolean().optional() }, own('migrate')),
      returns: UpidString,
      permission: vmPerm('VM.Migrate'),
      async: true,
    }),
  };
}
