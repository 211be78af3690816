/**
 * The property strings of a VM's configuration (qemu-server), as PVE 9.1 defines them.
 * test/unit/pve-schema-crosscheck.test.ts holds each against the official schema.
 */
import type { PropertyFormat } from '../property-string.js';
import { diskSize, ID_RANGE_LIST, key, nicKeys, replicationKeys, volumeKeys } from '../formats/keys.js';

export const memory: PropertyFormat = {
  current: key.integer({ default_key: true, optional: false, minimum: 16 }),
};

export const agent: PropertyFormat = {
  enabled: key.boolean({ default_key: true, optional: false }),
  'freeze-fs': key.boolean(),
  'freeze-fs-on-backup': key.alias('freeze-fs'),
  'guest-fsfreeze': key.alias('freeze-fs'),
  fstrim_cloned_disks: key.boolean(),
  type: key.enum(['virtio', 'isa']),
};

export const machine: PropertyFormat = {
  type: key.string({
    default_key: true,
    maxLength: 40,
    pattern:
      '(pc|pc(-i440fx)?-\\d+(\\.\\d+)+(\\+pve\\d+)?(\\.pxe)?|q35|pc-q35-\\d+(\\.\\d+)+(\\+pve\\d+)?(\\.pxe)?|virt(?:-\\d+(\\.\\d+)+)?(\\+pve\\d+)?)',
  }),
  'aw-bits': key.number({ minimum: 32, maximum: 64 }),
  'enable-s3': key.boolean(),
  'enable-s4': key.boolean(),
  viommu: key.enum(['intel', 'virtio']),
};

export const NIC_MODELS = [
  'e1000',
  'e1000-82540em',
  'e1000-82544gc',
  'e1000-82545em',
  'e1000e',
  'i82551',
  'i82557b',
  'i82559er',
  'ne2k_isa',
  'ne2k_pci',
  'pcnet',
  'rtl8139',
  'virtio',
  'vmxnet3',
] as const;

/** `virtio=BC:24:11:..,bridge=vmbr0`: each model name is also a key whose value is the MAC. */
export const net: PropertyFormat = {
  model: key.enum(NIC_MODELS, { default_key: true, optional: false }),
  ...Object.fromEntries(NIC_MODELS.map((m) => [m, key.alias('macaddr', 'model')])),
  macaddr: key.string({ format: 'mac-addr' }),
  bridge: key.string({ format: 'pve-bridge-id' }),
  ...nicKeys(),
  mtu: key.integer({ minimum: 1, maximum: 65520 }),
  queues: key.integer({ minimum: 0, maximum: 64 }),
  rate: key.number({ minimum: 0 }),
  trunks: key.string({ pattern: ID_RANGE_LIST }),
};

/** PVE's print_net: `<model>=<mac>` first, then the other keys in order. */
export function printNet(values: Readonly<Record<string, string>>): string {
  const { model, macaddr, ...rest } = values;
  const head = macaddr ? `${model}=${macaddr}` : String(model);
  return [
    head,
    ...Object.keys(rest)
      .sort()
      .map((k) => `${k}=${rest[k]}`),
  ].join(',');
}

const FILE_FORMATS = ['raw', 'qcow', 'qed', 'qcow2', 'vmdk', 'cloop'] as const;

/** bps/iops/mbps limits, overall and per direction, with their burst lengths. */
function throttleKeys() {
  const keys: Record<string, ReturnType<typeof key.integer> | ReturnType<typeof key.alias>> = {};
  for (const dir of ['', '_rd', '_wr']) {
    keys[`bps${dir}`] = key.integer();
    keys[`bps${dir}_max_length`] = key.integer({ minimum: 1 });
    keys[`iops${dir}`] = key.integer();
    keys[`iops${dir}_max`] = key.integer();
    keys[`iops${dir}_max_length`] = key.integer({ minimum: 1 });
    keys[`mbps${dir}`] = key.number();
    keys[`mbps${dir}_max`] = key.number();
    if (dir) {
      keys[`bps${dir}_length`] = key.alias(`bps${dir}_max_length`);
      keys[`iops${dir}_length`] = key.alias(`iops${dir}_max_length`);
    }
  }
  return keys;
}

