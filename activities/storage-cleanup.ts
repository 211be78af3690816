/**
 * Storage clean-up: the removal of images no guest uses. A volume counts as used when any guest's configuration —
 * current or in a snapshot — names it (or a linked clone built on it), so nothing a rollback
 * still needs is ever removed.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { inventoryFromResources, type GuestView } from '../lib/inventory.js';
import { mapBounded } from '../lib/lifecycle/bounded.js';
import type { StorageCleanupInput } from '../lib/operations/catalog.js';
import { formatBytes } from '../lib/planning/units.js';
import type { PveClient } from '../lib/pve/client.js';
import type { PlanDraft } from '../lib/operations/plan.js';
import type { WorkerDeps } from '../worker/deps.js';
import { classified, fail } from './failures.js';
import { guestApi, type VmStepOutcome } from './vm.js';
import { PveUnavailableError } from '../lib/pve/errors.js';
import { Failure } from '../lib/operations/failures.js';

export interface UnusedVolume {
  node: string;
  storage: string;
  volid: string;
  size: number;
  content: string;
  /** The guest the volume's name says it belongs to, and whether that guest still exists. */
  owner?: { vmid: number; exists: boolean; name?: string };
}

/** Drive values name volumes first: `local-lvm:vm-101-disk-0,size=32G`. */
function volumeOf(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const first = value.split(',')[0]!.replace(/^(file|volume)=/, '');
  return first.includes(':') ? first : undefined;
}

const DRIVE_KEY = /^((ide|sata|scsi|virtio)\d+|efidisk0|tpmstate0|unused\d+|rootfs|mp\d+)$/;

/** Every volume one guest's configuration names, now and in each of its snapshots. */
async function referencesOf(client: PveClient, guest: Pick<GuestView, 'vmid' | 'type' | 'node'>): Promise<Set<string>> {
  const api = guestApi(client, guest.type);
  const ref = { node: guest.node, vmid: guest.vmid };
  const snapshots = (await api.snapshots(ref)).map((s) => s.name).filter((n) => n !== 'current');
  const configs = await Promise.all([
    api.config(ref),
    ...snapshots.map((snapshot) => api.config({ ...ref, snapshot })),
  ]);
  const volumes = new Set<string>();
  for (const config of configs) {
    for (const [key, value] of Object.entries(config)) {
      const volid = DRIVE_KEY.test(key) ? volumeOf(value) : undefined;
      if (volid) volumes.add(volid);
    }
  }
  return volumes;
}

/** A linked clone's disk (`base-100-disk-0/vm-101-disk-0`) uses its template's base volume. */
function isReferenced(volid: string, references: ReadonlySet<string>): boolean {
  if (references.has(volid)) return true;
  for (const r of references) if (r.startsWith(`${volid}/`)) return true;
  return false;
}

