/**
 * What a rehearsal copies from a real cluster, read through the project's PVE client and
 * nothing but GETs: `/cluster/resources`, each guest's config, the contents of the storages
 * that hold ISOs and templates, and the HA rules. The simulator imports it
 * (sim/scenario-import.ts), so an operation can be tried on the copy before the cluster.
 */
import type { PveClient } from './pve/client.js';
import type { Inventory } from '../sim/scenario-import.js';

/** Reads at once; gentle on pveproxy. */
const CONCURRENCY = 8;
/** Only these listings matter to a copy: ISOs a CD drive names, and the sizes of disk volumes. */
const LISTED_CONTENT = new Set(['iso', 'vztmpl', 'images', 'rootdir']);

export async function readRehearsalInventory(client: PveClient): Promise<Inventory> {
  const resources = await client.cluster.resources();
  const guests = resources.filter((r) => (r.type === 'qemu' || r.type === 'lxc') && r.vmid !== undefined && r.node);
  const configs: NonNullable<Inventory['configs']> = {};
  await forEachLimited(guests, async (g) => {
    const at = { node: g.node!, vmid: g.vmid! };
    const config = await (g.type === 'qemu' ? client.qemu.config(at) : client.lxc.config(at));
    configs[String(g.vmid)] = Object.fromEntries(
      Object.entries(config).filter(
        (e): e is [string, string | number] => typeof e[1] === 'string' || typeof e[1] === 'number',
      ),
    );
  });
  const listed = resources.filter(
    (r) =>
      r.type === 'storage' &&
      r.node &&
      r.storage &&
      r.status === 'available' &&
      (r.content ?? '').split(',').some((c) => LISTED_CONTENT.has(c)),
  );
  // A shared storage holds the same volumes whichever node lists it: once is enough.
  const storages = listed.filter((r, i) => !r.shared || listed.findIndex((x) => x.storage === r.storage) === i);
  const storageContent: NonNullable<Inventory['storage_content']> = {};
  await forEachLimited(storages, async (s) => {
    const volumes = await client.storage.content({ node: s.node!, storage: s.storage! });
    storageContent[`${s.node}/${s.storage}`] = volumes.map((v) => ({
      volid: v.volid,
      ...(v.size !== undefined ? { size: v.size } : {}),
      ...(v.content ? { content: v.content } : {}),
    }));
  });
  return { resources, configs, storage_content: storageContent, ha_rules: await client.cluster.haRules() };
}

async function forEachLimited<T>(items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
}
