/**
 * "Which nodes are struggling?" — answered from one `GET /cluster/resources` read: a node is
 * struggling when it is offline, its CPU or memory runs above the threshold, its free memory
 * is below the placement headroom the safety policy keeps, or a storage it uses is nearly full.
 */
import type { ClusterResource } from './pve/cluster/endpoints.js';

export interface HealthThresholds {
  /** CPU usage (fraction of all cores) above which a node is struggling. */
  cpu: number;
  /** Memory in use (fraction) above which a node is struggling. */
  memory: number;
  /** Fraction of memory that must stay free (the policy's `memory_headroom`). */
  memoryHeadroom: number;
  /** Storage use (fraction) above which it is nearly full. */
  storage: number;
}

export const DEFAULT_THRESHOLDS: Omit<HealthThresholds, 'memoryHeadroom'> = { cpu: 0.8, memory: 0.8, storage: 0.9 };

export type HealthIssue =
  | { kind: 'offline'; detail: string }
  | { kind: 'cpu' | 'memory' | 'headroom'; detail: string }
  | { kind: 'storage'; storage: string; detail: string };

export interface StorageUsage {
  storage: string;
  shared: boolean;
  usedBytes: number;
  totalBytes: number;
  usedFraction: number;
}

export interface NodeHealth {
  node: string;
  status: 'ok' | 'struggling' | 'offline';
  cpuUsage: number;
  memoryUsedBytes: number;
  memoryTotalBytes: number;
  memoryUsedFraction: number;
  storages: StorageUsage[];
  issues: HealthIssue[];
}

const percent = (fraction: number) => `${Math.round(fraction * 100)}%`;
const ratio = (used: number, total: number) => (total > 0 ? used / total : 0);

export function assessNodeHealth(resources: readonly ClusterResource[], thresholds: HealthThresholds): NodeHealth[] {
  const storagesByNode = new Map<string, StorageUsage[]>();
  for (const r of resources) {
    if (r.type !== 'storage' || !r.node || !r.storage || r.status === 'unknown') continue;
    const usage: StorageUsage = {
      storage: r.storage,
      shared: Boolean(r.shared),
      usedBytes: r.disk ?? 0,
      totalBytes: r.maxdisk ?? 0,
      usedFraction: ratio(r.disk ?? 0, r.maxdisk ?? 0),
    };
    storagesByNode.set(r.node, [...(storagesByNode.get(r.node) ?? []), usage]);
  }

  const health: NodeHealth[] = [];
  for (const r of resources) {
    if (r.type !== 'node' || !r.node) continue;
    const memoryUsedFraction = ratio(r.mem ?? 0, r.maxmem ?? 0);
    const storages = (storagesByNode.get(r.node) ?? []).sort((a, b) => a.storage.localeCompare(b.storage));
    const issues: HealthIssue[] = [];
    if (r.status !== 'online') {
      issues.push({ kind: 'offline', detail: `node is ${r.status ?? 'unknown'}` });
    } else {
      const cpu = r.cpu ?? 0;
      if (cpu > thresholds.cpu)
        issues.push({ kind: 'cpu', detail: `CPU at ${percent(cpu)} (threshold ${percent(thresholds.cpu)})` });
      if (memoryUsedFraction > thresholds.memory) {
        issues.push({
          kind: 'memory',
          detail: `memory at ${percent(memoryUsedFraction)} (threshold ${percent(thresholds.memory)})`,
        });
      }
      if (1 - memoryUsedFraction < thresholds.memoryHeadroom) {
        issues.push({
          kind: 'headroom',
          detail: `only ${percent(1 - memoryUsedFraction)} of memory free; the policy keeps ${percent(thresholds.memoryHeadroom)} free`,
        });
      }
      for (const s of storages) {
        if (s.usedFraction > thresholds.storage) {
          issues.push({
            kind: 'storage',
            storage: s.storage,
            detail: `storage ${s.storage} at ${percent(s.usedFraction)} (threshold ${percent(thresholds.storage)})`,
          });
        }
      }
    }
    health.push({
      node: r.node,
      status: r.status !== 'online' ? 'offline' : issues.length > 0 ? 'struggling' : 'ok',
      cpuUsage: r.cpu ?? 0,
      memoryUsedBytes: r.mem ?? 0,
      memoryTotalBytes: r.maxmem ?? 0,
      memoryUsedFraction,
      storages,
      issues,
    });
  }
  return health.sort((a, b) => a.node.localeCompare(b.node));
}
