/**
 * The least-privileged PVE role proxmox-manager's token needs, and how it is derived.
 *
 * Two sources decide what a call needs:
 *   - the declarative check of every endpoint the project calls (lib/pve/<resource>/endpoints.ts, held
 *     against PVE's official schema by the tests), and
 *   - the checks PVE makes inside handlers for what a call carries: per config property
 *     (qemu-server's check_vm_modify_config_perm, pve-container's check_ct_modify_config_perm),
 *     on storages a disk is allocated on (check_storage_access) and on bridges a NIC joins
 *     (PVE 8+: SDN.Use on /sdn/zones/localnetwork/<bridge>).
 * Where a check accepts alternatives, the least powerful one is chosen, and privileges the
 * orchestrator must never hold are never chosen.
 *
 * ROLE_PRIVILEGES is the role the RBAC bootstrap creates (scripts/rbac-bootstrap.ts);
 * test/unit/rbac-role.test.ts holds it equal to what requiredPrivileges() computes.
 */
import type { PermissionCheck } from './pve/permissions.js';
import { type EndpointName, endpoints } from './pve/registry.js';

export const ROLE_NAME = 'ProxmoxManager';

export const ROLE_PRIVILEGES = [
  'Datastore.Allocate',
  'Datastore.AllocateSpace',
  'Datastore.AllocateTemplate',
  'SDN.Use',
  'Sys.AccessNetwork',
  'Sys.Audit',
  'VM.Allocate',
  'VM.Audit',
  'VM.Backup',
  'VM.Clone',
  'VM.Config.CDROM',
  'VM.Config.CPU',
  'VM.Config.Disk',
  'VM.Config.HWType',
  'VM.Config.Memory',
  'VM.Config.Network',
  'VM.Config.Options',
  'VM.GuestAgent.Audit',
  'VM.Migrate',
  'VM.PowerMgmt',
  'VM.Snapshot',
] as const;

/**
 * Never granted: changing hosts or rebooting nodes, escalating privileges, managing users
 * and realms, consoles. A check that can only be met with one of these is a design error.
 */
export const EXCLUDED_PRIVILEGES: ReadonlySet<string> = new Set([
  'Sys.Modify',
  'Sys.PowerMgmt',
  'Sys.Console',
  'Sys.Incoming',
  'Permissions.Modify',
  'User.Modify',
  'Group.Allocate',
  'Realm.Allocate',
  'Realm.AllocateUser',
  'Pool.Allocate',
  'SDN.Allocate',
  'Mapping.Modify',
]);

/** A guest config property as the project writes it: key, and an example value where the value decides. */
export interface ConfigWrite {
  type: 'qemu' | 'lxc';
  key: string;
  value?: string;
}

/**
 * Config properties written by the project's code (activities/provision.ts for vm-create,
 * vm-clone and stateful installs; activities/vm.ts for resizes). Runbooks' properties are read
 * from the runbooks themselves (see configWritesOf in lib/runbooks).
 */
export const CODE_CONFIG_WRITES: readonly ConfigWrite[] = [
  ...[
    'name',
    'description',
    'tags',
    'cores',
    'sockets',
    'memory',
    'cpu',
    'bios',
    'machine',
    'scsihw',
    'ostype',
    'agent',
    'boot',
  ].map((key) => ({ type: 'qemu' as const, key })),
  { type: 'qemu', key: 'net0', value: 'virtio,bridge=vmbr0' },
  { type: 'qemu', key: 'scsi0', value: 'local-lvm:32,iothread=1' },
  { type: 'qemu', key: 'efidisk0', value: 'local-lvm:1,efitype=4m' },
  { type: 'qemu', key: 'ide2', value: 'local:iso/installer.iso,media=cdrom' },
  ...['hostname', 'description', 'tags', 'cores', 'memory', 'swap', 'unprivileged'].map((key) => ({
    type: 'lxc' as const,
    key,
  })),
  { type: 'lxc', key: 'rootfs', value: 'local-lvm:8' },
  { type: 'lxc', key: 'net0', value: 'name=eth0,bridge=vmbr0,ip=dhcp' },
];

