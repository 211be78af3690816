/**
 * The baseline PVE ships: `pvenode migrateall` (POST /nodes/{node}/migrateall), reproduced
 * call for call over the API. One target for everything; a fixed pool of `max-workers`
 * migrations, each started as migrateall starts it (running VMs online with local disks,
 * running containers by restart) and waited on only to free its slot: its exit status is not
 * checked, and an HA guest's slot frees as soon as its `hamigrate` request is queued.
 */
import type { PveClient } from '../lib/pve/client.js';
import { waitForTask } from '../lib/pve/tasks/wait.js';

export interface MigrateAllResult {
  target: string;
  /** Guests whose migrate request PVE refused outright. */
  refused: { vmid: number; message: string }[];
}

/** PVE's `max_workers` default in datacenter.cfg. */
export const DEFAULT_MAX_WORKERS = 4;

export async function migrateAll(
  client: PveClient,
  source: string,
  opts: { maxWorkers: number; polling: { pollMs: number; maxPollMs: number } },
): Promise<MigrateAllResult> {
  // The operator's choice of target: the other online node with the most free memory.
  const nodes = await client.nodes.list();
  const target = nodes
    .filter((n) => n.node !== source && n.status === 'online')
    .sort((a, b) => (b.maxmem ?? 0) - (b.mem ?? 0) - ((a.maxmem ?? 0) - (a.mem ?? 0)))[0]?.node;
  if (!target) throw new Error(`no other online node to migrate ${source}'s guests to`);

  const guests = (await client.cluster.resources({ type: 'vm' }))
    .filter((r) => r.node === source && r.vmid !== undefined)
    .sort((a, b) => a.vmid! - b.vmid!);
  const refused: MigrateAllResult['refused'] = [];
  let next = 0;
  const worker = async () => {
    while (next < guests.length) {
      const guest = guests[next++]!;
      const running = guest.status === 'running';
      try {
        const upid =
          guest.type === 'lxc'
            ? await client.lxc.migrate({
                node: source,
                vmid: guest.vmid!,
                target,
                ...(running ? { restart: true } : {}),
              })
            : await client.qemu.migrate({
                node: source,
                vmid: guest.vmid!,
                target,
                ...(running ? { online: true, 'with-local-disks': true } : {}),
              });
        await waitForTask(client, upid, opts.polling).catch(() => undefined);
      } catch (err) {
        refused.push({ vmid: guest.vmid!, message: err instanceof Error ? err.message : String(err) });
      }
    }
  };
  await Promise.all(Array.from({ length: opts.maxWorkers }, worker));
  return { target, refused };
}