/** Keys every bus's drive has (ide, sata, scsi, virtio). */
const driveKeys = () => ({
  ...volumeKeys(),
  ...replicationKeys(),
  ...throttleKeys(),
  aio: key.enum(['native', 'threads', 'io_uring']),
  backup: key.boolean(),
  cache: key.enum(['none', 'writethrough', 'writeback', 'unsafe', 'directsync']),
  detect_zeroes: key.boolean(),
  discard: key.enum(['ignore', 'on']),
  format: key.enum(FILE_FORMATS),
  'import-from': key.string({ format: 'pve-volume-id-or-absolute-path' }),
  media: key.enum(['cdrom', 'disk']),
  rerror: key.enum(['ignore', 'report', 'stop']),
  werror: key.enum(['enospc', 'ignore', 'report', 'stop']),
  serial: key.string({ format: 'urlencoded', maxLength: 60 }),
  snapshot: key.boolean(),
});

const wwn = () => key.string({ pattern: '(?^:^(0x)[0-9a-fA-F]{16})' });

export const ide: PropertyFormat = {
  ...driveKeys(),
  model: key.string({ format: 'urlencoded', maxLength: 120 }),
  ssd: key.boolean(),
  wwn: wwn(),
};

export const sata: PropertyFormat = { ...driveKeys(), ssd: key.boolean(), wwn: wwn() };

export const scsi: PropertyFormat = {
  ...driveKeys(),
  iothread: key.boolean(),
  product: key.string({ pattern: '[A-Za-z0-9\\-_\\s]{,16}' }),
  queues: key.integer({ minimum: 2 }),
  ro: key.boolean(),
  scsiblock: key.boolean(),
  ssd: key.boolean(),
  vendor: key.string({ pattern: '[A-Za-z0-9\\-_\\s]{,8}' }),
  wwn: wwn(),
};

export const virtio: PropertyFormat = { ...driveKeys(), iothread: key.boolean(), ro: key.boolean() };

/** EFI vars and TPM state: a volume, its format and one setting of their own. */
const stateDiskKeys = (formats: readonly string[]) => ({
  ...volumeKeys(),
  format: key.enum(formats),
  'import-from': key.string({ format: 'pve-volume-id-or-absolute-path' }),
  size: diskSize(),
});

export const efidisk: PropertyFormat = {
  ...stateDiskKeys(FILE_FORMATS),
  efitype: key.enum(['2m', '4m']),
  'ms-cert': key.enum(['2011', '2023', '2023w', '2023k']),
  'pre-enrolled-keys': key.boolean(),
};

export const tpmstate: PropertyFormat = {
  ...stateDiskKeys(['raw', 'qcow2', 'vmdk']),
  version: key.enum(['v1.2', 'v2.0']),
};

export const unused: PropertyFormat = volumeKeys('pve-volume-id');

/** Named format `pve-qm-ipconfig` (cloud-init addresses of netN). */
export const ipconfig: PropertyFormat = {
  ip: key.string({ format: 'pve-ipv4-config' }),
  gw: key.string({ format: 'ipv4' }),
  ip6: key.string({ format: 'pve-ipv6-config' }),
  gw6: key.string({ format: 'ipv6' }),
};

/** Named format `pve-vm-cpu-conf`. */
export const cpu: PropertyFormat = {
  cputype: key.string({ default_key: true, pattern: '[a-zA-Z0-9_.+-]+' }),
  flags: key.string({ pattern: '(?:[+-][a-zA-Z0-9\\-_\\.]+)(?:;[+-][a-zA-Z0-9\\-_\\.]+)*' }),
  'guest-phys-bits': key.integer({ minimum: 32, maximum: 64 }),
  hidden: key.boolean(),
  'hv-vendor-id': key.string({ pattern: '[a-zA-Z0-9]{1,12}' }),
  'phys-bits': key.string({ pattern: '(?:[89]|[1-5]\\d|6[0-4]|host)' }),
  'reported-model': key.string({ pattern: '[a-zA-Z0-9_.+-]+' }),
};

