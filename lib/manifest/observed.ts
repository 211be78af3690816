/**
 * One reading of the cluster, as the fleet diff sees it: guests (with the configs of those it
 * compares), nodes, storages, and where the volumes the manifest names are.
 */
import type { NodeView } from '../inventory.js';
import type { PveConfig } from './pve-config.js';

export type GuestKind = 'qemu' | 'lxc';

export interface ObservedGuest {
  vmid: number;
  name: string;
  kind: GuestKind;
  node: string;
  status: string;
  template: boolean;
  tags: string[];
  /** Configured memory and cores, as cluster/resources reports them (for placement). */
  memoryBytes: number;
  cores: number;
  /** The guest's config (with its digest), for the guests the diff compares; see `guestsToInspect`. */
  config?: PveConfig;
  lock?: string;
  haState?: string;
}

export interface ObservedStorage {
  storage: string;
  node: string;
  content: string[];
  shared: boolean;
  freeBytes: number;
}

/** One reading of the cluster. */
export interface ObservedCluster {
  nodes: NodeView[];
  guests: ObservedGuest[];
  storages: ObservedStorage[];
  /** The nodes holding each volume the manifest names (images, ISOs, container templates). */
  volumes: Record<string, string[]>;
}

export function kindLabel(kind: GuestKind): string {
  return kind === 'qemu' ? 'VM' : 'CT';
}
