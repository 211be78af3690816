import { describe, expect, it } from 'vitest';
import { assessNodeHealth, DEFAULT_THRESHOLDS } from '../../lib/health.js';
import type { ClusterResource } from '../../lib/pve/cluster/endpoints.js';

const GiB = 1024 ** 3;
const thresholds = { ...DEFAULT_THRESHOLDS, memoryHeadroom: 0.3 };

function node(name: string, over: Partial<ClusterResource> = {}): ClusterResource {
  return {
    id: `node/${name}`,
    type: 'node',
    node: name,
    status: 'online',
    cpu: 0.2,
    maxcpu: 16,
    mem: 20 * GiB,
    maxmem: 100 * GiB,
    ...over,
  };
}

function storage(nodeName: string, id: string, used: number, total: number, shared = false): ClusterResource {
  return {
    id: `storage/${nodeName}/${id}`,
    type: 'storage',
    node: nodeName,
    storage: id,
    status: 'available',
    disk: used,
    maxdisk: total,
    shared,
  };
}

describe('which nodes are struggling', () => {
  it('names each reason: CPU, memory, headroom, a nearly full storage, offline', () => {
    const health = assessNodeHealth(
      [
        node('calm'),
        node('busy', { cpu: 0.91 }),
        node('full', { mem: 85 * GiB }),
        node('tight', { mem: 75 * GiB }),
        node('disk'),
        storage('disk', 'local-lvm', 95 * GiB, 100 * GiB),
        storage('calm', 'local-lvm', 10 * GiB, 100 * GiB),
        node('gone', { status: 'offline', cpu: undefined, mem: undefined, maxmem: undefined }),
      ],
      thresholds,
    );
    const byNode = Object.fromEntries(health.map((h) => [h.node, h]));
    expect(byNode['calm']).toMatchObject({ status: 'ok', issues: [] });
    expect(byNode['busy']!.issues).toEqual([{ kind: 'cpu', detail: 'CPU at 91% (threshold 80%)' }]);
    expect(byNode['full']!.issues.map((i) => i.kind)).toEqual(['memory', 'headroom']);
    // 75% used is below the 80% threshold but leaves less than the policy's 30% free.
    expect(byNode['tight']!.issues).toEqual([
      { kind: 'headroom', detail: 'only 25% of memory free; the policy keeps 30% free' },
    ]);
    expect(byNode['disk']!.issues).toEqual([
      { kind: 'storage', storage: 'local-lvm', detail: 'storage local-lvm at 95% (threshold 90%)' },
    ]);
    expect(byNode['gone']).toMatchObject({ status: 'offline', issues: [{ kind: 'offline' }] });
    expect(health.filter((h) => h.status === 'struggling').map((h) => h.node)).toEqual([
      'busy',
      'disk',
      'full',
      'tight',
    ]);
  });
});