/** Named format `pve-qm-boot`. */
export const boot: PropertyFormat = {
  legacy: key.string({ default_key: true, pattern: '[acdn]{1,4}' }),
  order: key.string({ format: 'pve-qm-bootdev-list' }),
};

/** Named format `pve-qm-rng`. */
export const rng: PropertyFormat = {
  source: key.enum(['/dev/urandom', '/dev/random', '/dev/hwrng'], { default_key: true, optional: false }),
  max_bytes: key.integer(),
  period: key.integer(),
};

/** Named format `pve-qm-watchdog`. */
export const watchdog: PropertyFormat = {
  model: key.enum(['i6300esb', 'ib700'], { default_key: true }),
  action: key.enum(['reset', 'shutdown', 'poweroff', 'pause', 'debug', 'none']),
};

/** Named format `pve-qm-smbios1`; the texts are base64 when `base64=1`. */
export const smbios1: PropertyFormat = {
  base64: key.boolean(),
  family: key.string(),
  manufacturer: key.string(),
  product: key.string(),
  serial: key.string(),
  sku: key.string(),
  uuid: key.string({ pattern: '[a-fA-F0-9]{8}(?:-[a-fA-F0-9]{4}){3}-[a-fA-F0-9]{12}' }),
  version: key.string(),
};

/** Named format `pve-qm-hostpci`: a host device (`0000:01:00.0`, several joined by `;`) or a mapping. */
export const hostpci: PropertyFormat = {
  host: key.string({ default_key: true }),
  mapping: key.string({ format: 'pve-configid' }),
  'device-id': key.string(),
  'vendor-id': key.string(),
  'sub-device-id': key.string(),
  'sub-vendor-id': key.string(),
  driver: key.enum(['vfio', 'keep']),
  'legacy-igd': key.boolean(),
  mdev: key.string(),
  pcie: key.boolean(),
  rombar: key.boolean(),
  romfile: key.string(),
  'x-vga': key.boolean(),
};

export const audio: PropertyFormat = {
  device: key.enum(['ich9-intel-hda', 'intel-hda', 'AC97'], { optional: false }),
  driver: key.enum(['spice', 'none']),
};

export const ivshmem: PropertyFormat = {
  name: key.string({ pattern: '[a-zA-Z0-9\\-]+' }),
  size: key.integer({ minimum: 1, optional: false }),
};

export const numa: PropertyFormat = {
  cpus: key.string({ pattern: ID_RANGE_LIST, optional: false }),
  hostnodes: key.string({ pattern: ID_RANGE_LIST }),
  memory: key.number(),
  policy: key.enum(['preferred', 'bind', 'interleave']),
};

export const spiceEnhancements: PropertyFormat = {
  foldersharing: key.boolean(),
  videostreaming: key.enum(['off', 'all', 'filter']),
};

export const usb: PropertyFormat = {
  host: key.string({
    default_key: true,
    pattern:
      '(?^:(?:(?:(?^:(0x)?([0-9A-Fa-f]{4}):(0x)?([0-9A-Fa-f]{4})))|(?:(?^:(\\d+)\\-(\\d+(\\.\\d+)*)))|[Ss][Pp][Ii][Cc][Ee]))',
  }),
  mapping: key.string({ format: 'pve-configid' }),
  usb3: key.boolean(),
};

export const vga: PropertyFormat = {
  type: key.enum(
    [
      'cirrus',
      'qxl',
      'qxl2',
      'qxl3',
      'qxl4',
      'none',
      'serial0',
      'serial1',
      'serial2',
      'serial3',
      'std',
      'virtio',
      'virtio-gl',
      'vmware',
    ],
    { default_key: true },
  ),
  clipboard: key.enum(['vnc']),
  memory: key.integer({ minimum: 4, maximum: 512 }),
};

export const virtiofs: PropertyFormat = {
  dirid: key.string({ default_key: true, optional: false, format: 'pve-configid' }),
  cache: key.enum(['auto', 'always', 'metadata', 'never']),
  'direct-io': key.boolean(),
  'expose-acl': key.boolean(),
  'expose-xattr': key.boolean(),
};
