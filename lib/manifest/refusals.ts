/**
 * What PVE would refuse among the parameters a reconcile plan's steps will send, found while
 * planning — with the same verification the client runs before sending (lib/pve/params.ts) —
 * so a bad value is a manifest problem before anyone approves, not a failed step after.
 */
import { decodeFormParams } from '../pve/endpoint.js';
import { type EndpointName, endpoints } from '../pve/registry.js';
import { encodeValue } from '../pve/params.js';
import type { GuestKind } from './observed.js';

/** The call each step action makes, per guest kind (lxc has no clone or disk resize here). */
const CALLS: Record<string, Partial<Record<GuestKind, EndpointName>>> = {
  create: { qemu: 'qemuCreate', lxc: 'lxcCreate' },
  config: { qemu: 'qemuUpdateConfig', lxc: 'lxcUpdateConfig' },
  clone: { qemu: 'qemuClone' },
  'resize-disk': { qemu: 'qemuResize' },
  shutdown: { qemu: 'qemuShutdown', lxc: 'lxcShutdown' },
};

/** PVE's reason per refused parameter (one line each), among the parameters the step sets. */
export function stepRefusals(
  kind: GuestKind,
  action: string,
  params: Readonly<Record<string, string | number | boolean>>,
): Record<string, string> {
  const api = CALLS[action]?.[kind];
  if (!api) return {};
  const checked = decodeFormParams(
    endpoints[api],
    Object.fromEntries(Object.entries(params).map(([k, v]) => [k, encodeValue(v)])),
  );
  if (checked.ok) return {};
  // Node and VMID come from the step itself, not its parameters; only what the manifest set is judged.
  return Object.fromEntries(
    Object.entries(checked.errors)
      .filter(([key]) => key in params)
      .map(([key, reason]) => [key, reason.replaceAll('\n', '; ')]),
  );
}

const CLOUD_INIT_FIELDS: Record<string, string> = {
  ciuser: 'user',
  sshkeys: 'ssh_keys',
  ipconfig0: 'ip',
  nameserver: 'nameserver',
  searchdomain: 'searchdomain',
};

/** The manifest field a PVE parameter is made from, as a path below the guest. */
export function manifestPath(key: string): (string | number)[] {
  const nic = /^net(\d+)$/.exec(key);
  if (nic) return ['network', Number(nic[1])];
  if (/^((scsi|virtio|sata|ide)\d+|rootfs|mp\d+)$/.test(key)) return ['disks'];
  const ci = CLOUD_INIT_FIELDS[key];
  if (ci) return ['cloud_init', ci];
  return [key];
}
