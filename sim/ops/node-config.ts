/**
 * What common PVE clients read besides guests: the storage configuration, a node's network
 * interfaces and clock, datacenter options, pools, container interfaces. The simulated nodes
 * each have one NIC (`eno1`) enslaved to the bridge every guest uses (`vmbr0`).
 */
import type { Cluster } from '../cluster.js';
import { fail } from '../errors.js';
import type { Guest } from '../state.js';
import { label } from './common.js';
import type { Can } from './views.js';

/** GET /storage: the storage.cfg entries the caller may see (Datastore.Audit or AllocateSpace). */
export function storageConfigs(cluster: Cluster, type: string | undefined, can: Can): Record<string, unknown>[] {
  return [...cluster.state.storages.values()]
    .filter((s) => !type || s.type === type)
    .filter((s) => can(`/storage/${s.id}`, ['Datastore.Audit', 'Datastore.AllocateSpace']))
    .map((s) => ({
      storage: s.id,
      type: s.type,
      content: [...s.content].sort().join(','),
      ...(cluster.state.isShared(s.id) ? { shared: 1 } : {}),
      ...(s.path ? { path: s.path } : {}),
      ...(s.nodes ? { nodes: s.nodes.join(',') } : {}),
      digest: '0'.repeat(40),
    }));
}

const BRIDGE_TYPES = new Set(['bridge', 'any_bridge', 'any_local_bridge', 'include_sdn']);

/** GET /nodes/{node}/network */
export function nodeNetwork(cluster: Cluster, name: string, type: string | undefined): Record<string, unknown>[] {
  const node = cluster.state.node(name);
  const nic = {
    iface: 'eno1',
    type: 'eth',
    method: 'manual',
    families: ['inet'],
    active: 1,
    autostart: 1,
    exists: 1,
    priority: 1,
  };
  const bridge = {
    iface: 'vmbr0',
    type: 'bridge',
    method: 'static',
    families: ['inet'],
    active: 1,
    autostart: 1,
    priority: 2,
    address: node.ip,
    netmask: '24',
    cidr: `${node.ip}/24`,
    gateway: node.ip.replace(/\.\d+$/, '.254'),
    bridge_ports: 'eno1',
    bridge_stp: 'off',
    bridge_fd: '0',
  };
  if (type === undefined) return [nic, bridge];
  if (BRIDGE_TYPES.has(type)) return [bridge];
  return type === 'eth' ? [nic] : [];
}

/** GET /nodes/{node}/time: the node's own clock, which may be off from the caller's. */
export function nodeTime(cluster: Cluster, name: string): Record<string, unknown> {
  const time = Math.floor(cluster.nodeNow(name) / 1000);
  return { time, localtime: time, timezone: 'UTC' };
}

/** GET /cluster/options: datacenter.cfg as a fresh install writes it. */
export function clusterOptions(): Record<string, unknown> {
  return { keyboard: 'en-us' };
}

/** GET /nodes/{node}/lxc/{vmid}/interfaces: what `ip` shows inside a running container. */
export function lxcInterfaces(guest: Guest): Record<string, unknown>[] {
  if (guest.status !== 'running') throw fail(`${label(guest)} not running`);
  const mac = /hwaddr=([0-9A-F:]{17})/i.exec(guest.config['net0'] ?? '')?.[1] ?? 'BC:24:11:00:00:01';
  const v4 = (address: string, prefix: number) => ({ 'ip-address-type': 'inet', 'ip-address': address, prefix });
  return [
    {
      name: 'lo',
      hwaddr: '00:00:00:00:00:00',
      'hardware-address': '00:00:00:00:00:00',
      inet: '127.0.0.1/8',
      inet6: '::1/128',
      'ip-addresses': [v4('127.0.0.1', 8), { 'ip-address-type': 'inet6', 'ip-address': '::1', prefix: 128 }],
    },
    {
      name: 'eth0',
      hwaddr: mac.toLowerCase(),
      'hardware-address': mac.toLowerCase(),
      inet: `${guest.ip}/24`,
      'ip-addresses': [v4(guest.ip, 24)],
    },
  ];
}
