/** Read-only answers: cluster resources and status, nodes, guest lists and status, agent data. */
import { createHash } from 'node:crypto';
import { guestMemoryInUse, type Cluster } from '../cluster.js';
import { fail, parameterError } from '../errors.js';
import type { GuestType } from '../guest-config.js';
import type { Guest, SimNode, StoragePool } from '../state.js';
import { label } from './common.js';

/** Permission probe supplied by the caller's context: does the caller hold any of `privs` at `path`? */
export type Can = (path: string, privs: readonly string[]) => boolean;

function repoid(version: string): string {
  return createHash('sha1').update(`pve-manager/${version}`).digest('hex').slice(0, 16);
}

export function pveversionString(node: SimNode): string {
  return `pve-manager/${node.pveversion}/${repoid(node.pveversion)}`;
}

export function version(node: SimNode): Record<string, unknown> {
  return {
    version: node.pveversion,
    release: node.pveversion.split('.').slice(0, 2).join('.'),
    repoid: repoid(node.pveversion),
  };
}

function nodeCpu(cluster: Cluster, node: SimNode): number {
  let load = 0.01;
  for (const g of cluster.state.guestsOn(node.name)) if (g.status === 'running') load += g.cpuLoad * g.cores;
  return Math.min(1, load / node.cores);
}

function rootDisk(node: SimNode): { total: number; used: number } {
  return { total: 100 * 1024 ** 3, used: 12 * 1024 ** 3 + node.nodeid * 123_456_789 };
}

function guestDiskSize(cluster: Cluster, g: Guest): number {
  const boot = g.drives.find((d) => !d.cdrom && !d.unused);
  return boot ? (cluster.state.volume(boot.volid, g.node)?.size ?? boot.size ?? 0) : 0;
}

/** What PVE shows for a guest in lists and cluster/resources. */
function guestEntry(cluster: Cluster, g: Guest): Record<string, unknown> {
  const now = cluster.clock.now();
  const nodeOnline = cluster.state.node(g.node).online;
  const running = g.status === 'running';
  const uptime = g.uptimeSeconds(now);
  const entry: Record<string, unknown> = {
    vmid: g.vmid,
    name: g.name,
    status: nodeOnline ? g.status : 'unknown',
    maxmem: g.memoryBytes,
    mem: running ? guestMemoryInUse(g) : 0,
    maxcpu: g.cores,
    cpu: running ? g.cpuLoad : 0,
    maxdisk: guestDiskSize(cluster, g),
    disk: 0,
    uptime,
    netin: running ? Math.floor(uptime * 1200 * (1 + g.cpuLoad)) : 0,
    netout: running ? Math.floor(uptime * 800 * (1 + g.cpuLoad)) : 0,
    diskread: running ? Math.floor(uptime * 4096) : 0,
    diskwrite: running ? Math.floor(uptime * 2048) : 0,
  };
  if (g.template) entry['template'] = 1;
  if (g.lock) entry['lock'] = g.lock;
  if (g.config['tags']) entry['tags'] = g.config['tags'];
  if (running && g.pid) entry['pid'] = g.pid;
  return entry;
}

function haState(cluster: Cluster, g: Guest): string | undefined {
  const ha = cluster.state.haOf(g);
  if (!ha) return undefined;
  const request = cluster.state.haRequests.get(g.vmid);
  if (request === 'migrate' || g.lock === 'migrate') return 'migrate';
  if (request === 'start') return 'starting';
  if (request === 'stop') return 'stopping';
  return ha.state;
}

