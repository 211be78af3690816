/**
 * A fleet manifest file: the guests an environment should have, validated by one schema.
 *
 *   environment: home
 *   claims: { tags: [fleet], vmids: 3000-3099 }   # what the manifest owns (and may delete)
 *   defaults: { kind: qemu, source: { template: tpl-debian-13 }, cores: 2 }
 *   guests:
 *     - { name: web-01, memory: 2G, tags: [web], power: running }
 *
 * Every guest field is optional; what a guest sets (itself or through `defaults`) is what the
 * manifest manages, unless `managed` narrows it — operators keep manual changes to the rest.
 * Problems read as `guests.3.memory: reason`; lib/manifest/load.ts adds the file and line.
 */
import { z } from 'zod';
import { SERVICE_PATTERN } from '../lifecycle/naming.js';

/** Fields a manifest can manage; each maps to the PVE config keys it compares and sets. */
export const MANAGED_FIELDS = [
  'source',
  'node',
  'cores',
  'memory',
  'disks',
  'network',
  'tags',
  'cloud_init',
  'power',
  'onboot',
  'description',
] as const;
export type ManagedField = (typeof MANAGED_FIELDS)[number];

const UNITS: Record<string, number> = { K: 1 / 1024 ** 2, M: 1 / 1024, G: 1, T: 1024 };

/** `32G`, `1T`, `512M` -> GiB (as a number); undefined when it is not a size. */
function gibOf(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([KMGT])(?:i?B)?$/i.exec(text.trim());
  return m ? Number(m[1]) * UNITS[m[2]!.toUpperCase()]! : undefined;
}

/** Disk sizes: a number is GiB; a string carries its unit. PVE allocates whole GiB. */
const DiskSize = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const gib = typeof value === 'number' ? value : gibOf(value);
  if (gib === undefined || !Number.isInteger(gib) || gib < 1 || gib > 65_536) {
    ctx.addIssue({
      code: 'custom',
      message: `'${value}' is not a disk size in whole GiB such as 32 or 32G (1G to 64T)`,
    });
    return z.NEVER;
  }
  return gib;
});

/** Memory: a number is MiB (as in PVE configs); a string carries its unit. */
const MemoryMiB = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const mib = typeof value === 'number' ? value : (gibOf(value) ?? NaN) * 1024;
  if (!Number.isInteger(mib) || mib < 16 || mib > 8_388_608) {
    ctx.addIssue({ code: 'custom', message: `'${value}' is not a memory size such as 2048 (MiB), 512M or 4G` });
    return z.NEVER;
  }
  return mib;
});

const vmid = z.number().int().min(100).max(999_999_999);
const dnsName = z
  .string()
  .regex(/^(?=.{1,63}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?$/i, 'must be a DNS name (letters, digits, dashes; at most 63)');
const nodeName = z.string().regex(/^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/, 'must be a PVE node name');
const storageId = z.string().regex(/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i, 'must be a PVE storage id');
const pveTag = z.string().regex(/^[a-z0-9_][a-z0-9_\-+.]*$/i, 'must be a PVE tag (letters, digits, _ - + .)');
const bridge = z.string().regex(/^[a-zA-Z][a-zA-Z0-9_.-]{0,14}$/, 'must be a bridge name such as vmbr0');
const ipv4Cidr = z
  .string()
  .regex(/^(\d{1,3}\.){3}\d{1,3}\/\d{1,2}$/, "must be 'dhcp' or an address with prefix such as 10.0.0.5/24");
const ipv4 = z.ipv4({ message: 'must be an IPv4 address' });
const volumeId = (content: string) =>
  z
    .string()
    .regex(
      new RegExp(`^[a-z][a-z0-9\\-_.]*[a-z0-9]:${content}/[^/\\s]+$`, 'i'),
      `must be a volume id such as 'local:${content}/<file>'`,
    );

export const VmidRange = z
  .string()
  .regex(/^\d+-\d+$/, 'must be a range such as 3000-3099')
  .transform((s) => {
    const [min, max] = s.split('-').map(Number) as [number, number];
    return { min, max };
  })
  .refine((r) => r.min >= 100 && r.max <= 999_999_999 && r.min <= r.max, {
    message: 'must lie within 100-999999999 with the lower bound first',
  });

const Source = z
  .strictObject({
    /** VMs: a template to clone, by name or VMID. */
    template: z.union([dnsName, vmid]).optional(),
    /** Clones: a full copy (default) or a linked clone sharing the template's disks. */
    full: z.boolean().optional(),
    /** VMs: a disk image to import as the boot disk (`local:import/<file>.qcow2`). */
    image: volumeId('import').optional(),
    /** VMs: an installer ISO in the CD drive, with empty disks. */
    iso: volumeId('iso').optional(),
    /** Containers: the template archive (`local:vztmpl/<file>`). */
    ostemplate: volumeId('vztmpl').optional(),
  })
  .superRefine((s, ctx) => {
    const given = (['template', 'image', 'iso', 'ostemplate'] as const).filter((k) => s[k] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `name exactly one of template, image, iso, ostemplate${given.length ? ` (got ${given.join(', ')})` : ''}`,
      });
    }
    if (s.full !== undefined && s.template === undefined)
      ctx.addIssue({ code: 'custom', path: ['full'], message: 'only clones of a template are full or linked' });
  });
