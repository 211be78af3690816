/**
 * The PVE API endpoints proxmox-manager uses: one definition per call, shared by the client
 * (builds and checks requests, types responses) and the simulator (verifies incoming requests
 * and permissions). Names, types, enums and optional flags follow the official PVE 9.1 schema;
 * test/unit/pve-schema-crosscheck.test.ts holds every definition against it.
 *
 * Config-style endpoints (create, config) carry the subset of PVE's properties we use; every
 * property present is as PVE defines it.
 */
import { z } from 'zod';
import { parseUpid } from './upid.js';
import { decodeParams, encodeValue, indexed, pve, type DecodeResult } from './params.js';
import * as qemuFormats from './formats/qemu.js';
import * as lxcFormats from './formats/lxc.js';
import type { PermissionCheck } from './permissions.js';
import { InvalidRequestError } from './errors.js';

export { checkPermission, permissionPath } from './permissions.js';
export { InvalidRequestError } from './errors.js';
export type { PermissionCheck, PermissionResult, PermissionSubject } from './permissions.js';
export { paramInfo, pveParamSpecs, secretParams } from './params.js';
export type { DecodeResult, PveParamSpec, PveParamType } from './params.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface Endpoint<P extends z.ZodObject = z.ZodObject, R extends z.ZodType = z.ZodType> {
  name: string;
  method: Method;
  /** PVE path below /api2/json, with `{param}` placeholders that are also members of `params`. */
  path: string;
  params: P;
  returns: R;
  permission: PermissionCheck;
  /**
   * Why `permission` is stricter than the schema's `user: all` (the check PVE runs inside the
   * handler rather than declaratively); required whenever it is.
   */
  permissionNote?: string;
  /** Returns a UPID to wait on (lib/pve/tasks.ts). */
  async: boolean;
}

interface EndpointDef<S extends z.ZodRawShape, R extends z.ZodType> extends Omit<Endpoint, 'params' | 'returns'> {
  params: S;
  returns: R;
}

function defineEndpoint<S extends z.ZodRawShape, R extends z.ZodType>(
  def: EndpointDef<S, R>,
): Endpoint<z.ZodObject<S, z.core.$strict>, R> {
  for (const [, name] of def.path.matchAll(/\{(\w+)\}/g)) {
    if (!(name! in def.params)) throw new Error(`${def.name}: path parameter {${name}} is not among its params`);
  }
  return { ...def, params: z.strictObject(def.params) };
}

// ---------------------------------------------------------------------------------------------
// Response building blocks. PVE often renders booleans as 0/1 and adds fields over time, so
// response objects are loose and booleans accept both spellings.

const pveBoolean = z.union([z.boolean(), z.literal(0), z.literal(1)]).transform(Boolean);

export const UpidString = z.string().refine((s) => parseUpid(s) !== undefined, { message: 'must be a PVE UPID' });

const perm = (path: string, privs: string[], opts: { any?: boolean; requireParam?: string } = {}): PermissionCheck => ({
  kind: 'perm',
  path,
  privs,
  ...opts,
});
const userAll: PermissionCheck = { kind: 'user-all' };
const vmPerm = (...privs: string[]) => perm('/vms/{vmid}', privs);
const vmPermAny = (...privs: string[]) => perm('/vms/{vmid}', privs, { any: true });

const node = { node: pve.node() };
const guest = { node: pve.node(), vmid: pve.vmid() };

export const ClusterResource = z.object({
  id: z.string(),
  type: z.enum(['node', 'storage', 'pool', 'qemu', 'lxc', 'openvz', 'sdn', 'network']),
  node: z.string().optional(),
  vmid: z.number().int().optional(),
  name: z.string().optional(),
  status: z.string().optional(),
  storage: z.string().optional(),
  content: z.string().optional(),
  shared: pveBoolean.optional(),
  pool: z.string().optional(),
  maxmem: z.number().optional(),
  mem: z.number().optional(),
  maxcpu: z.number().optional(),
  cpu: z.number().optional(),
  maxdisk: z.number().optional(),
  disk: z.number().optional(),
  template: pveBoolean.optional(),
  tags: z.string().optional(),
  hastate: z.string().optional(),
  uptime: z.number().optional(),
  lock: z.string().optional(),
  plugintype: z.string().optional(),
});
export type ClusterResource = z.output<typeof ClusterResource>;

export const TaskStatus = z.looseObject({
  upid: z.string(),
  node: z.string(),
  pid: z.number().int(),
  pstart: z.number().int(),
  starttime: z.number().int(),
  type: z.string(),
  id: z.string(),
  user: z.string(),
  tokenid: z.string().optional(),
  status: z.enum(['running', 'stopped']),
  /** Only once stopped: `OK`, `WARNINGS: n`, or the error message. */
  exitstatus: z.string().optional(),
});
export type TaskStatus = z.output<typeof TaskStatus>;