const QEMU_GROUPS: [RegExp, string][] = [
  [/^(cores|cpu|cpulimit|cpuunits|numa\d*|smp|sockets|vcpus|affinity)$/, 'VM.Config.CPU'],
  [/^(memory|balloon|shares|hugepages)$/, 'VM.Config.Memory'],
  [
    /^(acpi|hotplug|kvm|keyboard|machine|scsihw|smbios1|tablet|vga|watchdog|audio0|rng0|ivshmem|spice_enhancements|serial\d+|usb\d+)$/,
    'VM.Config.HWType',
  ],
  [
    /^(agent|autostart|bios|description|keephugepages|localtime|migrate_downtime|migrate_speed|name|onboot|ostype|protection|reboot|startdate|startup|tdf|template|tags)$/,
    'VM.Config.Options',
  ],
  [/^freeze$/, 'VM.PowerMgmt'],
  [/^(boot|bootdisk|vmstatestorage|unused\d+)$/, 'VM.Config.Disk'],
];
const LXC_GROUPS: [RegExp, string][] = [
  [/^(cores|cpulimit|cpuunits)$/, 'VM.Config.CPU'],
  [/^(memory|swap)$/, 'VM.Config.Memory'],
  [/^unused\d+$/, 'VM.Config.Disk'],
  // pve-container checks everything else it does not single out as an option.
  [/^/, 'VM.Config.Options'],
];
const DRIVE = /^(ide|sata|scsi|virtio)\d+$|^(efidisk0|tpmstate0)$|^(rootfs|mp\d+)$/;

/**
 * PVE's answer when only root@pam may write a property (an API token never is root@pam, even
 * root's own), or undefined. qemu-server refuses raw QEMU `args`, the `lock` property, host PCI
 * and USB devices and serial ports that are not resource mappings or sockets; pve-container
 * raw `lxc.*` keys and device passthrough.
 */
export function rootOnlyReason(write: ConfigWrite): string | undefined {
  const { key, value = '' } = write;
  if (write.type === 'lxc') return /^(lxc\.|dev\d+$)/.test(key) ? `only root can set '${key}' config` : undefined;
  if (key === 'args' || key === 'lock') return `only root can set '${key}' config`;
  if (/^hostpci\d+$/.test(key) && !/(^|,)mapping=/.test(value))
    return `only root can set '${key}' config for non-mapped devices`;
  if (/^serial\d+$/.test(key) && value !== 'socket' && !/(^|,)mapping=/.test(value))
    return `only root can set '${key}' config for real devices`;
  if (/^usb\d+$/.test(key) && /(^|,)host=(?!spice)/.test(value))
    return `only root can set '${key}' config for real devices`;
  return undefined;
}

/**
 * What PVE checks for one written property beyond the endpoint's own check, as an
 * alternative list per requirement (any one of each inner list suffices).
 */
export function configWritePrivileges(write: ConfigWrite): string[][] {
  const { key, value = '' } = write;
  const rootOnly = rootOnlyReason(write);
  if (rootOnly) throw new Error(`${write.type} property '${key}': ${rootOnly} (PVE allows only root@pam)`);
  if (DRIVE.test(key)) {
    if (/media=cdrom/.test(value)) return [['VM.Config.CDROM'], ['Datastore.AllocateSpace', 'Datastore.Audit']];
    // Disks, EFI/TPM state and cloud-init drives allocate space; imports read the source volume.
    return [['VM.Config.Disk'], ['Datastore.AllocateSpace']];
  }
  if (/^net\d+$/.test(key)) return [['VM.Config.Network'], ...(/bridge=/.test(value) ? [['SDN.Use']] : [])];
  if (
    write.type === 'qemu' &&
    (/^ipconfig\d+$/.test(key) ||
      /^(cicustom|cipassword|citype|ciuser|ciupgrade|nameserver|searchdomain|sshkeys)$/.test(key))
  ) {
    return [['VM.Config.Cloudinit', 'VM.Config.Network']];
  }
  const group = (write.type === 'qemu' ? QEMU_GROUPS : LXC_GROUPS).find(([re]) => re.test(key));
  if (!group)
    throw new Error(`${write.type} property '${key}' has no known privilege (PVE allows only root to set it)`);
  return [[group[1]]];
}