export type GuestSource = z.output<typeof Source>;

const Disk = z.strictObject({
  /** scsi0, virtio1, ... for VMs; rootfs, mp0, ... for containers. In list order when absent. */
  slot: z
    .string()
    .regex(/^((scsi|virtio|sata|ide)\d+|rootfs|mp\d+)$/, 'must be a disk slot such as scsi0, rootfs or mp0')
    .optional(),
  size: DiskSize,
  /** The environment's default storage when absent. */
  storage: storageId.optional(),
  /** Containers' mount points: where the volume is mounted. */
  path: z
    .string()
    .regex(/^\/[A-Za-z0-9._/-]*$/, 'must be an absolute path')
    .optional(),
});
export type DiskSpec = z.output<typeof Disk>;

const Nic = z.strictObject({
  /** The environment's default bridge when absent. */
  bridge: bridge.optional(),
  /** VMs: the NIC model (compared when set; virtio for new VMs). */
  model: z.enum(['virtio', 'e1000', 'e1000e', 'rtl8139', 'vmxnet3']).optional(),
  /** VLAN tag; a managed NIC without one is untagged. */
  vlan: z.number().int().min(1).max(4094).optional(),
  /** PVE firewall on this NIC (compared when set). */
  firewall: z.boolean().optional(),
  /** Containers: the interface name inside (eth0, eth1, ... by position when absent). */
  name: z
    .string()
    .regex(/^[a-z][a-z0-9]{0,14}$/, 'must be an interface name such as eth0')
    .optional(),
  /** Containers: `dhcp` or an address with prefix (VMs set theirs through cloud_init.ip). */
  ip: z.union([z.literal('dhcp'), ipv4Cidr]).optional(),
  /** Containers: the default gateway. */
  gateway: ipv4.optional(),
});
export type NicSpec = z.output<typeof Nic>;

const CloudInit = z.strictObject({
  user: z
    .string()
    .regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'must be a user name such as debian')
    .optional(),
  /** OpenSSH public keys, one per entry. */
  ssh_keys: z
    .array(
      z
        .string()
        .regex(
          /^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-nistp\d+|sk-\S+) [A-Za-z0-9+/=]+( \S.*)?$/,
          'must be an OpenSSH public key',
        ),
    )
    .optional(),
  ip: z.union([z.literal('dhcp'), ipv4Cidr]).optional(),
  gateway: ipv4.optional(),
  nameserver: z.array(ipv4).min(1).optional(),
  searchdomain: z
    .string()
    .regex(/^[a-z0-9.-]+$/i, 'must be a DNS domain')
    .optional(),
});
export type CloudInitSpec = z.output<typeof CloudInit>;

const Placement = z.strictObject({
  /** The nodes the guest may run on (all online nodes when absent). */
  nodes: z.array(nodeName).min(1).optional(),
  /** Guests sharing an anti-affinity group run on different nodes. */
  anti_affinity: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be a group name (lowercase letters, digits, _ -)')
    .optional(),
});
export type PlacementSpec = z.output<typeof Placement>;