export function createStorageCleanupActivities(deps: Pick<WorkerDeps, 'pve' | 'config'>) {
  return {
    async planStorageCleanup(input: StorageCleanupInput): Promise<PlanDraft<{ volumes: UnusedVolume[] }>> {
      const client = await deps.pve(input.environment);
      return classified('write', async () => {
        const resources = await client.cluster.resources();
        const { guests } = inventoryFromResources(resources);
        const wanted = ['images', 'rootdir', ...(input.includeIsos ? ['iso'] : [])];
        // Shared storages hold the same volumes on every node: list them once.
        const seen = new Set<string>();
        const stores = resources.filter((r) => {
          if (r.type !== 'storage' || !r.node || !r.storage || r.status !== 'available') return false;
          if ((input.node && r.node !== input.node) || (input.storage && r.storage !== input.storage)) return false;
          if (!(r.content ?? '').split(',').some((c) => wanted.includes(c))) return false;
          const key = r.shared ? r.storage : `${r.node}/${r.storage}`;
          if (seen.has(key)) return false;
          seen.add(key);
          return true;
        });
        if (stores.length === 0)
          fail(Failure.PlanRefused, 'no available storage holds disk images matching node/storage');

        const references = new Set<string>();
        const reads = await mapBounded(guests, 16, (g) => referencesOf(client, g));
        for (const r of reads) {
          if (!r.ok) throw r.error;
          for (const v of r.value) references.add(v);
        }
        const byVmid = new Map(guests.map((g) => [g.vmid, g]));
        const unused: UnusedVolume[] = [];
        for (const store of stores) {
          const volumes = await client.storage.content({ node: store.node!, storage: store.storage! });
          for (const v of volumes) {
            if (!wanted.includes(v.content ?? '') || isReferenced(v.volid, references)) continue;
            const owner = v.vmid !== undefined ? byVmid.get(v.vmid) : undefined;
            unused.push({
              node: store.node!,
              storage: store.storage!,
              volid: v.volid,
              size: v.size,
              content: v.content ?? '',
              ...(v.vmid !== undefined
                ? { owner: { vmid: v.vmid, exists: owner !== undefined, ...(owner ? { name: owner.name } : {}) } }
                : {}),
            });
          }
        }
        const total = unused.reduce((sum, v) => sum + v.size, 0);
        // Nothing unused is an answer, not a refusal: a plan without steps completes as nothing-to-do.
        const nothing = unused.length === 0;
        return {
          summary: nothing
            ? 'nothing to remove: every image is used by a guest'
            : `remove ${unused.length} unused image${unused.length === 1 ? '' : 's'} (${formatBytes(total)})`,
          risk: nothing ? 'low' : 'high',
          reasons: [nothing ? 'changes nothing' : 'removing a volume destroys its data for good'],
          steps: unused.map((v) => ({
            id: `delete/${v.volid}`,
            action: 'delete-volume',
            node: v.node,
            ...(v.owner ? { vmid: v.owner.vmid } : {}),
            params: { storage: v.storage, volid: v.volid },
            description:
              `delete ${v.volid} (${formatBytes(v.size)}, ${v.content})` +
              (v.owner
                ? v.owner.exists
                  ? `: guest ${v.owner.vmid} '${v.owner.name}' no longer uses it`
                  : `: guest ${v.owner.vmid} no longer exists`
                : ''),
          })),
          warnings: [],
          nodes: [...new Set(unused.map((v) => v.node))].sort(),
          vmids: [...new Set(unused.flatMap((v) => (v.owner ? [v.owner.vmid] : [])))],
          estimatedDurationMs: unused.length * 2_000,
          details: { volumes: unused },
        };
      });
    },

    /**
     * Deletes one volume — once — after checking right before that it still exists and that no
     * guest has started using it since the plan: its owner (disk images carry the owner's VMID;
     * PVE renames a disk it reassigns), or for an ISO any VM.
     */
    async removeVolume(args: { environment: string; volume: UnusedVolume }): Promise<VmStepOutcome> {
      const client = await deps.pve(args.environment);
      const { node, storage, volid, content, owner } = args.volume;
      return classified('write', async () => {
        const present = await client.storage.content({ node, storage });
        if (!present.some((v) => v.volid === volid)) return { kind: 'already-done', detail: `${volid} is gone` };
        const { guests } = inventoryFromResources(await client.cluster.resources({ type: 'vm' }));
        const users = guests.filter((g) => (content === 'iso' ? g.type === 'qemu' : g.vmid === owner?.vmid));
        const reads = await mapBounded(users, 16, (g) => referencesOf(client, g));
        for (const r of reads) {
          if (!r.ok) throw r.error;
          if (isReferenced(volid, r.value)) {
            throw ApplicationFailure.create({
              type: Failure.VolumeInUse,
              message: `${volid} is in use again; not removing it`,
              nonRetryable: true,
            });
          }
        }
        try {
          const upid = await client.storage.deleteVolume({ node, storage, volume: volid });
          return upid ? { kind: 'dispatched', upid } : { kind: 'applied', detail: `${volid} removed` };
        } catch (err) {
          if (err instanceof PveUnavailableError && err.requestMayHaveBeenSent) {
            throw ApplicationFailure.create({
              type: Failure.OutcomeUnknown,
              message: `removal of ${volid} was sent but PVE did not answer; check the storage before retrying`,
              nonRetryable: true,
            });
          }
          throw err;
        }
      });
    },
  };
}

export type StorageCleanupActivities = ReturnType<typeof createStorageCleanupActivities>;
