import { describe, expect, it } from 'vitest';
import { summarize } from '../../activities/inventory.js';
import type { GuestView, Inventory, NodeView } from '../../lib/inventory.js';

const node = (name: string): NodeView => ({
  name,
  online: true,
  cpuUsage: 0.1,
  cores: 8,
  memoryUsedBytes: 1,
  memoryTotalBytes: 2,
});
const guest = (vmid: number, over: Partial<GuestView>): GuestView => ({
  vmid,
  name: `g${vmid}`,
  type: 'qemu',
  node: 'pve1',
  status: 'running',
  template: false,
  tags: [],
  cores: 1,
  memoryBytes: 1,
  diskBytes: 1,
  uptimeSeconds: 0,
  ...over,
});

describe('the inventory summary', () => {
  it('counts guests per node and in total; templates only as templates', () => {
    const inventory: Inventory = {
      nodes: [node('pve1'), node('pve2'), node('pve3')],
      guests: [
        guest(100, { template: true, status: 'stopped', node: 'pve2' }),
        guest(101, {}),
        guest(102, { status: 'stopped' }),
        guest(103, { type: 'lxc', node: 'pve2' }),
        guest(104, { node: 'pve2', status: 'paused' }),
      ],
    };
    expect(summarize('home', inventory)).toEqual({
      environment: 'home',
      nodes: [
        { ...node('pve1'), guests: 2, running: 1 },
        { ...node('pve2'), guests: 2, running: 1 },
        { ...node('pve3'), guests: 0, running: 0 },
      ],
      totals: { vms: 3, containers: 1, templates: 1, running: 2, stopped: 2 },
    });
  });
});