/** What a guest is; `defaults` may set every one of these for the file's guests. */
const guestFields = {
  kind: z.enum(['qemu', 'lxc']).optional(),
  source: Source.optional(),
  /** Pin the guest to a node… */
  node: nodeName.optional(),
  /** …or give a placement rule. */
  placement: Placement.optional(),
  cores: z.number().int().min(1).max(512).optional(),
  memory: MemoryMiB.optional(),
  /** Containers' swap (MiB, or with a unit). */
  swap: MemoryMiB.optional(),
  disks: z.array(Disk).min(1).max(16).optional(),
  network: z.array(Nic).min(1).max(8).optional(),
  tags: z.array(pveTag).max(32).optional(),
  /** VMs cloned from a cloud-init template (or imported from an image). */
  cloud_init: CloudInit.optional(),
  power: z.enum(['running', 'stopped']).optional(),
  onboot: z.boolean().optional(),
  description: z.string().max(4096).optional(),
  /** The fields this manifest manages; every field the guest sets when absent. */
  managed: z.array(z.enum(MANAGED_FIELDS)).optional(),
};

const GuestEntry = z.strictObject({
  /** The guest's name, as is… */
  name: dnsName.optional(),
  /** …or what it is for: the name then follows the environment's naming policy (`auto-{service}-{vmid}`). */
  service: z
    .string()
    .regex(SERVICE_PATTERN, 'must be a service name: lowercase letters, digits and dashes (at most 32)')
    .optional(),
  /** A fixed VMID; the next free one in the claimed (or the environment's) range when absent. */
  vmid: vmid.optional(),
  /** Guests (by name or service) whose changes are applied before this one's. */
  depends_on: z.array(z.string().min(1)).optional(),
  ...guestFields,
});

const Claims = z.strictObject({
  /** Guests carrying any of these tags belong to the manifest; every manifest guest gets them. */
  tags: z.array(pveTag).max(8).default([]),
  /** Guests in this VMID range belong to the manifest; new guests get their VMIDs from it. */
  vmids: VmidRange.optional(),
});

/** A guest as the manifest wants it, defaults merged in. */
export interface ManifestGuest extends Omit<z.output<typeof GuestEntry>, 'kind' | 'managed' | 'depends_on'> {
  kind: 'qemu' | 'lxc';
  depends_on: string[];
  /** The fields compared with PVE and changed to match. */
  managed: ManagedField[];
  /** Position in its file's `guests`, for problems. */
  index: number;
}

export interface ManifestFileContent {
  environment: string;
  claims: { tags: string[]; vmids?: { min: number; max: number } };
  guests: ManifestGuest[];
}

/** The fields a guest sets, as the manifest's managed-field names. */
export function fieldsSet(g: Partial<Record<keyof z.output<typeof GuestEntry>, unknown>>): ManagedField[] {
  const set: Record<ManagedField, boolean> = {
    source: g.source !== undefined,
    node: g.node !== undefined || g.placement !== undefined,
    cores: g.cores !== undefined,
    memory: g.memory !== undefined || g.swap !== undefined,
    disks: g.disks !== undefined,
    network: g.network !== undefined,
    tags: g.tags !== undefined,
    cloud_init: g.cloud_init !== undefined,
    power: g.power !== undefined,
    onboot: g.onboot !== undefined,
    description: g.description !== undefined,
  };
  return MANAGED_FIELDS.filter((f) => set[f]);
}

const QEMU_SLOT = /^(scsi|virtio|sata|ide)\d+$/;
const LXC_SLOT = /^(rootfs|mp\d+)$/;

type Loose = Record<string, unknown>;
const record = (v: unknown): Loose | undefined =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Loose) : undefined;
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/**
 * Problems of one guest (defaults merged), as issues under `guests.<index>`. Runs even when
 * some fields failed their own checks, so every problem is reported at once: values are read
 * defensively, as they may not have their parsed shape.
 */
