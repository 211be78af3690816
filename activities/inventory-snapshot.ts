/**
 * Reads one ClusterSnapshot from PVE for the planners: cluster/resources for nodes, storages
 * and every guest, HA rules where the cluster has them, and — for the guests on the nodes
 * being planned — each config's disks and PVE's own migrate preconditions. Every call is a
 * read, repeated on transient failures, so a flaky API costs time rather than the plan.
 */
import { inventoryFromResources } from '../lib/inventory.js';
import type { PveClient } from '../lib/pve/client.js';
import type { ClusterResource } from '../lib/pve/cluster/endpoints.js';
import { isTransient } from '../lib/pve/errors.js';
import type {
  ClusterSnapshot,
  GuestDisk,
  GuestState,
  GuestType,
  HaRule,
  MigrationFacts,
  StorageState,
} from '../lib/planning/snapshot.js';

const QEMU_VOLUME_KEY = /^((ide|sata|scsi|virtio)\d+|efidisk0|tpmstate0|unused\d+)$/;
const LXC_VOLUME_KEY = /^(rootfs|mp\d+|unused\d+)$/;
/** Per-guest reads run this many at a time: fast on big nodes, gentle on pveproxy. */
const READ_CONCURRENCY = 8;

export async function readClusterSnapshot(
  client: PveClient,
  opts: { detailsFor: string[]; onProgress?: (done: number, total: number) => void },
): Promise<ClusterSnapshot> {
  const takenAt = new Date().toISOString();
  const [resources, haRules] = await Promise.all([client.cluster.resources(), readHaRules(client)]);
  const inventory = inventoryFromResources(resources);
  const storages = resources.filter((r) => r.type === 'storage').map(storageState);
  const guests: GuestState[] = inventory.guests.map((g) => ({
    vmid: g.vmid,
    name: g.name,
    type: g.type,
    node: g.node,
    status: g.status === 'running' ? 'running' : g.status === 'paused' ? 'paused' : 'stopped',
    template: g.template,
    memory: g.memoryBytes,
    vcpus: g.cores,
    tags: g.tags,
    haManaged: g.haState !== undefined,
    ...(g.lock ? { lock: g.lock } : {}),
  }));

  const detailed = guests.filter((g) => opts.detailsFor.includes(g.node));
  const migration: Record<number, MigrationFacts> = {};
  const unreadable: Record<number, string> = {};
  let done = 0;
  await forEachLimited(detailed, READ_CONCURRENCY, async (guest) => {
    try {
      migration[guest.vmid] = await readMigrationFacts(client, guest, storages);
    } catch (err) {
      // A hiccup fails the whole read (and it is retried); an answer PVE will give again
      // makes this one guest stay, with the reason in the plan, instead of blocking the rest.
      if (isTransient(err) || !(err instanceof Error)) throw err;
      unreadable[guest.vmid] = err.message;
    }
    opts.onProgress?.(++done, detailed.length);
  });

  return {
    takenAt,
    nodes: inventory.nodes.map((n) => ({
      name: n.name,
      online: n.online,
      memoryTotal: n.memoryTotalBytes,
      memoryUsed: n.memoryUsedBytes,
      cpus: n.cores,
    })),
    storages,
    guests,
    haRules,
    migration,
    unreadable,
  };
}

function storageState(r: ClusterResource): StorageState {
  return {
    storage: r.storage ?? r.id.split('/').at(-1)!,
    node: r.node ?? '',
    shared: Boolean(r.shared),
    active: r.status === 'available',
    content: (r.content ?? '').split(',').filter(Boolean),
    total: r.maxdisk ?? 0,
    used: r.disk ?? 0,
  };
}

/** The cluster's HA rules in the planner's terms. */
async function readHaRules(client: PveClient): Promise<HaRule[]> {
  const rules = await client.cluster.haRules();
  return rules.map((r) => ({
    rule: r.rule,
    type: r.type === 'node-affinity' ? 'node-affinity' : 'resource-affinity',
    resources: (r.resources ?? '').split(',').filter(Boolean),
    ...(r.affinity === 'positive' || r.affinity === 'negative' ? { affinity: r.affinity } : {}),
    ...(r.nodes
      ? {
          nodes: r.nodes
            .split(',')
            .filter(Boolean)
            .map((n) => {
              const [node, priority] = n.split(':');
              return { node: node!, priority: Number(priority ?? 0) };
            }),
        }
      : {}),
    ...(r.strict !== undefined ? { strict: Boolean(r.strict) } : {}),
    disabled: Boolean(r.disable),
  }));
}

