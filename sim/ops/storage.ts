/**
 * Storage: listings, `download-url` (with PVE's filename and extension rules and checksum
 * verification) and volume deletion. What a URL serves comes from sim/downloads.ts.
 */
import type { Caller, Cluster } from '../cluster.js';
import { remoteFile } from '../downloads.js';
import { fail, parameterError } from '../errors.js';
import type { ContentType } from '../scenario.js';
import type { StoragePool } from '../state.js';
import type { TaskRecord } from '../tasks.js';
import { renderBytes } from '../units.js';

const HTTP_REASONS: Record<number, string> = {
  403: 'Forbidden',
  404: 'Not Found',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

export function httpReason(status: number): string {
  return HTTP_REASONS[status] ?? 'Error';
}

/** The storage `sid` on `node`, or PVE's refusal. */
function poolOn(cluster: Cluster, sid: string, node: string): StoragePool {
  if (!cluster.state.storages.has(sid)) throw fail(`storage '${sid}' does not exist`);
  const pool = cluster.state.pool(sid, node);
  if (!pool) throw fail(`storage '${sid}' is not available on node '${node}'`);
  return pool;
}

const EXTENSIONS: Partial<Record<ContentType, { re: RegExp; error: string }>> = {
  iso: { re: /\.(iso|img)$/i, error: 'wrong file extension' },
  vztmpl: { re: /\.(tgz|tar\.(gz|xz|zst|bz2))$/i, error: 'wrong file extension' },
  import: { re: /\.(ova|qcow2|raw|vmdk)$/i, error: 'invalid filename or wrong extension' },
};

/** PVE normalises names: directories stripped, anything but `-a-zA-Z0-9_.` becomes `_`. */
function normaliseFilename(name: string): string {
  return name.replace(/^.*[/\\]/, '').replace(/[^-a-zA-Z0-9_.]/g, '_');
}

export interface DownloadRequest {
  storage: string;
  url: string;
  content: ContentType;
  filename: string;
  checksum?: string;
  checksumAlgorithm?: string;
}

/** POST /nodes/{node}/storage/{storage}/download-url */
export function downloadUrl(cluster: Cluster, caller: Caller, node: string, req: DownloadRequest): TaskRecord {
  const pool = poolOn(cluster, req.storage, node);
  if (!pool.spec.content.includes(req.content)) {
    throw fail(`storage '${req.storage}' is not configured for content-type '${req.content}'`);
  }
  const filename = normaliseFilename(req.filename);
  const rule = EXTENSIONS[req.content];
  if (rule && !rule.re.test(filename)) throw parameterError({ filename: rule.error });
  const volid = `${req.storage}:${req.content}/${filename}`;
  const path = pool.pathOf(volid) ?? volid;
  return cluster.tasks.start({
    node,
    type: 'download',
    id: filename,
    authid: caller.authid,
    run: async (ctx) => {
      if (pool.volumes.has(volid) && !req.checksum) throw new Error(`refusing to override existing file '${path}'`);
      const file = remoteFile(cluster.state.downloads, req.url);
      ctx.log(`downloading ${req.url} to ${path}`);
      await ctx.sleep(500);
      if (file.httpStatus) throw new Error(`download failed: ${file.httpStatus} ${httpReason(file.httpStatus)}`);
      const seconds = file.size / cluster.state.timing.download_bytes_per_second;
      for (let i = 1; i <= 4; i++) {
        await ctx.sleep((seconds / 4) * 1000);
        ctx.log(
          `${(i * 25).toFixed(0)}% of ${renderBytes(file.size)} (${renderBytes(cluster.state.timing.download_bytes_per_second)}/s)`,
        );
      }
      if (req.checksum) {
        const algorithm = req.checksumAlgorithm ?? 'sha256';
        ctx.log('calculating checksum...');
        const got = file.checksum(algorithm);
        if (got !== req.checksum.toLowerCase())
          throw new Error(`checksum mismatch: got '${got}' != expect '${req.checksum}'`);
        ctx.log('OK, checksum verified');
      }
      pool.volumes.set(volid, {
        volid,
        content: req.content,
        size: file.size,
        format: req.content === 'iso' ? 'iso' : (/\.([a-z0-9]+)$/i.exec(filename)?.[1] ?? 'raw'),
        ctime: cluster.clock.epochSeconds(),
        sha256: file.checksum('sha256'),
      });
      ctx.log(`download of '${req.url}' to '${path}' finished`);
    },
  });
}

/** DELETE /nodes/{node}/storage/{storage}/content/{volume}; `volume` may be a volid or a bare name. */
export function deleteVolume(cluster: Cluster, caller: Caller, node: string, sid: string, volume: string): TaskRecord {
  const pool = poolOn(cluster, sid, node);
  const volid = volume.includes(':') ? volume : `${sid}:${volume}`;
  if (!pool.volumes.has(volid)) throw fail(`volume '${volid}' does not exist`);
  return cluster.tasks.start({
    node,
    type: 'imgdel',
    id: '',
    authid: caller.authid,
    run: async (ctx) => {
      await ctx.sleep(500);
      if (pool.spec.type === 'lvmthin' || pool.spec.type === 'lvm') {
        ctx.log(`  Logical volume "${volid.split(':')[1]}" successfully removed.`);
      } else {
        ctx.log(`removed '${pool.pathOf(volid) ?? volid}'`);
      }
      pool.volumes.delete(volid);
    },
  });
}

/** GET /nodes/{node}/storage */
export function storageList(
  cluster: Cluster,
  node: string,
  filter: { content?: string; storage?: string; enabled?: boolean },
  visible: (sid: string) => boolean,
): Record<string, unknown>[] {
  const wanted = filter.content?.split(/[\s,;]+/).filter(Boolean);
  return cluster.state
    .poolsOn(node)
    .filter((p) => visible(p.id))
    .filter((p) => !filter.storage || p.id === filter.storage)
    .filter((p) => !wanted || wanted.some((c) => p.spec.content.includes(c as ContentType)))
    .map((p) => ({
      storage: p.id,
      type: p.spec.type,
      content: [...p.spec.content].sort().join(','),
      active: 1,
      enabled: 1,
      shared: p.shared ? 1 : 0,
      total: p.total,
      used: p.used,
      avail: p.avail,
      used_fraction: p.total > 0 ? p.used / p.total : 0,
    }));
}

/** GET /nodes/{node}/storage/{storage}/content */
export function storageContent(
  cluster: Cluster,
  node: string,
  sid: string,
  filter: { content?: string; vmid?: number },
): Record<string, unknown>[] {
  const pool = poolOn(cluster, sid, node);
  return [...pool.volumes.values()]
    .filter((v) => !filter.content || v.content === filter.content)
    .filter((v) => filter.vmid === undefined || v.vmid === filter.vmid)
    .sort((a, b) => a.volid.localeCompare(b.volid))
    .map((v) => ({
      volid: v.volid,
      content: v.content,
      format: v.format,
      size: v.size,
      ctime: v.ctime,
      ...(v.vmid !== undefined ? { vmid: v.vmid, used: v.size } : {}),
      ...(v.backup
        ? {
            subtype: v.backup.type,
            ...(v.backup.notes !== undefined ? { notes: v.backup.notes } : {}),
            ...(v.backup.protected ? { protected: 1 } : {}),
          }
        : {}),
    }));
}
