/**
 * What a running VM takes at once and what waits for its next start, as qemu-server's
 * `vmconfig_hotplug_pending` decides: every change is written to the config's `[PENDING]`
 * section first; the few options QEMU can change live, and the device classes the VM's
 * `hotplug` option enables, are applied and leave it; the rest (cores, sockets, cpu, machine,
 * bios, memory without memory hotplug, cloud-init...) stay pending until the VM starts again.
 */
import { isDriveKey } from '../guest-config.js';
import type { Guest } from '../state.js';

/** Options PVE writes straight through on a running VM (`$fast_plug_option`). */
const FAST_PLUG = new Set([
  'lock',
  'name',
  'onboot',
  'shares',
  'startup',
  'description',
  'protection',
  'vmstatestorage',
  'hookscript',
  'tags',
]);
/** Applied live through QMP or cgroups whatever `hotplug` says. */
const ALWAYS_LIVE = new Set(['balloon', 'cpulimit', 'cpuunits']);
/** PVE's default of `hotplug`, also what `1` stands for. */
const DEFAULT_HOTPLUG = ['network', 'disk', 'usb'];

function hotplugFeatures(value: string | undefined): Set<string> {
  if (value === undefined || value === '1') return new Set(DEFAULT_HOTPLUG);
  if (value === '0') return new Set();
  return new Set(value.split(','));
}

/** The hotplug feature a key needs, if any. */
function featureOf(key: string): string | undefined {
  if (/^net\d+$/.test(key)) return 'network';
  if (/^usb\d+$/.test(key)) return 'usb';
  if (key === 'vcpus') return 'cpu';
  if (key === 'memory') return 'memory';
  if (isDriveKey('qemu', key)) return 'disk';
  return undefined;
}

/** Whether setting `key` to `value` (undefined: deleting it) on this guest waits for its next start. */
export function waitsForRestart(guest: Guest, key: string, value: string | undefined): boolean {
  if (guest.type !== 'qemu' || guest.status !== 'running') return false;
  if (FAST_PLUG.has(key) || ALWAYS_LIVE.has(key) || /^unused\d+$/.test(key)) return false;
  // Memory hotplug needs the VM started with it, so only that part of `hotplug` waits.
  if (key === 'hotplug')
    return hotplugFeatures(guest.config['hotplug']).has('memory') !== hotplugFeatures(value).has('memory');
  const feature = featureOf(key);
  return feature === undefined || !hotplugFeatures(guest.config['hotplug']).has(feature);
}

/**
 * GET .../pending: every key of the config and of the pending section, as PVE lists them:
 * `value` is the current one, `pending` the one the next start takes, `delete: 1` marks a
 * pending removal.
 */
export function pendingList(guest: Guest): Record<string, unknown>[] {
  const keys = [...new Set([...Object.keys(guest.config), ...guest.pending.keys()])].filter((k) => k !== 'digest');
  return keys.sort().map((key) => {
    const entry: Record<string, unknown> = { key };
    const current = guest.config[key];
    if (current !== undefined) entry['value'] = current;
    if (guest.pending.has(key)) {
      const next = guest.pending.get(key);
      if (next === undefined) entry['delete'] = 1;
      else entry['pending'] = next;
    }
    return entry;
  });
}