async function readMigrationFacts(
  client: PveClient,
  guest: GuestState,
  storages: StorageState[],
): Promise<MigrationFacts> {
  const at = { node: guest.node, vmid: guest.vmid };
  const isShared = (sid: string) => storages.some((s) => s.storage === sid && s.shared);
  if (guest.type === 'qemu') {
    const [config, pre] = await Promise.all([client.qemu.config(at), client.qemu.migratePreconditions(at)]);
    const sizes = new Map(pre.local_disks.map((d) => [d.volid, d.size ?? 0]));
    const { disks, bound } = volumes('qemu', config, isShared, sizes);
    return {
      disks,
      localResources: [...pre.local_resources, ...bound],
      notAllowedNodes: notAllowed(pre.not_allowed_nodes),
      hasSnapshots: config['parent'] !== undefined,
    };
  }
  const [config, pre] = await Promise.all([client.lxc.config(at), client.lxc.migratePreconditions(at)]);
  const { disks, bound } = volumes('lxc', config, isShared, new Map());
  return {
    disks,
    localResources: bound,
    notAllowedNodes: notAllowed(pre['not-allowed-nodes']),
    hasSnapshots: config['parent'] !== undefined,
  };
}

/**
 * The volumes a config references. Host paths (a passed-through block device, a container
 * bind mount) cannot move with the guest: they come back as `bound`, like local resources.
 */
function volumes(
  type: GuestType,
  config: Record<string, unknown>,
  isShared: (storage: string) => boolean,
  sizes: Map<string, number>,
): { disks: GuestDisk[]; bound: string[] } {
  const disks: GuestDisk[] = [];
  const bound: string[] = [];
  for (const [key, value] of Object.entries(config)) {
    if (!(type === 'qemu' ? QEMU_VOLUME_KEY : LXC_VOLUME_KEY).test(key) || typeof value !== 'string') continue;
    const [volume = '', ...options] = value.split(',');
    const volid = volume.replace(/^(file|volume)=/, '');
    if (volid === '' || volid === 'none' || volid === 'cdrom') continue;
    if (volid.startsWith('/')) {
      bound.push(key);
      continue;
    }
    const opt = (name: string) => options.find((o) => o.startsWith(`${name}=`))?.slice(name.length + 1);
    const storage = volid.split(':')[0]!;
    disks.push({
      key,
      volid,
      storage,
      size: sizes.get(volid) ?? parseSize(opt('size')),
      shared: isShared(storage),
      cdrom: opt('media') === 'cdrom',
    });
  }
  return { disks, bound };
}

/** PVE's `not_allowed_nodes` lists allowed nodes too, as `{}`; only the ones with a reason count. */
function notAllowed(
  nodes:
    | Record<
        string,
        {
          unavailable_storages?: string[];
          'unavailable-resources'?: string[];
          'blocking-ha-resources'?: { sid: string; cause: string }[];
        }
      >
    | undefined,
): Record<string, string> {
  const result: Record<string, string> = {};
  for (const [node, why] of Object.entries(nodes ?? {})) {
    const reasons = [
      ...(why.unavailable_storages?.length ? [`storage ${why.unavailable_storages.join(', ')} unavailable there`] : []),
      ...(why['unavailable-resources']?.length
        ? [`mapped ${why['unavailable-resources'].join(', ')} unavailable there`]
        : []),
      ...(why['blocking-ha-resources']?.length
        ? [`HA resource ${why['blocking-ha-resources'].map((b) => `${b.sid} (${b.cause})`).join(', ')} blocks it`]
        : []),
    ];
    if (reasons.length) result[node] = `PVE refuses: ${reasons.join('; ')}`;
  }
  return result;
}

const SIZE_UNITS: Record<string, number> = { K: 1, M: 2, G: 3, T: 4 };

/** `32G`, `512M`, `4T` (PVE's binary units) or plain bytes; 0 when absent. */
function parseSize(size: string | undefined): number {
  const m = /^(\d+(?:\.\d+)?)([KMGT])?$/.exec(size ?? '');
  if (!m) return 0;
  return Math.round(Number(m[1]) * 1024 ** (m[2] ? SIZE_UNITS[m[2]]! : 0));
}

async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}
