/**
 * PVE's named formats (`format: 'mac-addr'` in the schema) that we verify, with pve-common's
 * messages. A named format is either a check of a single value or a property-string format
 * registered under a name (`pve-qm-ipconfig`). Names not listed here are not verified locally.
 */
import { isIP } from 'node:net';
import type { PropertyFormat } from '../property-string.js';
import * as qemu from '../qemu/formats.js';

export type NamedFormat = { check: (value: string) => string | undefined } | { properties: PropertyFormat };

function regex(re: RegExp, message: (value: string) => string): NamedFormat {
  return { check: (v) => (re.test(v) ? undefined : message(v)) };
}

const STORAGE_ID = '[a-z][a-z0-9\\-_.]*[a-z0-9]';
const VOLUME_ID = new RegExp(`^${STORAGE_ID}:.+$`, 'i');

function cidr(value: string, family: 4 | 6): boolean {
  const m = /^(.+)\/(\d{1,3})$/.exec(value);
  return !!m && isIP(m[1]!) === family && Number(m[2]) <= (family === 4 ? 32 : 128);
}

const volumeId = (v: string) => (VOLUME_ID.test(v) ? undefined : `unable to parse volume ID '${v}'`);
const volumeIdOrPath = (v: string) => (v.startsWith('/') ? undefined : volumeId(v));

/** qemu-server verify_bootdev: a drive (not EFI/TPM state) or a NIC, USB or PCI device. */
const BOOT_DEVICE = /^((ide|sata|scsi|virtio)\d+|(net|usb|hostpci)\d+)$/;

export const namedFormats: Record<string, NamedFormat> = {
  'pve-node': regex(/^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/, () => 'value does not look like a valid node name'),
  'pve-vmid': regex(/^[1-9][0-9]{2,8}$/, () => 'value does not look like a valid VM ID'),
  'pve-configid': regex(/^[a-z][a-z0-9_-]+$/i, (v) => `invalid configuration ID '${v}'`),
  'pve-storage-id': regex(new RegExp(`^${STORAGE_ID}$`, 'i'), (v) => `storage ID '${v}' contains illegal characters`),
  'dns-name': regex(
    /^(([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)\.)*([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)$/,
    () => 'value does not look like a valid DNS name',
  ),
  urlencoded: regex(/^[-%a-zA-Z0-9_.!~*'()]*$/, (v) => `invalid urlencoded string: ${v}`),
  'pve-tag': regex(/^[a-z0-9_][a-z0-9_\-+.]*$/i, () => 'invalid characters in tag'),
  'pve-bridge-id': regex(/^[-_.\w\d]+$/, (v) => `invalid bridge ID '${v}'`),
  // The I/G bit must be clear: a multicast address breaks the guest's network.
  'mac-addr': regex(
    /^[a-f0-9][02468ace](?::[a-f0-9]{2}){5}$/i,
    () => 'value does not look like a valid unicast MAC address',
  ),
  ipv4: { check: (v) => (isIP(v) === 4 ? undefined : 'value does not look like a valid IPv4 address') },
  ipv6: { check: (v) => (isIP(v) === 6 ? undefined : 'value does not look like a valid IPv6 address') },
  address: { check: (v) => (isIP(v) ? undefined : 'value does not look like a valid IP address') },
  CIDR: { check: (v) => (cidr(v, 4) || cidr(v, 6) ? undefined : 'value does not look like a valid CIDR network') },
  'pve-ipv4-config': {
    check: (v) =>
      v === 'dhcp' || v === 'manual' || cidr(v, 4)
        ? undefined
        : 'value does not look like a valid ipv4 network configuration',
  },
  'pve-ipv6-config': {
    check: (v) =>
      ['auto', 'dhcp', 'manual'].includes(v) || cidr(v, 6)
        ? undefined
        : 'value does not look like a valid ipv6 network configuration',
  },
  'disk-size': regex(/^\d+(\.\d+)?[KMGT]?$/, () => 'value does not look like a valid disk size'),
  'pve-volume-id': { check: volumeId },
  'pve-volume-id-or-absolute-path': { check: volumeIdOrPath },
  'pve-volume-id-or-qm-path': { check: (v) => (v === 'none' || v === 'cdrom' ? undefined : volumeIdOrPath(v)) },
  'pve-qm-bootdev': regex(BOOT_DEVICE, (v) => `invalid boot device '${v}'`),
  'pve-startup-order': regex(
    /^(?:(?:order=)?\d+|up=\d+|down=\d+)(?:,(?:(?:order=)?\d+|up=\d+|down=\d+))*$/,
    () => 'unable to parse startup options',
  ),
  'pve-qm-ipconfig': { properties: qemu.ipconfig },
  'pve-vm-cpu-conf': { properties: qemu.cpu },
  'pve-qm-boot': { properties: qemu.boot },
  'pve-qm-rng': { properties: qemu.rng },
  'pve-qm-watchdog': { properties: qemu.watchdog },
  'pve-qm-smbios1': { properties: qemu.smbios1 },
  'pve-qm-hostpci': { properties: qemu.hostpci },
};