const GuestStatus = z.looseObject({
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

const QemuStatus = GuestStatus.extend({
  qmpstatus: z.string().optional(),
  agent: pveBoolean.optional(),
  ha: z.looseObject({ managed: pveBoolean.optional(), state: z.string().optional() }).optional(),
});

const Snapshot = z.looseObject({
  name: z.string(),
  description: z.string().optional(),
  parent: z.string().optional(),
  snaptime: z.number().int().optional(),
  vmstate: pveBoolean.optional(),
});
export type Snapshot = z.output<typeof Snapshot>;

/** `not_allowed_nodes` is keyed by node name (allowed nodes may appear there with `{}`). */
const NotAllowedNode = z.looseObject({
  unavailable_storages: z.array(z.string()).optional(),
  'unavailable-resources': z.array(z.string()).optional(),
  'blocking-ha-resources': z.array(z.looseObject({ sid: z.string(), cause: z.string() })).optional(),
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

export const LxcMigratePreconditions = z.looseObject({
  running: pveBoolean,
  'allowed-nodes': z.array(z.string()).optional(),
  'not-allowed-nodes': z.record(z.string(), NotAllowedNode).optional(),
  'dependent-ha-resources': z.array(z.string()).optional(),
});

/** A guest's configuration: values are strings or numbers, keys as in the config file. */
const GuestConfig = z.looseObject({
  digest: z.string().optional(),
  name: z.string().optional(),
  hostname: z.string().optional(),
  tags: z.string().optional(),
  lock: z.string().optional(),
  template: pveBoolean.optional(),
  protection: pveBoolean.optional(),
});
export type GuestConfig = z.output<typeof GuestConfig>;

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

// ---------------------------------------------------------------------------------------------
// Guest configuration properties (the subset we set), shared by create and config updates.

const qemuConfigProperties = () => ({
  name: pve.string({ format: 'dns-name' }).optional(),
  description: pve.string({ maxLength: 8192 }).optional(),
  tags: pve.string({ format: 'pve-tag-list' }).optional(),
  ostype: pve
    .enum(['other', 'wxp', 'w2k', 'w2k3', 'w2k8', 'wvista', 'win7', 'win8', 'win10', 'win11', 'l24', 'l26', 'solaris'])
    .optional(),
  cores: pve.integer({ minimum: 1 }).optional(),
  sockets: pve.integer({ minimum: 1 }).optional(),
  numa: pve.boolean().optional(),
  cpu: pve.string({ format: 'pve-vm-cpu-conf' }).optional(),
  memory: pve.string({ format: qemuFormats.memory }).optional(),
  balloon: pve.integer({ minimum: 0 }).optional(),
  bios: pve.enum(['seabios', 'ovmf']).optional(),
  machine: pve.string({ format: qemuFormats.machine }).optional(),
  scsihw: pve.enum(['lsi', 'lsi53c810', 'virtio-scsi-pci', 'virtio-scsi-single', 'megasas', 'pvscsi']).optional(),
  ...indexed('scsi', 31, () => pve.string({ format: qemuFormats.scsi }).optional()),
  ...indexed('virtio', 16, () => pve.string({ format: qemuFormats.virtio }).optional()),
  ...indexed('sata', 6, () => pve.string({ format: qemuFormats.sata }).optional()),
  ...indexed('ide', 4, () => pve.string({ format: qemuFormats.ide }).optional()),
  efidisk0: pve.string({ format: qemuFormats.efidisk }).optional(),
  tpmstate0: pve.string({ format: qemuFormats.tpmstate }).optional(),
  ...indexed('net', 32, () => pve.string({ format: qemuFormats.net }).optional()),
  ...indexed('hostpci', 16, () => pve.string({ format: 'pve-qm-hostpci' }).optional()),
  // PVE allows usb5..usb13 only for some machine versions and OS types.
  ...indexed('usb', 5, () => pve.string({ format: qemuFormats.usb }).optional()),
  ...indexed('serial', 4, () => pve.string({ pattern: '(/dev/.+|socket)' }).optional()),
  vga: pve.string({ format: qemuFormats.vga }).optional(),
  boot: pve.string({ format: 'pve-qm-boot' }).optional(),
  agent: pve.string({ format: qemuFormats.agent }).optional(),
  onboot: pve.boolean().optional(),
  protection: pve.boolean().optional(),
  template: pve.boolean().optional(),
  hotplug: pve.string({ format: 'pve-hotplug-features' }).optional(),
  citype: pve.enum(['configdrive2', 'nocloud', 'opennebula']).optional(),
  ciuser: pve.string().optional(),
  cicustom: pve.string({ format: 'pve-qm-cicustom' }).optional(),
  /** URL-encoded public keys, one per line. */
  sshkeys: pve.string({ format: 'urlencoded' }).optional(),
  nameserver: pve.string({ format: 'address-list' }).optional(),
  searchdomain: pve.string().optional(),
  ...indexed('ipconfig', 32, () => pve.string({ format: 'pve-qm-ipconfig' }).optional()),
  // The rest of PVE's VM properties: accepted and verified, not set by our own operations.
  acpi: pve.boolean().optional(),
  affinity: pve.string({ format: 'pve-cpuset' }).optional(),
  'allow-ksm': pve.boolean().optional(),
  'amd-sev': pve.string({ format: 'pve-qemu-sev-fmt' }).optional(),
  arch: pve.enum(['x86_64', 'aarch64']).optional(),
  args: pve.string().optional(),
  audio0: pve.string({ format: qemuFormats.audio }).optional(),
  autostart: pve.boolean().optional(),
  bootdisk: pve.string({ format: 'pve-qm-bootdisk', pattern: '(ide|sata|scsi|virtio)\\d+' }).optional(),
  cdrom: pve.string({ format: 'pve-qm-ide' }).optional(),
  /** PVE stores it hashed and answers `**********` for it. */
  cipassword: pve.string({ secret: true }).optional(),
  ciupgrade: pve.boolean().optional(),
  cpulimit: pve.number({ minimum: 0, maximum: 128 }).optional(),
  cpuunits: pve.integer({ minimum: 1, maximum: 262144 }).optional(),
  freeze: pve.boolean().optional(),
  hookscript: pve.string({ format: 'pve-volume-id' }).optional(),
  hugepages: pve.enum(['any', '2', '1024']).optional(),
  'intel-tdx': pve.string({ format: 'pve-qemu-tdx-fmt' }).optional(),
  ivshmem: pve.string({ format: qemuFormats.ivshmem }).optional(),
  keephugepages: pve.boolean().optional(),
  keyboard: pve
    .enum([
      'de',
      'de-ch',
      'da',
      'en-gb',
      'en-us',
      'es',
      'fi',
      'fr',
      'fr-be',
      'fr-ca',
      'fr-ch',
      'hu',
      'is',
      'it',
      'ja',
      'lt',
      'mk',
      'nl',
      'no',
      'pl',
      'pt',
      'pt-br',
      'sv',
      'sl',
      'tr',
    ])
    .optional(),
  kvm: pve.boolean().optional(),
  localtime: pve.boolean().optional(),
  lock: pve
    .enum([
      'backup',
      'clone',
      'create',
      'migrate',
      'rollback',
      'snapshot',
      'snapshot-delete',
      'suspending',
      'suspended',
    ])
    .optional(),
  migrate_downtime: pve.number({ minimum: 0 }).optional(),
  migrate_speed: pve.integer({ minimum: 0 }).optional(),
  ...indexed('numa', 8, () => pve.string({ format: qemuFormats.numa }).optional()),
  ...indexed('parallel', 3, () => pve.string({ pattern: '/dev/parport\\d+|/dev/usb/lp\\d+' }).optional()),
  reboot: pve.boolean().optional(),
  rng0: pve.string({ format: 'pve-qm-rng' }).optional(),
  shares: pve.integer({ minimum: 0, maximum: 50000 }).optional(),
  smbios1: pve.string({ format: 'pve-qm-smbios1', maxLength: 512 }).optional(),
  smp: pve.integer({ minimum: 1 }).optional(),
  spice_enhancements: pve.string({ format: qemuFormats.spiceEnhancements }).optional(),
  startdate: pve.string({ pattern: '(now|\\d{4}-\\d{1,2}-\\d{1,2}(T\\d{1,2}:\\d{1,2}:\\d{1,2})?)' }).optional(),
  startup: pve.string({ format: 'pve-startup-order' }).optional(),
  tablet: pve.boolean().optional(),
  tdf: pve.boolean().optional(),
  ...indexed('unused', 256, () => pve.string({ format: qemuFormats.unused }).optional()),
  vcpus: pve.integer({ minimum: 1 }).optional(),
  ...indexed('virtiofs', 10, () => pve.string({ format: qemuFormats.virtiofs }).optional()),
  vmgenid: pve.string({ pattern: '(?:[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}|[01])' }).optional(),
  vmstatestorage: pve.storageId().optional(),
  watchdog: pve.string({ format: 'pve-qm-watchdog' }).optional(),
});

const lxcConfigProperties = () => ({
  hostname: pve.string({ format: 'dns-name', maxLength: 255 }).optional(),
  description: pve.string({ maxLength: 8192 }).optional(),
  tags: pve.string({ format: 'pve-tag-list' }).optional(),
  cores: pve.integer({ minimum: 1, maximum: 8192 }).optional(),
  memory: pve.integer({ minimum: 16 }).optional(),
  swap: pve.integer({ minimum: 0 }).optional(),
  rootfs: pve.string({ format: lxcFormats.rootfs }).optional(),
  ...indexed('mp', 256, () => pve.string({ format: lxcFormats.mp }).optional()),
  ...indexed('net', 32, () => pve.string({ format: lxcFormats.net }).optional()),
  nameserver: pve.string({ format: 'lxc-ip-with-ll-iface-list' }).optional(),
  searchdomain: pve.string({ format: 'dns-name-list' }).optional(),
  features: pve.string({ format: lxcFormats.features }).optional(),
  onboot: pve.boolean().optional(),
  protection: pve.boolean().optional(),
  unprivileged: pve.boolean().optional(),
  // The rest of PVE's container properties: accepted and verified, not set by our own operations.
  arch: pve.enum(['amd64', 'i386', 'arm64', 'armhf', 'riscv32', 'riscv64']).optional(),
  cmode: pve.enum(['shell', 'console', 'tty']).optional(),
  console: pve.boolean().optional(),
  cpulimit: pve.number({ minimum: 0, maximum: 8192 }).optional(),
  cpuunits: pve.integer({ minimum: 0, maximum: 500000 }).optional(),
  debug: pve.boolean().optional(),
  ...indexed('dev', 256, () => pve.string({ format: lxcFormats.dev }).optional()),
  entrypoint: pve.string({ pattern: '(?^:[^\\x00-\\x08\\x10-\\x1F\\x7F]+)' }).optional(),
  env: pve
    .string({ pattern: '(?^:(?:\\w+=[^\\x00-\\x08\\x10-\\x1F\\x7F]*)(?:\\0\\w+=[^\\x00-\\x08\\x10-\\x1F\\x7F]*)*)' })
    .optional(),
  hookscript: pve.string({ format: 'pve-volume-id' }).optional(),
  lock: pve
    .enum([
      'backup',
      'create',
      'destroyed',
      'disk',
      'fstrim',
      'migrate',
      'mounted',
      'rollback',
      'snapshot',
      'snapshot-delete',
    ])
    .optional(),
  ostype: pve
    .enum([
      'debian',
      'devuan',
      'ubuntu',
      'centos',
      'fedora',
      'opensuse',
      'archlinux',
      'alpine',
      'gentoo',
      'nixos',
      'unmanaged',
    ])
    .optional(),
  startup: pve.string({ format: 'pve-startup-order' }).optional(),
  template: pve.boolean().optional(),
  timezone: pve.string({ format: 'pve-ct-timezone' }).optional(),
  tty: pve.integer({ minimum: 0, maximum: 6 }).optional(),
  ...indexed('unused', 256, () => pve.string({ format: lxcFormats.unused }).optional()),
});

const configUpdateControls = () => ({
  digest: pve.digest().optional(),
  delete: pve.string({ format: 'pve-configid-list' }).optional(),
  revert: pve.string({ format: 'pve-configid-list' }).optional(),
});

/** VM config updates also take these (containers' do not). */
const qemuUpdateControls = () => ({
  force: pve.boolean({ requires: 'delete' }).optional(),
  skiplock: pve.boolean().optional(),
});

const qemuDisk = () =>
  pve.enum([
    ...(['ide0', 'ide1', 'ide2', 'ide3'] as const),
    ...Array.from({ length: 31 }, (_, i) => `scsi${i}`),
    ...Array.from({ length: 16 }, (_, i) => `virtio${i}`),
    ...Array.from({ length: 6 }, (_, i) => `sata${i}`),
    'efidisk0',
    'tpmstate0',
  ] as [string, ...string[]]);

const configPermissionNote =
  "PVE also checks privileges per changed property inside the handler; we enforce the schema's any-of check.";

// ---------------------------------------------------------------------------------------------

export const endpoints = {
  // cluster ---------------------------------------------------------------------------------
  version: defineEndpoint({
    name: 'version',
    method: 'GET',
    path: '/version',
    params: {},
    returns: z.looseObject({ version: z.string(), release: z.string(), repoid: z.string() }),
    permission: userAll,
    async: false,
  }),
  clusterResources: defineEndpoint({
    name: 'clusterResources',
    method: 'GET',
    path: '/cluster/resources',
    params: { type: pve.enum(['vm', 'storage', 'node', 'sdn']).optional() },
    returns: z.array(ClusterResource),
    permission: userAll,
    async: false,
  }),
  clusterStatus: defineEndpoint({
    name: 'clusterStatus',
    method: 'GET',
    path: '/cluster/status',
    params: {},
    returns: z.array(
      z.looseObject({
        id: z.string(),
        name: z.string(),
        type: z.enum(['cluster', 'node']),
        ip: z.string().optional(),
        local: pveBoolean.optional(),
        nodeid: z.number().int().optional(),
        online: pveBoolean.optional(),
        quorate: pveBoolean.optional(),
        nodes: z.number().int().optional(),
      }),
    ),
    permission: perm('/', ['Sys.Audit']),
    async: false,
  }),
  clusterNextId: defineEndpoint({
    name: 'clusterNextId',
    method: 'GET',
    path: '/cluster/nextid',
    params: { vmid: pve.vmid().optional() },
    // PVE renders the id as a string; the client normalises it.
    returns: z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]),
    permission: userAll,
    async: false,
  }),
  haResources: defineEndpoint({
    name: 'haResources',
    method: 'GET',
    path: '/cluster/ha/resources',
    params: { type: pve.enum(['ct', 'vm']).optional() },
    returns: z.array(
      z.looseObject({
        sid: z.string(),
        type: z.string().optional(),
        state: z.string().optional(),
        group: z.string().optional(),
        comment: z.string().optional(),
      }),
    ),
    permission: perm('/', ['Sys.Audit']),
    async: false,
  }),
  haRules: defineEndpoint({
    name: 'haRules',
    method: 'GET',
    path: '/cluster/ha/rules',
    params: {
      resource: pve.string().optional(),
      type: pve.enum(['node-affinity', 'resource-affinity']).optional(),
    },
    returns: z.array(
      z.looseObject({
        rule: z.string(),
        type: z.string().optional(),
        resources: z.string().optional(),
        nodes: z.string().optional(),
        affinity: z.string().optional(),
        strict: pveBoolean.optional(),
        disable: pveBoolean.optional(),
      }),
    ),
    permission: perm('/', ['Sys.Audit']),
    async: false,
  }),

  // nodes -----------------------------------------------------------------------------------
  nodes: defineEndpoint({
    name: 'nodes',
    method: 'GET',
    path: '/nodes',
    params: {},
    returns: z.array(
      z.looseObject({
        node: z.string(),
        status: z.enum(['unknown', 'online', 'offline']),
        cpu: z.number().optional(),
        maxcpu: z.number().int().optional(),
        mem: z.number().optional(),
        maxmem: z.number().optional(),
        uptime: z.number().optional(),
        ssl_fingerprint: z.string().optional(),
      }),
    ),
    permission: userAll,
    async: false,
  }),
  nodeStatus: defineEndpoint({
    name: 'nodeStatus',
    method: 'GET',
    path: '/nodes/{node}/status',
    params: node,
    returns: z.looseObject({
      cpu: z.number(),
      cpuinfo: z.looseObject({
        cores: z.number().int(),
        cpus: z.number().int(),
        sockets: z.number().int(),
        model: z.string(),
      }),
      memory: z.looseObject({
        total: z.number(),
        used: z.number(),
        free: z.number(),
        available: z.number().optional(),
      }),
      loadavg: z.array(z.string()).optional(),
      uptime: z.number().optional(),
      pveversion: z.string().optional(),
    }),
    permission: perm('/nodes/{node}', ['Sys.Audit']),
    async: false,
  }),

  // tasks -----------------------------------------------------------------------------------
  taskStatus: defineEndpoint({
    name: 'taskStatus',
    method: 'GET',
    path: '/nodes/{node}/tasks/{upid}/status',
    params: { node: pve.node(), upid: pve.string() },
    returns: TaskStatus,
    permission: { kind: 'or', checks: [{ kind: 'task-owner' }, perm('/nodes/{node}', ['Sys.Audit'])] },
    permissionNote: "The task's owner may read it; anyone else needs Sys.Audit on the node.",
    async: false,
  }),
  taskLog: defineEndpoint({
    name: 'taskLog',
    method: 'GET',
    path: '/nodes/{node}/tasks/{upid}/log',
    params: {
      node: pve.node(),
      upid: pve.string(),
      start: pve.integer({ minimum: 0 }).optional(),
      limit: pve.integer({ minimum: 0 }).optional(),
      download: pve.boolean().optional(),
    },
    // The envelope also carries `total` (the number of lines), beside `data`.
    returns: z.array(z.looseObject({ n: z.number().int(), t: z.string() })),
    permission: { kind: 'or', checks: [{ kind: 'task-owner' }, perm('/nodes/{node}', ['Sys.Audit'])] },
    permissionNote: "The task's owner may read it; anyone else needs Sys.Audit on the node.",
    async: false,
  }),
  taskList: defineEndpoint({
    name: 'taskList',
    method: 'GET',
    path: '/nodes/{node}/tasks',
    params: {
      node: pve.node(),
      errors: pve.boolean().optional(),
      limit: pve.integer({ minimum: 0 }).optional(),
      start: pve.integer({ minimum: 0 }).optional(),
      since: pve.integer().optional(),
      until: pve.integer().optional(),
      source: pve.enum(['archive', 'active', 'all']).optional(),
      statusfilter: pve.string({ format: 'pve-task-status-type-list' }).optional(),
      typefilter: pve.string().optional(),
      userfilter: pve.string().optional(),
      vmid: pve.vmid().optional(),
    },
    returns: z.array(
      z.looseObject({
        upid: z.string(),
        node: z.string(),
        type: z.string(),
        id: z.string(),
        user: z.string(),
        starttime: z.number().int(),
        endtime: z.number().int().optional(),
        status: z.string().optional(),
      }),
    ),
    permission: userAll,
    async: false,
  }),
  taskStop: defineEndpoint({
    name: 'taskStop',
    method: 'DELETE',
    path: '/nodes/{node}/tasks/{upid}',
    params: { node: pve.node(), upid: pve.string() },
    returns: z.null(),
    permission: { kind: 'or', checks: [{ kind: 'task-owner' }, perm('/nodes/{node}', ['Sys.Modify'])] },
    permissionNote: "The task's owner may stop it; anyone else needs Sys.Modify on the node.",
    async: false,
  }),

  // qemu ------------------------------------------------------------------------------------
  qemuList: defineEndpoint({
    name: 'qemuList',
    method: 'GET',
    path: '/nodes/{node}/qemu',
    params: { node: pve.node(), full: pve.boolean().optional() },
    returns: z.array(GuestStatus),
    permission: userAll,
    async: false,
  }),
  qemuCreate: defineEndpoint({
    name: 'qemuCreate',
    method: 'POST',
    path: '/nodes/{node}/qemu',
    params: {
      ...guest,
      pool: pve.string({ format: 'pve-poolid' }).optional(),
      storage: pve.storageId().optional(),
      start: pve.boolean().optional(),
      archive: pve.string({ maxLength: 255 }).optional(),
      bwlimit: pve.integer({ minimum: 0 }).optional(),
      force: pve.boolean({ requires: 'archive' }).optional(),
      'ha-managed': pve.boolean().optional(),
      'import-working-storage': pve.storageId().optional(),
      'live-restore': pve.boolean().optional(),
      unique: pve.boolean({ requires: 'archive' }).optional(),
      ...qemuConfigProperties(),
    },
    returns: UpidString,
    permission: {
      kind: 'or',
      checks: [perm('/vms/{vmid}', ['VM.Allocate']), perm('/pool/{pool}', ['VM.Allocate'], { requireParam: 'pool' })],
    },
    permissionNote:
      'PVE checks VM.Allocate on /vms/{vmid} or the pool in the handler (plus Datastore.AllocateSpace and SDN.Use on what the VM uses, which we do not model).',
    async: true,
  }),
  qemuConfig: defineEndpoint({
    name: 'qemuConfig',
    method: 'GET',
    path: '/nodes/{node}/qemu/{vmid}/config',
    params: { ...guest, current: pve.boolean().optional(), snapshot: pve.configId().optional() },
    returns: GuestConfig,
    permission: vmPerm('VM.Audit'),
    async: false,
  }),
  qemuUpdateConfig: defineEndpoint({
    name: 'qemuUpdateConfig',
    method: 'PUT',
    path: '/nodes/{node}/qemu/{vmid}/config',
    params: { ...guest, ...configUpdateControls(), ...qemuUpdateControls(), ...qemuConfigProperties() },
    returns: z.null(),
    permission: vmPermAny(
      'VM.Config.Disk',
      'VM.Config.CDROM',
      'VM.Config.CPU',
      'VM.Config.Memory',
      'VM.Config.Network',
      'VM.Config.HWType',
      'VM.Config.Options',
      'VM.Config.Cloudinit',
    ),
    permissionNote: configPermissionNote,
    async: false,
  }),
  qemuUpdateConfigAsync: defineEndpoint({
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
    permission: vmPermAny(
      'VM.Config.Disk',
      'VM.Config.CDROM',
      'VM.Config.CPU',
      'VM.Config.Memory',
      'VM.Config.Network',
      'VM.Config.HWType',
      'VM.Config.Options',
      'VM.Config.Cloudinit',
    ),
    permissionNote: configPermissionNote,
    async: true,
  }),
  qemuDestroy: defineEndpoint({
    name: 'qemuDestroy',
    method: 'DELETE',
    path: '/nodes/{node}/qemu/{vmid}',
    params: {
      ...guest,
      purge: pve.boolean().optional(),
      'destroy-unreferenced-disks': pve.boolean().optional(),
      skiplock: pve.boolean().optional(),
    },
    returns: UpidString,
    permission: vmPerm('VM.Allocate'),
    async: true,
  }),
  qemuStatus: defineEndpoint({
    name: 'qemuStatus',
    method: 'GET',
    path: '/nodes/{node}/qemu/{vmid}/status/current',
    params: guest,
    returns: QemuStatus,
    permission: vmPerm('VM.Audit'),
    async: false,
  }),
  qemuStart: defineEndpoint({
    name: 'qemuStart',
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/status/start',
    params: {
      ...guest,
      timeout: pve.integer({ minimum: 0 }).optional(),
      skiplock: pve.boolean().optional(),
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
    returns: UpidString,
    permission: vmPerm('VM.PowerMgmt'),
    async: true,
  }),
  qemuStop: defineEndpoint({
    name: 'qemuStop',
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/status/stop',
    params: {
      ...guest,
      timeout: pve.integer({ minimum: 0 }).optional(),
      keepActive: pve.boolean().optional(),
      'overrule-shutdown': pve.boolean().optional(),
      skiplock: pve.boolean().optional(),
      migratedfrom: pve.node().optional(),
    },
    returns: UpidString,
    permission: vmPerm('VM.PowerMgmt'),
    async: true,
  }),
  qemuShutdown: defineEndpoint({
    name: 'qemuShutdown',
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/status/shutdown',
    params: {
      ...guest,
      timeout: pve.integer({ minimum: 0 }).optional(),
      forceStop: pve.boolean().optional(),
      keepActive: pve.boolean().optional(),
      skiplock: pve.boolean().optional(),
    },
    returns: UpidString,
    permission: vmPerm('VM.PowerMgmt'),
    async: true,
  }),
  qemuReboot: defineEndpoint({
    name: 'qemuReboot',
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/status/reboot',
    params: { ...guest, timeout: pve.integer({ minimum: 0 }).optional() },
    returns: UpidString,
    permission: vmPerm('VM.PowerMgmt'),
    async: true,
  }),
  qemuClone: defineEndpoint({
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
  qemuTemplate: defineEndpoint({
    name: 'qemuTemplate',
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/template',
    params: { ...guest, disk: qemuDisk().optional() },
    returns: UpidString,
    permission: vmPerm('VM.Allocate'),
    async: true,
  }),
  qemuResize: defineEndpoint({
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
  qemuSnapshots: defineEndpoint({
    name: 'qemuSnapshots',
    method: 'GET',
    path: '/nodes/{node}/qemu/{vmid}/snapshot',
    params: guest,
    returns: z.array(Snapshot),
    permission: vmPerm('VM.Audit'),
    async: false,
  }),
  qemuSnapshotCreate: defineEndpoint({
    name: 'qemuSnapshotCreate',
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/snapshot',
    params: {
      ...guest,
      snapname: pve.configId(),
      description: pve.string().optional(),
      vmstate: pve.boolean().optional(),
    },
    returns: UpidString,
    permission: vmPerm('VM.Snapshot'),
    async: true,
  }),
  qemuSnapshotDelete: defineEndpoint({
    name: 'qemuSnapshotDelete',
    method: 'DELETE',
    path: '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}',
    params: { ...guest, snapname: pve.configId(), force: pve.boolean().optional() },
    returns: UpidString,
    permission: vmPerm('VM.Snapshot'),
    async: true,
  }),
  qemuSnapshotRollback: defineEndpoint({
    name: 'qemuSnapshotRollback',
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback',
    params: { ...guest, snapname: pve.configId(), start: pve.boolean().optional() },
    returns: UpidString,
    permission: vmPermAny('VM.Snapshot', 'VM.Snapshot.Rollback'),
    async: true,
  }),
  qemuMigratePreconditions: defineEndpoint({
    name: 'qemuMigratePreconditions',
    method: 'GET',
    path: '/nodes/{node}/qemu/{vmid}/migrate',
    params: { ...guest, target: pve.node().optional() },
    returns: QemuMigratePreconditions,
    permission: vmPerm('VM.Migrate'),
    async: false,
  }),
  qemuMigrate: defineEndpoint({
    name: 'qemuMigrate',
    method: 'POST',
    path: '/nodes/{node}/qemu/{vmid}/migrate',
    params: {
      ...guest,
      target: pve.node(),
      online: pve.boolean().optional(),
      'with-local-disks': pve.boolean().optional(),
      targetstorage: pve.string({ format: 'storage-pair-list' }).optional(),
      bwlimit: pve.integer({ minimum: 0 }).optional(),
      force: pve.boolean().optional(),
      migration_network: pve.string({ format: 'CIDR' }).optional(),
      migration_type: pve.enum(['secure', 'insecure']).optional(),
      'with-conntrack-state': pve.boolean().optional(),
    },
    returns: UpidString,
    permission: vmPerm('VM.Migrate'),
    async: true,
  }),
  qemuAgentNetworkInterfaces: defineEndpoint({
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

  // lxc -------------------------------------------------------------------------------------
  lxcList: defineEndpoint({
    name: 'lxcList',
    method: 'GET',
    path: '/nodes/{node}/lxc',
    params: node,
    returns: z.array(GuestStatus),
    permission: userAll,
    async: false,
  }),
  lxcCreate: defineEndpoint({
    name: 'lxcCreate',
    method: 'POST',
    path: '/nodes/{node}/lxc',
    params: {
      ...guest,
      ostemplate: pve.string({ maxLength: 255 }),
      pool: pve.string({ format: 'pve-poolid' }).optional(),
      storage: pve.storageId().optional(),
      start: pve.boolean().optional(),
      'ssh-public-keys': pve.string().optional(),
      bwlimit: pve.number({ minimum: 0 }).optional(),
      force: pve.boolean().optional(),
      'ha-managed': pve.boolean().optional(),
      'ignore-unpack-errors': pve.boolean().optional(),
      /** The root password, never stored in the config. */
      password: pve.string({ minLength: 5, secret: true }).optional(),
      restore: pve.boolean().optional(),
      unique: pve.boolean({ requires: 'restore' }).optional(),
      ...lxcConfigProperties(),
    },
    returns: UpidString,
    permission: {
      kind: 'or',
      checks: [perm('/vms/{vmid}', ['VM.Allocate']), perm('/pool/{pool}', ['VM.Allocate'], { requireParam: 'pool' })],
    },
    permissionNote:
      'PVE checks VM.Allocate on /vms/{vmid} or the pool in the handler (plus Datastore.AllocateSpace on the storage, which we do not model).',
    async: true,
  }),
  lxcConfig: defineEndpoint({
    name: 'lxcConfig',
    method: 'GET',
    path: '/nodes/{node}/lxc/{vmid}/config',
    params: { ...guest, current: pve.boolean().optional(), snapshot: pve.configId().optional() },
    returns: GuestConfig,
    permission: vmPerm('VM.Audit'),
    async: false,
  }),
  lxcUpdateConfig: defineEndpoint({
    name: 'lxcUpdateConfig',
    method: 'PUT',
    path: '/nodes/{node}/lxc/{vmid}/config',
    params: { ...guest, ...configUpdateControls(), ...lxcConfigProperties() },
    returns: z.null(),
    permission: vmPermAny(
      'VM.Config.Disk',
      'VM.Config.CPU',
      'VM.Config.Memory',
      'VM.Config.Network',
      'VM.Config.Options',
    ),
    permissionNote: configPermissionNote,
    async: false,
  }),
  lxcDestroy: defineEndpoint({
    name: 'lxcDestroy',
    method: 'DELETE',
    path: '/nodes/{node}/lxc/{vmid}',
    params: {
      ...guest,
      purge: pve.boolean().optional(),
      'destroy-unreferenced-disks': pve.boolean().optional(),
      force: pve.boolean().optional(),
    },
    returns: UpidString,
    permission: vmPerm('VM.Allocate'),
    async: true,
  }),
  lxcStatus: defineEndpoint({
    name: 'lxcStatus',
    method: 'GET',
    path: '/nodes/{node}/lxc/{vmid}/status/current',
    params: guest,
    returns: GuestStatus,
    permission: vmPerm('VM.Audit'),
    async: false,
  }),
  lxcStart: defineEndpoint({
    name: 'lxcStart',
    method: 'POST',
    path: '/nodes/{node}/lxc/{vmid}/status/start',
    params: { ...guest, skiplock: pve.boolean().optional(), debug: pve.boolean().optional() },
    returns: UpidString,
    permission: vmPerm('VM.PowerMgmt'),
    async: true,
  }),
  lxcStop: defineEndpoint({
    name: 'lxcStop',
    method: 'POST',
    path: '/nodes/{node}/lxc/{vmid}/status/stop',
    params: { ...guest, skiplock: pve.boolean().optional(), 'overrule-shutdown': pve.boolean().optional() },
    returns: UpidString,
    permission: vmPerm('VM.PowerMgmt'),
    async: true,
  }),
  lxcShutdown: defineEndpoint({
    name: 'lxcShutdown',
    method: 'POST',
    path: '/nodes/{node}/lxc/{vmid}/status/shutdown',
    params: { ...guest, timeout: pve.integer({ minimum: 0 }).optional(), forceStop: pve.boolean().optional() },
    returns: UpidString,
    permission: vmPerm('VM.PowerMgmt'),
    async: true,
  }),
  lxcReboot: defineEndpoint({
    name: 'lxcReboot',
    method: 'POST',
    path: '/nodes/{node}/lxc/{vmid}/status/reboot',
    params: { ...guest, timeout: pve.integer({ minimum: 0 }).optional() },
    returns: UpidString,
    permission: vmPerm('VM.PowerMgmt'),
    async: true,
  }),
  lxcSnapshots: defineEndpoint({
    name: 'lxcSnapshots',
    method: 'GET',
    path: '/nodes/{node}/lxc/{vmid}/snapshot',
    params: guest,
    returns: z.array(Snapshot),
    permission: vmPerm('VM.Audit'),
    async: false,
  }),
  lxcSnapshotCreate: defineEndpoint({
    name: 'lxcSnapshotCreate',
    method: 'POST',
    path: '/nodes/{node}/lxc/{vmid}/snapshot',
    params: { ...guest, snapname: pve.configId(), description: pve.string().optional() },
    returns: UpidString,
    permission: vmPerm('VM.Snapshot'),
    async: true,
  }),
  lxcSnapshotDelete: defineEndpoint({
    name: 'lxcSnapshotDelete',
    method: 'DELETE',
    path: '/nodes/{node}/lxc/{vmid}/snapshot/{snapname}',
    params: { ...guest, snapname: pve.configId(), force: pve.boolean().optional() },
    returns: UpidString,
    permission: vmPerm('VM.Snapshot'),
    async: true,
  }),
  lxcSnapshotRollback: defineEndpoint({
    name: 'lxcSnapshotRollback',
    method: 'POST',
    path: '/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/rollback',
    params: { ...guest, snapname: pve.configId(), start: pve.boolean().optional() },
    returns: UpidString,
    permission: vmPermAny('VM.Snapshot', 'VM.Snapshot.Rollback'),
    async: true,
  }),
  lxcMigratePreconditions: defineEndpoint({
    name: 'lxcMigratePreconditions',
    method: 'GET',
    path: '/nodes/{node}/lxc/{vmid}/migrate',
    params: { ...guest, target: pve.node().optional() },
    returns: LxcMigratePreconditions,
    permission: vmPerm('VM.Migrate'),
    async: false,
  }),
  lxcMigrate: defineEndpoint({
    name: 'lxcMigrate',
    method: 'POST',
    path: '/nodes/{node}/lxc/{vmid}/migrate',
    params: {
      ...guest,
      target: pve.node(),
      online: pve.boolean().optional(),
      restart: pve.boolean().optional(),
      timeout: pve.integer().optional(),
      'target-storage': pve.string({ format: 'storage-pair-list' }).optional(),
      bwlimit: pve.number({ minimum: 0 }).optional(),
    },
    returns: UpidString,
    permission: vmPerm('VM.Migrate'),
    async: true,
  }),

  // storage ---------------------------------------------------------------------------------
  storageList: defineEndpoint({
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
  storageContent: defineEndpoint({
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
  storageDownloadUrl: defineEndpoint({
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
  storageDeleteVolume: defineEndpoint({
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

  // backup ----------------------------------------------------------------------------------
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
  vzdumpExtractConfig: defineEndpoint({
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

  // access ----------------------------------------------------------------------------------
  accessPermissions: defineEndpoint({
    name: 'accessPermissions',
    method: 'GET',
    path: '/access/permissions',
    params: {
      path: pve.string().optional(),
      userid: pve
        .string({
          pattern: '(?^:^(?^:[^\\s:/]+)\\@(?^:[A-Za-z][A-Za-z0-9\\.\\-_]+)(?:!(?^:[A-Za-z][A-Za-z0-9\\.\\-_]+))?$)',
        })
        .optional(),
    },
    /** path -> privilege -> propagate (0/1). */
    returns: z.record(z.string(), z.record(z.string(), pveBoolean)),
    permission: { kind: 'or', checks: [{ kind: 'userid-param' }, perm('/access', ['Sys.Audit'])] },
    permissionNote: "Callers may read their own (and their tokens') permissions; others need Sys.Audit on /access.",
    async: false,
  }),

  // read-only state common clients (proxmoxer, Ansible community.proxmox) ask for -----------
  pools: defineEndpoint({
    name: 'pools',
    method: 'GET',
    path: '/pools',
    params: {
      poolid: pve.string({ format: 'pve-poolid' }).optional(),
      type: pve.enum(['qemu', 'lxc', 'storage'], { requires: 'poolid' }).optional(),
    },
    returns: z.array(
      z.looseObject({
        poolid: z.string(),
        comment: z.string().optional(),
        members: z.array(z.looseObject({ id: z.string() })).optional(),
      }),
    ),
    permission: userAll,
    async: false,
  }),
  storageConfigs: defineEndpoint({
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
  storageStatus: defineEndpoint({
    name: 'storageStatus',
    method: 'GET',
    path: '/nodes/{node}/storage/{storage}/status',
    params: { node: pve.node(), storage: pve.storageId() },
    returns: Storage.omit({ storage: true }),
    permission: perm('/storage/{storage}', ['Datastore.Audit', 'Datastore.AllocateSpace'], { any: true }),
    async: false,
  }),
  clusterTasks: defineEndpoint({
    name: 'clusterTasks',
    method: 'GET',
    path: '/cluster/tasks',
    params: {},
    returns: z.array(TaskStatus.partial().extend({ upid: z.string() })),
    permission: userAll,
    async: false,
  }),
  clusterOptions: defineEndpoint({
    name: 'clusterOptions',
    method: 'GET',
    path: '/cluster/options',
    params: {},
    returns: z.looseObject({}),
    permission: perm('/', ['Sys.Audit']),
    async: false,
  }),
  nodeNetwork: defineEndpoint({
    name: 'nodeNetwork',
    method: 'GET',
    path: '/nodes/{node}/network',
    params: {
      node: pve.node(),
      type: pve
        .enum([
          'bridge',
          'bond',
          'eth',
          'alias',
          'vlan',
          'fabric',
          'OVSBridge',
          'OVSBond',
          'OVSPort',
          'OVSIntPort',
          'vnet',
          'any_bridge',
          'any_local_bridge',
          'include_sdn',
        ])
        .optional(),
    },
    returns: z.array(z.looseObject({ iface: z.string(), type: z.string(), active: pveBoolean.optional() })),
    permission: userAll,
    async: false,
  }),
  nodeTime: defineEndpoint({
    name: 'nodeTime',
    method: 'GET',
    path: '/nodes/{node}/time',
    params: node,
    returns: z.looseObject({ time: z.number().int(), localtime: z.number().int(), timezone: z.string() }),
    permission: perm('/nodes/{node}', ['Sys.Audit']),
    async: false,
  }),
  qemuPending: defineEndpoint({
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
  qemuSnapshotConfig: defineEndpoint({
    name: 'qemuSnapshotConfig',
    method: 'GET',
    path: '/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/config',
    params: { ...guest, snapname: pve.configId() },
    returns: GuestConfig,
    permission: vmPermAny('VM.Snapshot', 'VM.Snapshot.Rollback', 'VM.Audit'),
    async: false,
  }),
  lxcSnapshotConfig: defineEndpoint({
    name: 'lxcSnapshotConfig',
    method: 'GET',
    path: '/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/config',
    params: { ...guest, snapname: pve.configId() },
    returns: GuestConfig,
    permission: vmPermAny('VM.Snapshot', 'VM.Snapshot.Rollback', 'VM.Audit'),
    async: false,
  }),
  lxcInterfaces: defineEndpoint({
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

export type Endpoints = typeof endpoints;
export type EndpointName = keyof Endpoints;
export type ParamsOf<N extends EndpointName> = z.input<Endpoints[N]['params']>;
/** What a call returns to the client, after parsing. */
export type ResultOf<N extends EndpointName> = z.output<Endpoints[N]['returns']>;
/** What PVE (or the simulator) puts in `data` for a call. */
export type AnswerOf<N extends EndpointName> = z.input<Endpoints[N]['returns']>;

/** Verifies raw request parameters (form/query strings or a JSON body, path parameters merged in) as PVE does. */
export function decodeFormParams<E extends Endpoint>(
  endpoint: E,
  raw: Readonly<Record<string, unknown>>,
): DecodeResult<z.output<E['params']>> {
  return decodeParams(endpoint.params, raw) as DecodeResult<z.output<E['params']>>;
}

export interface WireRequest {
  method: Method;
  /** Path below /api2/json, parameters substituted and URI-encoded. */
  path: string;
  /** Remaining parameters as PVE reads them: query string for GET/DELETE, form body for POST/PUT. */
  form: URLSearchParams;
}

/**
 * The wire form of a call. The encoded parameters are verified with the same rules the server
 * applies, so a request PVE would reject fails here, naming the parameter, before it is sent.
 */
export function buildRequest<E extends Endpoint>(endpoint: E, params: z.input<E['params']>): WireRequest {
  const strings: Record<string, string> = {};
  for (const [k, v] of Object.entries(params as Record<string, unknown>)) {
    if (v === undefined) continue;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw new InvalidRequestError(endpoint, { [k]: `cannot send a ${typeof v}` });
    }
    strings[k] = encodeValue(v);
  }
  const checked = decodeFormParams(endpoint, strings);
  if (!checked.ok) throw new InvalidRequestError(endpoint, checked.errors);

  const form = new URLSearchParams();
  const pathParams = new Set<string>();
  const path = endpoint.path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = strings[name];
    if (value === undefined) throw new InvalidRequestError(endpoint, { [name]: 'path parameter is missing' });
    pathParams.add(name);
    return encodeURIComponent(value);
  });
  for (const [k, v] of Object.entries(strings)) if (!pathParams.has(k)) form.append(k, v);
  return { method: endpoint.method, path, form };
}

const routes = Object.values(endpoints).map((endpoint) => {
  const names: string[] = [];
  const source = endpoint.path.replace(/\{(\w+)\}/g, (_, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { endpoint: endpoint as Endpoint, re: new RegExp(`^${source}$`), names };
});

/**
 * The endpoint a request addresses and its decoded path parameters, for the server side.
 * Undefined means PVE would answer 501 `Method '<METHOD> <path>' not implemented`.
 */
export function matchEndpoint(
  method: string,
  path: string,
): { endpoint: Endpoint; pathParams: Record<string, string> } | undefined {
  for (const route of routes) {
    if (route.endpoint.method !== method) continue;
    const m = route.re.exec(path);
    if (!m) continue;
    const pathParams = Object.fromEntries(route.names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)]));
    return { endpoint: route.endpoint, pathParams };
  }
  return undefined;
}
