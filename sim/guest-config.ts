/**
 * Guest configuration the way PVE keeps it: flat `key: value` strings, drives as property
 * strings (`local-lvm:vm-101-disk-0,iothread=1,size=32G`), a SHA-1 digest of the file.
 */
import { createHash } from 'node:crypto';
import { parseSize } from './units.js';

export type GuestType = 'qemu' | 'lxc';
export type GuestConfig = Record<string, string>;

const QEMU_DRIVE_KEY = /^((ide|sata|scsi|virtio)\d+|efidisk0|tpmstate0)$/;
const LXC_DRIVE_KEY = /^(rootfs|mp\d+)$/;
const UNUSED_KEY = /^unused\d+$/;

export interface Drive {
  key: string;
  volid: string;
  /** From `size=` in the property string, when present. */
  size?: number;
  cdrom: boolean;
  unused: boolean;
  options: Record<string, string>;
}

/** `volid,k=v,...` -> volid and options (`file=` and `volume=` spellings accepted). */
export function parseDrive(value: string): { volid: string; options: Record<string, string> } {
  const [first = '', ...rest] = value.split(',');
  const options: Record<string, string> = {};
  let volid = first;
  const firstKv = /^(file|volume)=(.*)$/.exec(first);
  if (firstKv) volid = firstKv[2]!;
  for (const part of rest) {
    const eq = part.indexOf('=');
    if (eq > 0) options[part.slice(0, eq)] = part.slice(eq + 1);
    else if (part) options[part] = '1';
  }
  return { volid, options };
}

export function formatDrive(volid: string, options: Record<string, string>): string {
  return [volid, ...Object.entries(options).map(([k, v]) => `${k}=${v}`)].join(',');
}

export function isDriveKey(type: GuestType, key: string): boolean {
  return (type === 'qemu' ? QEMU_DRIVE_KEY : LXC_DRIVE_KEY).test(key) || UNUSED_KEY.test(key);
}

/** Every volume a config references, in key order; `none` and physical cdroms are skipped. */
export function drives(type: GuestType, config: GuestConfig): Drive[] {
  const result: Drive[] = [];
  for (const [key, value] of Object.entries(config)) {
    if (!isDriveKey(type, key)) continue;
    const { volid, options } = parseDrive(value);
    if (volid === 'none' || volid === 'cdrom' || volid === '') continue;
    const size = options['size'] !== undefined ? parseSize(options['size']) : undefined;
    result.push({
      key,
      volid,
      ...(size !== undefined ? { size } : {}),
      cdrom: options['media'] === 'cdrom',
      unused: UNUSED_KEY.test(key),
      options,
    });
  }
  return result.sort((a, b) => a.key.localeCompare(b.key, 'en', { numeric: true }));
}

export function nextFreeKey(config: GuestConfig, prefix: string): string {
  for (let i = 0; ; i++) if (config[`${prefix}${i}`] === undefined) return `${prefix}${i}`;
}

export function storageOf(volid: string): string {
  return volid.split(':')[0]!;
}

/** Tags as PVE stores them: `a;b`. */
export function parseTags(value: string | undefined): string[] {
  return (value ?? '').split(/[;,\s]+/).filter(Boolean);
}

export interface SnapshotRecord {
  name: string;
  description: string;
  snaptime: number;
  vmstate: boolean;
  parent?: string;
  config: GuestConfig;
}

function section(config: GuestConfig): string {
  const lines: string[] = [];
  if (config['description']) {
    for (const line of config['description'].split('\n')) lines.push(`#${line}`);
  }
  for (const key of Object.keys(config).sort()) {
    if (key === 'description') continue;
    lines.push(`${key}: ${config[key]}`);
  }
  return lines.join('\n') + '\n';
}

/** The config file text (main section, then one section per snapshot), as PVE writes it. */
export function serializeConfig(config: GuestConfig, snapshots: Iterable<SnapshotRecord>): string {
  let text = section(config);
  for (const snap of snapshots) {
    const snapConfig: GuestConfig = { ...snap.config, snaptime: String(snap.snaptime) };
    if (snap.description) snapConfig['description'] = snap.description;
    if (snap.parent) snapConfig['parent'] = snap.parent;
    if (snap.vmstate) snapConfig['vmstate'] = '1';
    text += `\n[${snap.name}]\n${section(snapConfig)}`;
  }
  return text;
}

export function configDigest(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}
