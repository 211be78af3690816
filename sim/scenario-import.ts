/**
 * A scenario from a real cluster's `GET /cluster/resources` output, so an operator can
 * rehearse on a copy of their own inventory. cluster/resources does not say where each
 * guest's disk lives, so it is put on one storage (shared by default, when there is one).
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { parseScenario, ScenarioError, type ResolvedScenario, type Scenario } from './scenario.js';

const Resource = z.looseObject({
  type: z.string(),
  node: z.string().optional(),
  status: z.string().optional(),
  vmid: z.number().int().optional(),
  name: z.string().optional(),
  maxmem: z.number().optional(),
  maxcpu: z.number().optional(),
  maxdisk: z.number().optional(),
  disk: z.number().optional(),
  template: z.union([z.number(), z.boolean()]).optional(),
  tags: z.string().optional(),
  hastate: z.string().optional(),
  storage: z.string().optional(),
  plugintype: z.string().optional(),
  content: z.string().optional(),
  shared: z.union([z.number(), z.boolean()]).optional(),
});
const Resources = z.union([z.array(Resource), z.object({ data: z.array(Resource) }).transform((o) => o.data)]);

export interface ImportOptions {
  name?: string;
  /** Storage for every VM disk; default: the shared images storage, else the first local one. */
  diskStorage?: string;
  /** Tokens of the rehearsal cluster; default one random Administrator token `automation@pve!pm`. */
  tokens?: Scenario['tokens'];
  linkGbps?: number;
}

const STORAGE_TYPES = new Set(['dir', 'lvmthin', 'lvm', 'zfspool', 'nfs', 'cifs', 'cephfs', 'rbd']);
const CONTENT_TYPES = new Set(['images', 'rootdir', 'iso', 'vztmpl', 'import', 'backup', 'snippets']);

function dnsName(name: string | undefined, fallback: string): string {
  const cleaned = (name ?? '').replace(/[^a-zA-Z0-9.-]/g, '-').replace(/^[^a-zA-Z0-9]+|[^a-zA-Z0-9]+$/g, '');
  return cleaned || fallback;
}

export function loadScenarioFromClusterResources(json: unknown, opts: ImportOptions = {}): ResolvedScenario {
  const parsed = Resources.safeParse(json);
  if (!parsed.success) {
    throw new ScenarioError('(cluster/resources)', parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`));
  }
  const resources = parsed.data;
  const nodes = resources
    .filter((r) => r.type === 'node' && r.node)
    .map((r) => ({
      name: r.node!,
      cores: Math.max(1, Math.round(r.maxcpu ?? 16)),
      memory: r.maxmem ?? 64 * 1024 ** 3,
      online: r.status !== 'offline',
      ...(opts.linkGbps ? { link_gbps: opts.linkGbps } : {}),
    }));

  const storages = new Map<string, NonNullable<Scenario['storages']>[number] & { nodes: string[] }>();
  for (const r of resources.filter((x) => x.type === 'storage' && x.storage && x.node)) {
    const type = STORAGE_TYPES.has(r.plugintype ?? '') ? (r.plugintype as 'dir') : 'dir';
    const content = (r.content ?? 'images').split(',').filter((c) => CONTENT_TYPES.has(c)) as ('images' | 'iso')[];
    const existing = storages.get(r.storage!);
    if (existing) existing.nodes.push(r.node!);
    else {
      storages.set(r.storage!, {
        id: r.storage!,
        type,
        content: content.length ? content : ['images'],
        shared: Boolean(r.shared),
        size: Math.max(r.maxdisk ?? 0, 1024 ** 3),
        nodes: [r.node!],
      });
    }
  }
  const allNodes = nodes.map((n) => n.name);
  const storageList = [...storages.values()].map((s) => (s.shared || s.nodes.length === allNodes.length ? { ...s, nodes: undefined } : s));
  const onNode = (sid: string, node: string) => {
    const s = storages.get(sid);
    return s !== undefined && (s.shared || s.nodes.includes(node));
  };
  const pickStorage = (node: string, content: 'images' | 'rootdir'): string | undefined => {
    if (opts.diskStorage && onNode(opts.diskStorage, node)) return opts.diskStorage;
    const candidates = [...storages.values()].filter((s) => s.content.includes(content as 'images') && onNode(s.id, node));
    return (candidates.find((s) => s.shared) ?? candidates[0])?.id;
  };

  const guests = resources
    .filter((r) => (r.type === 'qemu' || r.type === 'lxc') && r.vmid !== undefined && r.node)
    .map((r) => {
      const type = r.type as 'qemu' | 'lxc';
      const storage = pickStorage(r.node!, type === 'qemu' ? 'images' : 'rootdir');
      const size = Math.max(r.maxdisk ?? 0, type === 'lxc' ? 8 * 1024 ** 3 : 0);
      return {
        vmid: r.vmid!,
        type,
        name: dnsName(r.name, `${type === 'qemu' ? 'vm' : 'ct'}${r.vmid}`),
        node: r.node!,
        status: (r.status === 'running' && !r.template ? 'running' : 'stopped') as 'running' | 'stopped',
        memory: Math.max(16, Math.round((r.maxmem ?? 512 * 1024 ** 2) / 1024 ** 2)),
        cores: Math.max(1, Math.round(r.maxcpu ?? 1)),
        disks: storage && size > 0 ? [{ storage, size }] : [],
        tags: (r.tags ?? '').split(/[;,\s]+/).filter((t) => /^[a-z0-9_][a-z0-9_\-+.]*$/i.test(t)),
        template: Boolean(r.template),
        ha: r.hastate ? { state: (r.hastate === 'stopped' || r.hastate === 'disabled' || r.hastate === 'ignored' ? r.hastate : 'started') as 'started' } : false,
      };
    });

  const scenario: Scenario = {
    name: opts.name ?? 'imported',
    nodes,
    storages: storageList,
    guests,
    tokens: opts.tokens ?? [
      { id: 'automation@pve!pm', secret: randomBytes(16).toString('hex'), acl: [{ path: '/', roles: ['Administrator'] }] },
    ],
  };
  return parseScenario(scenario, '(cluster/resources)');
}