function checkGuest(g: Loose, own: Loose, ctx: z.RefinementCtx, at: (string | number)[]): void {
  const issue = (path: (string | number)[], message: string) =>
    ctx.addIssue({ code: 'custom', path: [...at, ...path], message });
  const kind = g['kind'] === 'lxc' ? 'lxc' : 'qemu';
  const source = record(g['source']);
  const cloudInit = record(g['cloud_init']);
  const network = list(g['network']).map((n) => record(n) ?? {});

  if ((g['name'] === undefined) === (g['service'] === undefined))
    issue([], 'give the guest a name or a service (exactly one)');
  if (g['node'] !== undefined && g['placement'] !== undefined)
    issue(['placement'], 'pin a node or give a placement rule, not both');

  if (source) {
    if (kind === 'lxc' && source['ostemplate'] === undefined)
      issue(['source'], 'a container is created from an ostemplate');
    if (kind === 'qemu' && source['ostemplate'] !== undefined)
      issue(['source', 'ostemplate'], 'only containers are created from a template archive');
  }
  if (kind === 'lxc') {
    if (cloudInit) issue(['cloud_init'], 'containers take their addresses from network[].ip, not cloud-init');
    network.forEach(
      (n, i) =>
        n['model'] !== undefined &&
        issue(['network', i, 'model'], 'containers have veth interfaces; a model is for VMs'),
    );
  } else {
    if (g['swap'] !== undefined) issue(['swap'], 'swap is a container setting');
    network.forEach((n, i) => {
      if (n['ip'] !== undefined) issue(['network', i, 'ip'], 'VMs take their address from cloud_init.ip');
      if (n['gateway'] !== undefined)
        issue(['network', i, 'gateway'], 'VMs take their gateway from cloud_init.gateway');
      if (n['name'] !== undefined) issue(['network', i, 'name'], 'VM NICs are named by the guest OS');
    });
    if (cloudInit && source?.['iso'] !== undefined)
      issue(['cloud_init'], 'cloud-init needs a template or an image source, not an installer ISO');
  }
  if (cloudInit?.['gateway'] !== undefined && (cloudInit['ip'] === undefined || cloudInit['ip'] === 'dhcp')) {
    issue(['cloud_init', 'gateway'], 'a gateway goes with a static ip');
  }

  const disks = list(g['disks']).map((d) => record(d) ?? {});
  const slots = new Set<string>();
  disks.forEach((d, i) => {
    const slot = typeof d['slot'] === 'string' ? d['slot'] : defaultDiskSlot(kind, i);
    if (!(kind === 'qemu' ? QEMU_SLOT : LXC_SLOT).test(slot))
      issue(['disks', i, 'slot'], `'${slot}' is not a ${kind === 'qemu' ? 'VM' : 'container'} disk slot`);
    if (slots.has(slot)) issue(['disks', i, 'slot'], `slot ${slot} is listed twice`);
    slots.add(slot);
    if (kind === 'lxc' && slot.startsWith('mp') && d['path'] === undefined)
      issue(['disks', i, 'path'], 'a mount point needs its path');
    if (d['path'] !== undefined && !(kind === 'lxc' && slot.startsWith('mp')))
      issue(['disks', i, 'path'], 'only container mount points have a path');
  });
  if (kind === 'lxc' && disks.length > 0 && !slots.has('rootfs')) issue(['disks'], 'a container needs its rootfs');

  const set = new Set(fieldsSet(g));
  list(own['managed']).forEach((field, i) => {
    if (
      typeof field === 'string' &&
      (MANAGED_FIELDS as readonly string[]).includes(field) &&
      !set.has(field as ManagedField)
    ) {
      issue(['managed', i], `'${field}' is managed, but the guest does not set it`);
    }
  });
}

/** The slot of the i-th disk when the manifest names none: scsi0, scsi1, ... or rootfs, mp0, ... */
export function defaultDiskSlot(kind: 'qemu' | 'lxc', index: number): string {
  return kind === 'qemu' ? `scsi${index}` : index === 0 ? 'rootfs' : `mp${index - 1}`;
}

const RawFile = z.strictObject({
  /** The environment (in the configuration) these guests belong to. */
  environment: z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be an environment name from the configuration'),
  claims: Claims.optional(),
  defaults: z.strictObject(guestFields).optional(),
  guests: z.array(GuestEntry).default([]),
});

export const ManifestFile = RawFile.superRefine(
  (file, ctx) => {
    const defaults = record(file.defaults) ?? {};
    list(file.guests).forEach((entry, i) => {
      const own = record(entry);
      if (own) checkGuest({ ...defaults, ...own }, own, ctx, ['guests', i]);
    });
  },
  { when: (payload) => record(payload.value) !== undefined },
).transform((file): ManifestFileContent => {
  const defaults = file.defaults ?? {};
  return {
    environment: file.environment,
    claims: { tags: file.claims?.tags ?? [], ...(file.claims?.vmids ? { vmids: file.claims.vmids } : {}) },
    guests: file.guests.map((own, index) => {
      const merged = { ...defaults, ...own };
      const set = fieldsSet(merged);
      const managed = (own.managed ?? defaults.managed ?? set).filter((f) => set.includes(f));
      return { ...merged, kind: merged.kind ?? 'qemu', depends_on: own.depends_on ?? [], managed, index };
    }),
  };
});
