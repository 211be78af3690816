/**
 * One consistent picture of a cluster, as the planners need it. An activity gathers it from
 * PVE (cluster/resources, HA rules, each candidate's config and migrate preconditions); the
 * benchmark builds it from a simulator scenario. Planners read nothing else, so a plan is a
 * pure function of its snapshot and can be recomputed, tested and replayed exactly.
 *
 * Sizes are bytes, CPUs are counts — as PVE's cluster/resources reports them.
 */

export type GuestType = 'qemu' | 'lxc';

export interface NodeState {
  name: string;
  online: boolean;
  memoryTotal: number;
  /** What the node reports in use now (guests, page cache it cannot drop, the host itself). */
  memoryUsed: number;
  /** Logical CPUs. */
  cpus: number;
}

/** A storage as seen from one node (cluster/resources lists shared storages once per node). */
export interface StorageState {
  storage: string;
  node: string;
  shared: boolean;
  /** Enabled and active on this node. */
  active: boolean;
  /** Content types it accepts: `images` (VM disks), `rootdir` (container volumes), `iso`, ... */
  content: string[];
  total: number;
  used: number;
}

export interface GuestState {
  vmid: number;
  name: string;
  type: GuestType;
  node: string;
  status: 'running' | 'stopped' | 'paused';
  template: boolean;
  /** Configured memory; what a running guest may claim on whichever node it runs. */
  memory: number;
  vcpus: number;
  tags: string[];
  /** Managed by PVE's HA stack (cluster/resources carries `hastate`). */
  haManaged: boolean;
  /** The guest config's `lock` (migrate, backup, snapshot, ...), when set. */
  lock?: string;
}

export interface GuestDisk {
  /** Config key: scsi0, ide2, rootfs, mp0, unused0, ... */
  key: string;
  volid: string;
  storage: string;
  size: number;
  shared: boolean;
  cdrom: boolean;
}

/**
 * What must be known about a guest before moving it, gathered only for the guests on the
 * node being emptied: its disks, its host-bound devices and PVE's own migrate preconditions.
 */
export interface MigrationFacts {
  disks: GuestDisk[];
  /** Devices that bind the guest to its host (hostpci0, usb1, ...), from PVE's `local_resources`. */
  localResources: string[];
  /** Nodes PVE refuses as targets, with PVE's reason (unavailable storages, blocking HA resources). */
  notAllowedNodes: Record<string, string>;
  /** The guest has snapshots (its config names a `parent`): PVE cannot live-migrate local disks that have them. */
  hasSnapshots: boolean;
}

export interface HaRule {
  rule: string;
  type: 'node-affinity' | 'resource-affinity';
  /** HA resource ids: `vm:100`, `ct:101`. */
  resources: string[];
  /** resource-affinity: keep together (positive) or apart (negative). */
  affinity?: 'positive' | 'negative';
  /** node-affinity: allowed nodes, higher priority preferred. */
  nodes?: { node: string; priority: number }[];
  /** node-affinity: the resources may run nowhere else. */
  strict?: boolean;
  disabled: boolean;
}

export interface ClusterSnapshot {
  /** When it was taken, ISO 8601; plans say what moment they were computed from. */
  takenAt: string;
  nodes: NodeState[];
  storages: StorageState[];
  guests: GuestState[];
  /** PVE 9 HA rules; empty on PVE 8 and where HA is unused. */
  haRules: HaRule[];
  /** Keyed by vmid, for the guests being planned. */
  migration: Record<number, MigrationFacts>;
  /** Guests being planned whose facts could not be read, with why (they stay, and the plan says so). */
  unreadable: Record<number, string>;
}

/** The HA resource id PVE uses in rules and migrate preconditions. */
export function haResourceId(guest: Pick<GuestState, 'type' | 'vmid'>): string {
  return `${guest.type === 'qemu' ? 'vm' : 'ct'}:${guest.vmid}`;
}
