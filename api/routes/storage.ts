/**
 * Storages, read-only: usage and content types per storage (shared ones once, with the nodes
 * that see them), and the volumes one storage holds.
 */
import { z } from 'zod';
import { listBackupVolumes } from '../../lib/backup/volumes.js';
import type { PveClient } from '../../lib/pve/client.js';
import { PveApiError } from '../../lib/pve/errors.js';
import { requireEnvironment } from '../access.js';
import type { Services } from '../deps.js';
import { ApiError, redact } from '../errors.js';
import type { Route } from '../route.js';
import { ErrorResponse } from '../schemas.js';
import { parseParams, parseQuery } from '../validation.js';

const environment = z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be an environment name');
const nodeName = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9-]*$/, 'must be a PVE node name');
const storageId = z.string().regex(/^[A-Za-z][A-Za-z0-9\-_.]*[A-Za-z0-9]$/, 'must be a PVE storage id');

const StorageQuery = z.strictObject({ environment, node: nodeName.optional() });
const ContentQuery = z.strictObject({
  environment,
  node: nodeName,
  content: z.enum(['images', 'rootdir', 'iso', 'vztmpl', 'import', 'backup', 'snippets']).optional(),
});
const StorageParams = z.strictObject({ storage: storageId });
const BackupQuery = z.strictObject({
  environment,
  vmid: z.coerce.number().int().min(100).max(999_999_999).optional(),
  storage: storageId.optional(),
});

const BackupList = z
  .object({
    environment: z.string(),
    backups: z.array(
      z.object({
        volid: z.string(),
        vmid: z.number(),
        type: z.enum(['qemu', 'lxc']),
        ctime: z.number(),
        size: z.number(),
        notes: z.string().optional(),
        protected: z.boolean(),
        node: z.string().optional(),
      }),
    ),
  })
  .meta({ id: 'BackupList' });

const StorageList = z
  .object({
    environment: z.string(),
    storages: z.array(
      z.object({
        storage: z.string(),
        type: z.string().optional(),
        shared: z.boolean(),
        /** Where it is available: every node for a shared storage, its own node otherwise. */
        nodes: z.array(z.string()),
        content: z.array(z.string()),
        status: z.string(),
        usedBytes: z.number(),
        totalBytes: z.number(),
        usedFraction: z.number(),
      }),
    ),
  })
  .meta({ id: 'StorageList' });

const StorageContent = z
  .object({
    environment: z.string(),
    node: z.string(),
    storage: z.string(),
    volumes: z.array(
      z.object({
        volid: z.string(),
        content: z.string().optional(),
        format: z.string(),
        sizeBytes: z.number(),
        vmid: z.number().optional(),
        ctime: z.number().optional(),
      }),
    ),
  })
  .meta({ id: 'StorageContent' });

type Entry = z.infer<typeof StorageList>['storages'][number];