/** GET /cluster/resources */
export function clusterResources(cluster: Cluster, type: string | undefined, can: Can): Record<string, unknown>[] {
  const result: Record<string, unknown>[] = [];
  const { state } = cluster;
  if (!type || type === 'node') {
    for (const node of state.nodes.values()) {
      const entry: Record<string, unknown> = {
        id: `node/${node.name}`,
        type: 'node',
        node: node.name,
        status: node.online ? 'online' : 'offline',
      };
      if (can(`/nodes/${node.name}`, ['Sys.Audit']) && node.online) {
        const disk = rootDisk(node);
        Object.assign(entry, {
          maxcpu: node.cores,
          cpu: nodeCpu(cluster, node),
          maxmem: node.memory,
          mem: cluster.usedMemory(node.name) + node.reservedMemory,
          maxdisk: disk.total,
          disk: disk.used,
          uptime: Math.floor((cluster.clock.now() - node.bootedAt) / 1000),
          level: '',
          'cgroup-mode': 2,
        });
      }
      result.push(entry);
    }
  }
  if (!type || type === 'vm') {
    for (const g of [...state.guests.values()].sort((a, b) => a.vmid - b.vmid)) {
      if (!can(`/vms/${g.vmid}`, ['VM.Audit'])) continue;
      const entry: Record<string, unknown> = {
        id: `${g.type}/${g.vmid}`,
        type: g.type,
        node: g.node,
        ...guestEntry(cluster, g),
      };
      const hastate = haState(cluster, g);
      if (hastate) entry['hastate'] = hastate;
      result.push(entry);
    }
  }
  if (!type || type === 'storage') {
    // A shared pool is listed once per node: add up its volumes once, not once per node.
    const used = new Map<StoragePool, number>();
    const usedOf = (pool: StoragePool) => used.get(pool) ?? used.set(pool, pool.used).get(pool)!;
    for (const node of state.nodes.values()) {
      for (const pool of state.poolsOn(node.name)) {
        if (!can(`/storage/${pool.id}`, ['Datastore.Audit', 'Datastore.AllocateSpace'])) continue;
        result.push({
          id: `storage/${node.name}/${pool.id}`,
          type: 'storage',
          storage: pool.id,
          node: node.name,
          status: node.online ? 'available' : 'unknown',
          plugintype: pool.spec.type,
          content: [...pool.spec.content].sort().join(','),
          shared: pool.shared ? 1 : 0,
          maxdisk: pool.total,
          disk: usedOf(pool),
        });
      }
    }
  }
  return result;
}

/** GET /cluster/status, as answered by `local`. */
export function clusterStatus(cluster: Cluster, local: string): Record<string, unknown>[] {
  const nodes = [...cluster.state.nodes.values()];
  return [
    {
      type: 'cluster',
      id: 'cluster',
      name: cluster.state.clusterName,
      nodes: nodes.length,
      quorate: cluster.quorate ? 1 : 0,
      version: nodes.length + 4,
    },
    ...nodes.map((n) => ({
      type: 'node',
      id: `node/${n.name}`,
      name: n.name,
      nodeid: n.nodeid,
      ip: n.ip,
      online: n.online ? 1 : 0,
      local: n.name === local ? 1 : 0,
      level: '',
    })),
  ];
}

/** GET /nodes */
export function nodeList(
  cluster: Cluster,
  can: Can,
  fingerprintOf: (node: string) => string,
): Record<string, unknown>[] {
  return [...cluster.state.nodes.values()].map((n) => {
    const entry: Record<string, unknown> = {
      node: n.name,
      id: `node/${n.name}`,
      type: 'node',
      status: n.online ? 'online' : 'offline',
    };
    if (n.online && can(`/nodes/${n.name}`, ['Sys.Audit'])) {
      const disk = rootDisk(n);
      Object.assign(entry, {
        cpu: nodeCpu(cluster, n),
        maxcpu: n.cores,
        mem: cluster.usedMemory(n.name) + n.reservedMemory,
        maxmem: n.memory,
        disk: disk.used,
        maxdisk: disk.total,
        uptime: Math.floor((cluster.clock.now() - n.bootedAt) / 1000),
        level: '',
        ssl_fingerprint: fingerprintOf(n.name),
      });
    }
    return entry;
  });
}

/** GET /nodes/{node}/status */
export function nodeStatus(cluster: Cluster, name: string): Record<string, unknown> {
  const node = cluster.state.node(name);
  const used = cluster.usedMemory(name) + node.reservedMemory;
  const cpu = nodeCpu(cluster, node);
  const load = (cpu * node.cores).toFixed(2);
  const disk = rootDisk(node);
  const swapTotal = 8 * 1024 ** 3;
  return {
    cpu,
    wait: 0.0004,
    idle: 0,
    cpuinfo: {
      cores: Math.max(1, Math.floor(node.cores / 2)),
      cpus: node.cores,
      sockets: 1,
      model: 'AMD EPYC 7302P 16-Core Processor',
      mhz: '3000.000',
      hvm: '1',
      user_hz: 100,
    },
    memory: { total: node.memory, used, free: node.memory - used, available: node.memory - used },
    swap: { total: swapTotal, used: 0, free: swapTotal },
    rootfs: { total: disk.total, used: disk.used, free: disk.total - disk.used, avail: disk.total - disk.used },
    loadavg: [load, load, load],
    uptime: Math.floor((cluster.clock.now() - node.bootedAt) / 1000),
    pveversion: pveversionString(node),
    kversion: `Linux ${node.kernel} #1 SMP PREEMPT_DYNAMIC PMX ${node.kernel} (2025-10-21T11:55Z)`,
    'current-kernel': {
      sysname: 'Linux',
      release: node.kernel,
      machine: 'x86_64',
      version: '#1 SMP PREEMPT_DYNAMIC PMX',
    },
    'boot-info': { mode: 'efi', secureboot: 0 },
    ksm: { shared: 0 },
  };
}

