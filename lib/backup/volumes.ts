/**
 * Backup volumes (vzdump archives) as the orchestrator sees them: found on every storage that
 * holds backups, shared storages read once, named by PVE's `vzdump-<type>-<vmid>-<time>` form.
 */
import type { PveClient } from '../pve/client.js';

/** A backup volume as the plans show it. */
export interface BackupVolume {
  volid: string;
  vmid: number;
  type: 'qemu' | 'lxc';
  /** Epoch seconds. */
  ctime: number;
  size: number;
  notes?: string;
  protected: boolean;
  /** The node holding it, for backups on a node-local storage. */
  node?: string;
}

/** `nfs:backup/vzdump-qemu-101-2026_12_06-07_00_00.vma.zst` -> its storage, guest type and VMID. */
export function parseBackupVolid(volid: string): { storage: string; type: 'qemu' | 'lxc'; vmid: number } | undefined {
  const m = /^([^:]+):backup\/vzdump-(qemu|lxc)-(\d+)-/.exec(volid);
  return m ? { storage: m[1]!, type: m[2] as 'qemu' | 'lxc', vmid: Number(m[3]) } : undefined;
}

/** Every backup on the environment's backup storages, newest first (optionally one guest's, one storage's). */
export async function listBackupVolumes(
  client: PveClient,
  filter: { vmid?: number; storage?: string },
): Promise<BackupVolume[]> {
  const nodes = (await client.nodes.list())
    .filter((n) => n.status === 'online')
    .map((n) => n.node)
    .sort();
  const found = new Map<string, BackupVolume>();
  const sharedRead = new Set<string>();
  for (const node of nodes) {
    const storages = await client.storage.list({
      node,
      content: 'backup',
      ...(filter.storage ? { storage: filter.storage } : {}),
    });
    for (const s of storages) {
      if (s.shared && sharedRead.has(s.storage)) continue;
      if (s.shared) sharedRead.add(s.storage);
      const volumes = await client.storage.content({
        node,
        storage: s.storage,
        content: 'backup',
        ...(filter.vmid !== undefined ? { vmid: filter.vmid } : {}),
      });
      for (const v of volumes) {
        const parsed = parseBackupVolid(v.volid);
        if (!parsed) continue;
        found.set(s.shared ? v.volid : `${node}/${v.volid}`, {
          volid: v.volid,
          vmid: v.vmid ?? parsed.vmid,
          type: parsed.type,
          ctime: v.ctime ?? 0,
          size: v.size,
          protected: Boolean(v.protected),
          ...(v.notes !== undefined ? { notes: v.notes } : {}),
          ...(s.shared ? {} : { node }),
        });
      }
    }
  }
  return [...found.values()].sort((a, b) => b.ctime - a.ctime || a.volid.localeCompare(b.volid));
}