export interface RequiredPrivileges {
  privileges: string[];
  /** Why each privilege is needed: the endpoints or properties that need it. */
  why: Record<string, string[]>;
}

/** A requirement still to satisfy: any of `alternatives`, each a set of privileges. */
interface Choice {
  who: string;
  alternatives: string[][];
}

/**
 * The alternatives that satisfy a check, each a set of privileges (paths are ignored: the
 * role is granted on `/` and propagates). Checks met without privileges (any user, the
 * caller's own tasks and permissions) yield an empty alternative.
 */
function alternativesOf(check: PermissionCheck): string[][] {
  switch (check.kind) {
    case 'user-all':
    case 'userid-param':
    case 'task-owner':
      return [[]];
    case 'perm':
      // Pools are not used: a check that only applies with a `pool` parameter never matters.
      if (check.requireParam !== undefined) return [];
      return check.any ? check.privs.map((p) => [p]) : [[...check.privs]];
    case 'or':
      return check.checks.flatMap(alternativesOf);
    case 'and':
      return check.checks
        .map(alternativesOf)
        .reduce<string[][]>((acc, alts) => acc.flatMap((a) => alts.map((b) => [...new Set([...a, ...b])])), [[]]);
  }
}

/**
 * The smallest role meeting every endpoint's check and every handler check for the
 * properties written: requirements with one way to meet them first, then each remaining
 * choice met by the alternative adding the fewest privileges (never an excluded one).
 */
export function requiredPrivileges(
  checks: readonly { endpoint: string; check: PermissionCheck }[],
  writes: readonly ConfigWrite[],
): RequiredPrivileges {
  const choices: Choice[] = [
    ...checks.map((c) => ({ who: c.endpoint, alternatives: alternativesOf(c.check) })),
    ...writes.flatMap((w) =>
      configWritePrivileges(w).map((alternatives) => ({
        who: `${w.type} ${w.key}`,
        alternatives: alternatives.map((p) => [p]),
      })),
    ),
  ];
  const held = new Set<string>();
  const why: Record<string, string[]> = {};
  const grant = (privs: string[], who: string) => {
    for (const p of privs) {
      held.add(p);
      const whys = (why[p] ??= []);
      if (!whys.includes(who)) whys.push(who);
    }
  };
  const allowed = (c: Choice) => c.alternatives.filter((a) => a.every((p) => !EXCLUDED_PRIVILEGES.has(p)));

  for (const c of choices) {
    const options = allowed(c);
    if (options.length === 0)
      throw new Error(
        `${c.who} can only be allowed with an excluded privilege (${c.alternatives.map((a) => a.join('+')).join(' or ')})`,
      );
    if (options.length === 1) grant(options[0]!, c.who);
  }
  for (const c of choices) {
    const options = allowed(c);
    if (options.length === 1) continue;
    const met = options.find((a) => a.every((p) => held.has(p)));
    if (met) {
      grant(met, c.who);
      continue;
    }
    const cheapest = [...options].sort(
      (a, b) => a.filter((p) => !held.has(p)).length - b.filter((p) => !held.has(p)).length,
    )[0]!;
    grant(cheapest, c.who);
  }
  return { privileges: [...held].sort(), why };
}

/** Requirements a set of privileges leaves unmet (empty when it suffices). */
export function unmetRequirements(
  privileges: Iterable<string>,
  checks: readonly { endpoint: string; check: PermissionCheck }[],
  writes: readonly ConfigWrite[],
): string[] {
  const held = new Set(privileges);
  const met = (alternatives: string[][]) => alternatives.some((a) => a.every((p) => held.has(p)));
  return [
    ...checks.filter((c) => !met(alternativesOf(c.check))).map((c) => c.endpoint),
    ...writes.flatMap((w) =>
      configWritePrivileges(w)
        .filter((alts) => !met(alts.map((p) => [p])))
        .map(() => `${w.type} ${w.key}`),
    ),
  ];
}

/** Every endpoint the project calls, with its check. */
export function endpointChecks(): { endpoint: EndpointName; check: PermissionCheck }[] {
  return (Object.keys(endpoints) as EndpointName[]).map((name) => ({
    endpoint: name,
    check: endpoints[name].permission,
  }));
}