/** GET /nodes/{node}/{qemu|lxc} */
export function guestList(cluster: Cluster, node: string, type: GuestType, can: Can): Record<string, unknown>[] {
  return cluster.state
    .guestsOn(node)
    .filter((g) => g.type === type && can(`/vms/${g.vmid}`, ['VM.Audit']))
    .sort((a, b) => a.vmid - b.vmid)
    .map((g) => {
      const entry = guestEntry(cluster, g);
      entry['cpus'] = entry['maxcpu'];
      delete entry['maxcpu'];
      return entry;
    });
}

/** GET .../status/current */
export function guestStatus(cluster: Cluster, g: Guest): Record<string, unknown> {
  const entry = guestEntry(cluster, g);
  entry['cpus'] = entry['maxcpu'];
  delete entry['maxcpu'];
  const ha = cluster.state.haOf(g);
  entry['ha'] = ha ? { managed: 1, state: ha.state } : { managed: 0 };
  if (g.type === 'qemu') {
    entry['qmpstatus'] = g.status;
    if (g.agentEnabled) entry['agent'] = 1;
    if (g.status === 'running') {
      entry['running-machine'] = 'pc-q35-9.2+pve1';
      entry['running-qemu'] = '9.2.0';
    }
  }
  return entry;
}

/** GET .../agent/network-get-interfaces: an address only once the guest has booted far enough. */
export function agentNetworkInterfaces(cluster: Cluster, g: Guest): Record<string, unknown> {
  if (!g.agentEnabled) throw fail('No QEMU guest agent configured');
  if (g.status !== 'running') throw fail(`${label(g)} is not running`);
  const sinceBoot = cluster.clock.now() - (g.startedAt ?? 0);
  if (sinceBoot < cluster.state.timing.agent_ip_delay_seconds * 1000) throw fail('QEMU guest agent is not running');
  const mac = /([0-9A-F]{2}(:[0-9A-F]{2}){5})/i.exec(g.config['net0'] ?? '')?.[1]?.toLowerCase() ?? 'bc:24:11:00:00:01';
  return {
    result: [
      {
        name: 'lo',
        'hardware-address': '00:00:00:00:00:00',
        'ip-addresses': [
          { 'ip-address-type': 'ipv4', 'ip-address': '127.0.0.1', prefix: 8 },
          { 'ip-address-type': 'ipv6', 'ip-address': '::1', prefix: 128 },
        ],
        statistics: {
          'rx-bytes': 0,
          'tx-bytes': 0,
          'rx-packets': 0,
          'tx-packets': 0,
          'rx-errs': 0,
          'tx-errs': 0,
          'rx-dropped': 0,
          'tx-dropped': 0,
        },
      },
      {
        name: 'eth0',
        'hardware-address': mac,
        'ip-addresses': [
          { 'ip-address-type': 'ipv4', 'ip-address': g.ip, prefix: 24 },
          {
            'ip-address-type': 'ipv6',
            'ip-address': `fe80::be24:11ff:fe${mac.slice(9, 11)}:${mac.slice(12, 14)}${mac.slice(15, 17)}`,
            prefix: 64,
          },
        ],
        statistics: {
          'rx-bytes': 123456,
          'tx-bytes': 65432,
          'rx-packets': 1024,
          'tx-packets': 512,
          'rx-errs': 0,
          'tx-errs': 0,
          'rx-dropped': 0,
          'tx-dropped': 0,
        },
      },
    ],
  };
}

/** GET /cluster/nextid: PVE answers with the id as a string. */
export function nextId(cluster: Cluster, wanted: number | undefined): string {
  if (wanted !== undefined) {
    if (cluster.state.guests.has(wanted)) throw parameterError({ vmid: `VM ${wanted} already exists` });
    return String(wanted);
  }
  let id = 100;
  while (cluster.state.guests.has(id)) id++;
  return String(id);
}
