/**
 * Reading a built guest's configuration back and checking it holds what the runbook set.
 * PVE rewrites some values as it stores them (a disk request `local-lvm:0,import-from=...`
 * becomes `local-lvm:base-101-disk-1,iothread=1,size=32G`; a NIC gains its MAC), so disks
 * compare by storage and options, NICs by the settings given, tags as sets.
 */
import { CONTROL_KEYS } from '../pve/params.js';
import type { ConfigWrite } from '../rbac.js';
import type { ResolvedStep } from './plan.js';
import type { Value } from './placeholders.js';
import type { Runbook } from './schema.js';

const CONFIG_ENDPOINTS = new Set([
  'qemuCreate',
  'qemuUpdateConfig',
  'qemuUpdateConfigAsync',
  'lxcCreate',
  'lxcUpdateConfig',
]);
const DISK_KEY = /^(scsi\d+|virtio\d+|sata\d+|ide\d+|efidisk0|tpmstate0|rootfs|mp\d+)$/;
/** Options PVE consumes or recomputes when it stores a disk. */
const TRANSIENT_DISK_OPTIONS = new Set(['import-from', 'size', 'format']);

/** The config the steps set, later steps winning, as PVE would show it. */
export function expectedGuestConfig(steps: readonly ResolvedStep[]): Record<string, string> {
  const expected: Record<string, string> = {};
  for (const step of steps) {
    if (step.kind !== 'api' || !CONFIG_ENDPOINTS.has(step.api)) continue;
    for (const [key, value] of Object.entries(step.params)) {
      if (!CONTROL_KEYS.has(key)) expected[key] = asConfig(value);
    }
  }
  return expected;
}

/** The guest config properties a runbook writes (with their values as written), for the RBAC role. */
export function configWritesOf(runbook: Runbook): ConfigWrite[] {
  return [...runbook.steps, ...runbook.cleanup].flatMap((step) =>
    step.kind === 'api' && CONFIG_ENDPOINTS.has(step.api)
      ? Object.entries(step.params)
          .filter(([key]) => !CONTROL_KEYS.has(key))
          .map(([key, value]) => ({
            type: step.api.startsWith('lxc') ? ('lxc' as const) : ('qemu' as const),
            key,
            value: String(value),
          }))
      : [],
  );
}

function asConfig(value: Value): string {
  if (typeof value === 'boolean') return value ? '1' : '0';
  return String(value);
}

function items(value: string): { bare: string[]; pairs: Map<string, string> } {
  const bare: string[] = [];
  const pairs = new Map<string, string>();
  for (const part of value.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) bare.push(part);
    else pairs.set(part.slice(0, eq), part.slice(eq + 1));
  }
  return { bare, pairs };
}

function tagSet(value: string): Set<string> {
  return new Set(value.split(/[;, ]+/).filter(Boolean));
}

function diskMatches(expected: string, actual: string): boolean {
  const e = items(expected);
  const a = items(actual);
  const storage = (volume: string | undefined) => volume?.split(':')[0];
  if (storage(e.bare[0]) !== storage(a.bare[0])) return false;
  for (const [k, v] of e.pairs) if (!TRANSIENT_DISK_OPTIONS.has(k) && a.pairs.get(k) !== v) return false;
  return true;
}

/** `virtio,bridge=vmbr0` matches `virtio=BC:24:11:..,bridge=vmbr0,firewall=0`. */
function propertiesMatch(expected: string, actual: string): boolean {
  const e = items(expected);
  const a = items(actual);
  for (const b of e.bare) if (!a.bare.includes(b) && !a.pairs.has(b)) return false;
  for (const [k, v] of e.pairs) if (a.pairs.get(k) !== v) return false;
  return true;
}

interface ConfigMismatch {
  key: string;
  expected: string;
  actual: string | undefined;
}

export function compareGuestConfig(
  expected: Readonly<Record<string, string>>,
  actual: Readonly<Record<string, unknown>>,
): ConfigMismatch[] {
  const mismatches: ConfigMismatch[] = [];
  for (const [key, want] of Object.entries(expected)) {
    const raw = actual[key];
    const have = raw === undefined || raw === null ? undefined : asConfig(raw as Value);
    let ok: boolean;
    if (have === undefined) ok = want === '0';
    else if (key === 'tags') ok = [...tagSet(want)].every((t) => tagSet(have).has(t));
    else if (DISK_KEY.test(key)) ok = diskMatches(want, have);
    else if (/^net\d+$/.test(key) || key === 'agent')
      ok = propertiesMatch(want, have) || (key === 'agent' && have === `enabled=${want}`);
    else ok = want === have;
    if (!ok) mismatches.push({ key, expected: want, actual: have });
  }
  return mismatches;
}
