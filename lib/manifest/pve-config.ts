/**
 * Guest configs as PVE keeps them — flat keys, property strings (`virtio=BC:24:11:..,bridge=vmbr0`),
 * URL-encoded SSH keys — read into values a manifest can be compared with, and written back
 * preserving what the manifest does not manage (MAC addresses, volume ids, other options).
 */
import { NIC_MODELS } from '../pve/qemu/formats.js';
import type { GuestSource } from './schema.js';

export type PveConfig = Record<string, unknown>;

export function configString(config: PveConfig, key: string): string | undefined {
  const value = config[key];
  return value === undefined || value === null ? undefined : String(value);
}

export function configNumber(config: PveConfig, key: string): number | undefined {
  const text = configString(config, key);
  const m = text === undefined ? null : /(\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

export function configFlag(config: PveConfig, key: string): boolean {
  const value = config[key];
  return value === true || value === 1 || value === '1';
}

/** `first,k=v,...` as an ordered list of entries; a part without `=` is a key with no value. */
export function parsePropertyString(value: string): [string, string | undefined][] {
  return value
    .split(',')
    .filter(Boolean)
    .map((part) => {
      const eq = part.indexOf('=');
      return eq < 0 ? [part, undefined] : [part.slice(0, eq), part.slice(eq + 1)];
    });
}

export function formatPropertyString(entries: readonly [string, string | undefined][]): string {
  return entries.map(([k, v]) => (v === undefined ? k : `${k}=${v}`)).join(',');
}

const SIZE_GIB: Record<string, number> = { K: 1 / 1024 ** 2, M: 1 / 1024, G: 1, T: 1024 };

/** `32G`, `512M`, `1T` or bytes -> GiB. */
export function sizeGiB(size: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([KMGT])?$/.exec(size);
  if (!m) return undefined;
  return m[2] ? Number(m[1]) * SIZE_GIB[m[2]]! : Number(m[1]) / 1024 ** 3;
}

export function formatGiB(gib: number): string {
  return Number.isInteger(gib) ? `${gib}G` : `${Math.round(gib * 1024)}M`;
}

export interface DriveValue {
  volid: string;
  storage: string;
  sizeGiB?: number;
  cdrom: boolean;
  options: Map<string, string | undefined>;
}

/** `local-lvm:vm-101-disk-0,iothread=1,size=32G` */
export function parseDrive(value: string): DriveValue {
  const [[first, firstValue] = ['', undefined], ...rest] = parsePropertyString(value);
  const volid = (first === 'file' || first === 'volume') && firstValue !== undefined ? firstValue : first;
  const options = new Map(rest);
  const size = options.get('size');
  const gib = size === undefined ? undefined : sizeGiB(size);
  return {
    volid,
    storage: volid.split(':')[0]!,
    ...(gib !== undefined ? { sizeGiB: gib } : {}),
    cdrom: options.get('media') === 'cdrom',
    options,
  };
}

export interface NicValue {
  /** VMs: the model; containers: undefined. */
  model?: string;
  mac?: string;
  bridge?: string;
  vlan?: number;
  firewall: boolean;
  /** Containers only. */
  name?: string;
  ip?: string;
  gateway?: string;
  /** Everything else, in order, kept as is when the NIC is rewritten. */
  rest: [string, string | undefined][];
}

/** `virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,firewall=1,tag=10` */
export function parseQemuNic(value: string): NicValue {
  const nic: NicValue = { firewall: false, rest: [] };
  for (const [key, v] of parsePropertyString(value)) {
    if ((NIC_MODELS as readonly string[]).includes(key)) {
      nic.model = key;
      if (v) nic.mac = v;
    } else if (key === 'macaddr') nic.mac = v;
    else if (key === 'model') nic.model = v;
    else if (key === 'bridge') nic.bridge = v;
    else if (key === 'tag') nic.vlan = Number(v);
    else if (key === 'firewall') nic.firewall = v === '1';
    else nic.rest.push([key, v]);
  }
  return nic;
}

export function formatQemuNic(nic: NicValue): string {
  return formatPropertyString([
    [nic.model ?? 'virtio', nic.mac],
    ...(nic.bridge ? ([['bridge', nic.bridge]] as [string, string][]) : []),
    ...(nic.firewall ? ([['firewall', '1']] as [string, string][]) : []),
    ...(nic.vlan !== undefined ? ([['tag', String(nic.vlan)]] as [string, string][]) : []),
    ...nic.rest,
  ]);
}

/** `name=eth0,bridge=vmbr0,hwaddr=BC:..,ip=dhcp,gw=10.0.0.1,tag=10,type=veth` */
export function parseLxcNic(value: string): NicValue {
  const nic: NicValue = { firewall: false, rest: [] };
  for (const [key, v] of parsePropertyString(value)) {
    if (key === 'name') nic.name = v;
    else if (key === 'hwaddr') nic.mac = v;
    else if (key === 'bridge') nic.bridge = v;
    else if (key === 'tag') nic.vlan = Number(v);
    else if (key === 'firewall') nic.firewall = v === '1';
    else if (key === 'ip') nic.ip = v;
    else if (key === 'gw') nic.gateway = v;
    else nic.rest.push([key, v]);
  }
  return nic;
}

export function formatLxcNic(nic: NicValue): string {
  const entries: [string, string | undefined][] = [['name', nic.name ?? 'eth0']];
  if (nic.bridge) entries.push(['bridge', nic.bridge]);
  if (nic.firewall) entries.push(['firewall', '1']);
  if (nic.gateway) entries.push(['gw', nic.gateway]);
  if (nic.mac) entries.push(['hwaddr', nic.mac]);
  if (nic.ip) entries.push(['ip', nic.ip]);
  if (nic.vlan !== undefined) entries.push(['tag', String(nic.vlan)]);
  return formatPropertyString([...entries, ...nic.rest]);
}

/** PVE separates tags with `;` (older versions also `,` or spaces) and compares them case-insensitively. */
export function parseTagList(tags: string | undefined): string[] {
  return [
    ...new Set(
      (tags ?? '')
        .split(/[;, ]+/)
        .filter(Boolean)
        .map((t) => t.toLowerCase()),
    ),
  ].sort();
}

export function formatTagList(tags: readonly string[]): string {
  return [...new Set(tags.map((t) => t.toLowerCase()))].sort().join(';');
}

/** `ip=10.0.0.5/24,gw=10.0.0.1` or `ip=dhcp` */
export function parseIpConfig(value: string | undefined): { ip?: string; gateway?: string } {
  const entries = new Map(parsePropertyString(value ?? ''));
  return {
    ...(entries.get('ip') ? { ip: entries.get('ip')! } : {}),
    ...(entries.get('gw') ? { gateway: entries.get('gw')! } : {}),
  };
}

export function formatIpConfig(ip: string, gateway: string | undefined): string {
  return `ip=${ip}${gateway ? `,gw=${gateway}` : ''}`;
}

/** PVE keeps `sshkeys` URL-encoded, one key per line. */
export function decodeSshKeys(value: string | undefined): string[] {
  if (!value) return [];
  let text: string;
  try {
    text = decodeURIComponent(value);
  } catch {
    text = value;
  }
  return text
    .split('\n')
    .map((k) => k.trim())
    .filter(Boolean);
}

export function encodeSshKeys(keys: readonly string[]): string {
  return encodeURIComponent(keys.join('\n'));
}

/** The line that records what a guest was created from, inside its PVE description. */
const SOURCE_LINE = /^proxmox-manager source: (\S+)$/m;

export function sourceLabel(source: GuestSource): string {
  if (source.template !== undefined) return `template:${source.template}`;
  if (source.image !== undefined) return `image:${source.image}`;
  if (source.iso !== undefined) return `iso:${source.iso}`;
  return `ostemplate:${source.ostemplate}`;
}

/** A description split into the operator's text and the recorded source. */
export function parseDescription(description: string | undefined): { text: string; source?: string } {
  const value = description ?? '';
  const source = SOURCE_LINE.exec(value)?.[1];
  const text = value.replace(SOURCE_LINE, '').trim();
  return source === undefined ? { text } : { text, source };
}

export function composeDescription(text: string, source: string | undefined): string {
  return [text.trim(), source === undefined ? '' : `proxmox-manager source: ${source}`].filter(Boolean).join('\n');
}

/** Keys a running VM takes at once when `hotplug` allows (PVE's default: network, disk, usb). */
export function qemuHotplugs(config: PveConfig, what: 'network' | 'disk' | 'memory' | 'cpu'): boolean {
  const hotplug = configString(config, 'hotplug') ?? 'network,disk,usb';
  if (hotplug === '1') return what === 'network' || what === 'disk';
  if (hotplug === '0') return false;
  return hotplug.split(',').includes(what);
}