export function storageRoutes(s: Services, pve: (environment: string) => Promise<PveClient>): Route[] {
  const read = async <T>(name: string, fn: (client: PveClient) => Promise<T>): Promise<T> => {
    try {
      return await fn(await pve(name));
    } catch (err) {
      // PVE answers an unknown node with a 500 "hostname lookup '<node>' failed": nothing is there, not a failing Proxmox.
      if (err instanceof PveApiError && /does not exist|hostname lookup '[^']*' failed/.test(err.pveMessage)) {
        throw new ApiError(404, 'not_found', redact(err.pveMessage.trim()));
      }
      const reason = err instanceof Error ? redact(err.message) : 'request failed';
      throw new ApiError(502, 'proxmox_unavailable', `the Proxmox API of '${name}' failed: ${reason}`);
    }
  };

  return [
    {
      method: 'GET',
      path: '/v1/storage',
      tag: 'inventory',
      summary: 'Storages with their usage and content types',
      description:
        'Shared storages appear once, listing every node that sees them; `node=` keeps those available on one node.',
      access: 'read',
      query: StorageQuery,
      responses: {
        200: { description: 'storages', schema: StorageList },
        502: { description: 'the environment’s Proxmox API failed', schema: ErrorResponse },
      },
      handler: async (c) => {
        const query = parseQuery(c, StorageQuery);
        requireEnvironment(c, s.config, query.environment);
        const resources = await read(query.environment, (client) => client.cluster.resources({ type: 'storage' }));
        const byKey = new Map<string, Entry>();
        for (const r of resources) {
          if (r.type !== 'storage' || !r.storage || !r.node) continue;
          const shared = Boolean(r.shared);
          const key = shared ? r.storage : `${r.node}/${r.storage}`;
          const existing = byKey.get(key);
          if (existing) {
            existing.nodes.push(r.node);
            continue;
          }
          const used = r.disk ?? 0;
          const total = r.maxdisk ?? 0;
          byKey.set(key, {
            storage: r.storage,
            ...(typeof r['plugintype'] === 'string' ? { type: r['plugintype'] } : {}),
            shared,
            nodes: [r.node],
            content: (r.content ?? '').split(',').filter(Boolean),
            status: r.status ?? 'unknown',
            usedBytes: used,
            totalBytes: total,
            usedFraction: total > 0 ? used / total : 0,
          });
        }
        const storages = [...byKey.values()]
          .filter((e) => !query.node || e.nodes.includes(query.node))
          .sort((a, b) => a.storage.localeCompare(b.storage) || a.nodes[0]!.localeCompare(b.nodes[0]!));
        return c.json({ environment: query.environment, storages } satisfies z.infer<typeof StorageList>);
      },
    },
    {
      method: 'GET',
      path: '/v1/storage/{storage}/content',
      tag: 'inventory',
      summary: 'Volumes in one storage, as one node sees it',
      access: 'read',
      params: StorageParams,
      query: ContentQuery,
      responses: {
        200: { description: 'volumes', schema: StorageContent },
        502: { description: 'the environment’s Proxmox API failed', schema: ErrorResponse },
      },
      handler: async (c) => {
        const { storage } = parseParams(c, StorageParams);
        const query = parseQuery(c, ContentQuery);
        requireEnvironment(c, s.config, query.environment);
        const volumes = await read(query.environment, (client) =>
          client.storage.content({ node: query.node, storage, ...(query.content ? { content: query.content } : {}) }),
        );
        return c.json({
          environment: query.environment,
          node: query.node,
          storage,
          volumes: volumes.map((v) => ({
            volid: v.volid,
            ...(v.content ? { content: v.content } : {}),
            format: v.format,
            sizeBytes: v.size,
            ...(v.vmid !== undefined ? { vmid: v.vmid } : {}),
            ...(v.ctime !== undefined ? { ctime: v.ctime } : {}),
          })),
        } satisfies z.infer<typeof StorageContent>);
      },
    },
    {
      method: 'GET',
      path: '/v1/backups',
      tag: 'inventory',
      summary: 'Backups per guest and storage, newest first',
      description:
        'Every vzdump archive on the storages that hold backups (shared ones read once); `vmid=` and `storage=` narrow the list.',
      access: 'read',
      query: BackupQuery,
      responses: {
        200: { description: 'backups', schema: BackupList },
        502: { description: 'the environment’s Proxmox API failed', schema: ErrorResponse },
      },
      handler: async (c) => {
        const query = parseQuery(c, BackupQuery);
        requireEnvironment(c, s.config, query.environment);
        const backups = await read(query.environment, (client) =>
          listBackupVolumes(client, {
            ...(query.vmid !== undefined ? { vmid: query.vmid } : {}),
            ...(query.storage ? { storage: query.storage } : {}),
          }),
        );
        return c.json({ environment: query.environment, backups } satisfies z.infer<typeof BackupList>);
      },
    },
  ];
}
