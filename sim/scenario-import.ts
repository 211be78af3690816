/**
 * Rehearsal on your own inventory: a scenario from what a real cluster reports, so an operator
 * can try any operation on a simulated copy first.
 *
 * The input is an inventory in PVE's own shapes: `GET /cluster/resources` (a bare
 * `pvesh get /cluster/resources --output-format json` dump, or the API's `{ data }`), and
 * optionally what `npm run rehearse -- --from-env` reads besides — each guest's config, the
 * storages' contents and the HA rules. What the input does not say is guessed, and every guess
 * is listed, so the operator knows where the copy may differ from the cluster.
 */
import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ClusterResource } from '../lib/pve/cluster/endpoints.js';
import { ha } from '../lib/pve/ha/endpoints.js';
import {
  parseScenario,
  ScenarioError,
  type ContentType,
  type ResolvedScenario,
  type Scenario,
  type StorageType,
} from './scenario.js';

/**
 * A row of `GET /cluster/resources` as the PVE client reads it, but tolerant: an inventory may
 * come from a hand-made dump (no `id`) or a newer PVE (types the client does not know, which
 * the import lists as not simulated), and keeps fields the client does not name.
 */
const Resource = ClusterResource.extend({ id: z.string().optional(), type: z.string() }).loose();
type Resource = z.infer<typeof Resource>;

const ResourceList = z.union([z.array(Resource), z.object({ data: z.array(Resource) }).transform((o) => o.data)]);

/** What `--from-env` reads: PVE's answers, keyed by vmid and by `node/storage`. */
const Inventory = z.object({
  resources: z.array(Resource),
  /** `GET /nodes/{node}/{qemu|lxc}/{vmid}/config`, by vmid. */
  configs: z.record(z.string(), z.record(z.string(), z.union([z.string(), z.number()]))).default({}),
  /** `GET /nodes/{node}/storage/{storage}/content`, by `node/storage`. */
  storage_content: z
    .record(
      z.string(),
      z.array(z.looseObject({ volid: z.string(), size: z.number().optional(), content: z.string().optional() })),
    )
    .default({}),
  /** `GET /cluster/ha/rules` (PVE 9), in the shape the PVE client reads it. */
  ha_rules: ha.rules.returns.default([]),
});
export type Inventory = z.input<typeof Inventory>;

const InventoryInput = z.union([ResourceList.transform((resources) => Inventory.parse({ resources })), Inventory]);

export interface ImportOptions {
  name?: string;
  /** Storage for guest disks whose config is unknown; default: a shared images storage, else the first local one. */
  diskStorage?: string;
  /** Tokens of the rehearsal cluster; default one random Administrator token `automation@pve!pm`. */
  tokens?: Scenario['tokens'];
  linkGbps?: number;
}

export interface ImportedScenario {
  scenario: ResolvedScenario;
  /** Everything the input did not say and the import had to assume, one line per kind of guess. */
  guesses: string[];
}

const STORAGE_TYPES: ReadonlySet<string> = new Set<StorageType>([
  'dir',
  'lvmthin',
  'lvm',
  'zfspool',
  'nfs',
  'cifs',
  'cephfs',
  'rbd',
]);
const CONTENT_TYPES: ReadonlySet<string> = new Set<ContentType>([
  'images',
  'rootdir',
  'iso',
  'vztmpl',
  'import',
  'backup',
  'snippets',
]);
const QEMU_DISK_KEY = /^((scsi|virtio|sata|ide)\d+|efidisk0|tpmstate0)$/;
const LXC_DISK_KEY = /^(rootfs|mp\d+)$/;
const MEDIA_VOLID = /^[a-z][a-z0-9\-_.]*[a-z0-9]:(iso|vztmpl|import|snippets)\/[^/]+$/i;
const GiB = 1024 ** 3;

/** Guesses grouped by kind: `kind: item, item, ...`. */
class Guesses {
  readonly #byKind = new Map<string, string[]>();
  add(kind: string, item?: string): void {
    const items = this.#byKind.get(kind) ?? [];
    if (item !== undefined && !items.includes(item)) items.push(item);
    this.#byKind.set(kind, items);
  }
  lines(): string[] {
    return [...this.#byKind].map(([kind, items]) => (items.length ? `${kind}: ${items.join(', ')}` : kind));
  }
}

/** True for input this module imports rather than a scenario: a resource list or an inventory. */
export function isInventory(data: unknown): boolean {
  if (Array.isArray(data)) return true;
  return (
    typeof data === 'object' &&
    data !== null &&
    (Array.isArray((data as { data?: unknown }).data) || Array.isArray((data as { resources?: unknown }).resources))
  );
}

/** A scenario file, or an inventory (dump) to import: how the simulator and the demo read `--scenario`. */
export async function loadScenarioSource(path: string): Promise<ImportedScenario> {
  const text = await readFile(path, 'utf8');
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new ScenarioError(path, [`(file): not valid YAML or JSON - ${(err as Error).message.split('\n')[0]}`]);
  }
  return isInventory(data)
    ? importInventory(data, { name: 'rehearsal' }, path)
    : { scenario: parseScenario(data, path), guesses: [] };
}

export function loadScenarioFromClusterResources(json: unknown, opts: ImportOptions = {}): ResolvedScenario {
  return importInventory(json, opts).scenario;
}

export function importInventory(
  json: unknown,
  opts: ImportOptions = {},
  source = '(cluster/resources)',
): ImportedScenario {
  const parsed = InventoryInput.safeParse(json);
  if (!parsed.success) {
    throw new ScenarioError(
      source,
      parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`),
    );
  }
  const inventory = parsed.data;
  const guesses = new Guesses();
  const nodes = importNodes(inventory.resources, opts, guesses);
  const storages = importStorages(
    inventory.resources,
    nodes.map((n) => n.name),
    guesses,
  );
  const content = importContent(inventory.storage_content, storages, guesses);
  const guests = inventory.resources
    .filter((r) => (r.type === 'qemu' || r.type === 'lxc') && r.vmid !== undefined && r.node)
    .map((r) =>
      importGuest(r, inventory.configs[String(r.vmid)], {
        storages,
        listing: inventory.storage_content,
        content,
        opts,
        guesses,
      }),
    );
  settleStorageUse(inventory.resources, storages, guests);
  noteUnsimulated(inventory.resources, guesses);

  const scenario: Scenario = {
    name: opts.name ?? 'imported',
    nodes,
    storages: storages.map(({ nodes: on, ...s }) => (s.shared || on.length === nodes.length ? s : { ...s, nodes: on })),
    content,
    guests,
    ha_rules: importHaRules(inventory.ha_rules, guesses),
    tokens: opts.tokens ?? [
      {
        id: 'automation@pve!pm',
        secret: randomBytes(16).toString('hex'),
        acl: [{ path: '/', roles: ['Administrator'] }],
      },
    ],
  };
  return { scenario: parseScenario(scenario, source), guesses: guesses.lines() };
}

function importNodes(resources: readonly Resource[], opts: ImportOptions, guesses: Guesses) {
  guesses.add(
    `PVE version of every node: 9.1.2 and link speed ${opts.linkGbps ?? 10} Gbit/s (cluster/resources states neither)`,
  );
  guesses.add(
    "node memory in use: the simulator's own sum of its guests' use plus the host's overhead, not the nodes' measured mem",
  );
  return resources
    .filter((r) => r.type === 'node' && r.node)
    .map((r) => {
      if (r.maxcpu === undefined || r.maxmem === undefined)
        guesses.add('CPUs or memory of nodes that did not report them (16 CPUs, 64 GiB)', r.node);
      return {
        name: r.node!,
        cores: Math.max(1, Math.round(r.maxcpu ?? 16)),
        memory: r.maxmem ?? 64 * GiB,
        online: r.status !== 'offline',
        ...(opts.linkGbps ? { link_gbps: opts.linkGbps } : {}),
      };
    });
}

interface ImportedStorage {
  id: string;
  type: StorageType;
  content: ContentType[];
  shared: boolean;
  size: number;
  used?: number;
  /** Nodes it is available on. */
  nodes: string[];
}

function importStorages(
  resources: readonly Resource[],
  allNodes: readonly string[],
  guesses: Guesses,
): ImportedStorage[] {
  const storages = new Map<string, ImportedStorage>();
  for (const r of resources.filter((x) => x.type === 'storage' && x.storage && x.node)) {
    if (r.status !== undefined && r.status !== 'available')
      guesses.add('storages simulated as active where PVE reported them not available', `${r.storage} on ${r.node}`);
    const existing = storages.get(r.storage!);
    if (existing) {
      existing.nodes.push(r.node!);
      if ((r.maxdisk ?? 0) !== existing.size && !existing.shared)
        guesses.add('local storages sized alike on every node (the largest)', r.storage);
      existing.size = Math.max(existing.size, r.maxdisk ?? 0);
      continue;
    }
    if (!STORAGE_TYPES.has(r.plugintype ?? ''))
      guesses.add(
        'storages of a type the simulator lacks, simulated as dir',
        `${r.storage} (${r.plugintype ?? 'no type'})`,
      );
    const content = (r.content ?? '').split(',').filter((c): c is ContentType => CONTENT_TYPES.has(c));
    if (content.length === 0) guesses.add('storages without a known content type, given images', r.storage);
    storages.set(r.storage!, {
      id: r.storage!,
      type: (STORAGE_TYPES.has(r.plugintype ?? '') ? r.plugintype : 'dir') as StorageType,
      content: content.length ? content : ['images'],
      shared: Boolean(r.shared),
      size: Math.max(r.maxdisk ?? 0, GiB),
      nodes: [r.node!],
    });
  }
  for (const s of storages.values()) if (!s.shared && s.nodes.length === allNodes.length) s.nodes = [...allNodes];
  return [...storages.values()];
}

/** ISOs and templates from the storages' contents, so a guest's CD drive can name its ISO. */
function importContent(
  listing: z.output<typeof Inventory>['storage_content'],
  storages: readonly ImportedStorage[],
  guesses: Guesses,
) {
  const content: NonNullable<Scenario['content']> = [];
  for (const [key, volumes] of Object.entries(listing)) {
    const [node, sid] = key.split('/') as [string, string];
    const storage = storages.find((s) => s.id === sid);
    if (!storage) continue;
    for (const v of volumes) {
      if (!MEDIA_VOLID.test(v.volid) || content.some((c) => c.volid === v.volid && (storage.shared || c.node === node)))
        continue;
      const kind = v.volid.split(':')[1]!.split('/')[0]!;
      if (!storage.content.includes(kind as ContentType)) continue;
      if (v.size === undefined)
        guesses.add('sizes of listed ISOs and templates that PVE did not state (1 GiB)', v.volid);
      content.push({ volid: v.volid, size: v.size ?? GiB, ...(storage.shared ? {} : { node }) });
    }
  }
  return content;
}

interface GuestContext {
  storages: ImportedStorage[];
  listing: z.output<typeof Inventory>['storage_content'];
  content: NonNullable<Scenario['content']>;
  opts: ImportOptions;
  guesses: Guesses;
}

function importGuest(
  r: Resource,
  config: Record<string, string | number> | undefined,
  ctx: GuestContext,
): NonNullable<Scenario['guests']>[number] {
  const { guesses } = ctx;
  const type = r.type as 'qemu' | 'lxc';
  const label = `${type === 'qemu' ? 'VM' : 'CT'} ${r.vmid}`;
  const name = dnsName(r.name, `${type === 'qemu' ? 'vm' : 'ct'}${r.vmid}`);
  if (name !== r.name) guesses.add('guest names changed to DNS names', `${label} '${r.name ?? ''}' -> '${name}'`);
  const tags = (r.tags ?? '').split(/[;,\s]+/).filter(Boolean);
  const validTags = tags.filter((t) => /^[a-z0-9_][a-z0-9_\-+.]*$/i.test(t));
  if (validTags.length < tags.length) guesses.add('tags PVE would not accept, dropped', label);
  const running = r.status === 'running' && !r.template;
  if (r.status !== 'running' && r.status !== 'stopped' && !r.template)
    guesses.add(`guests in a state the simulator lacks, simulated as stopped`, `${label} (${r.status ?? 'unknown'})`);
  if (!config)
    guesses.add(
      'guests imported without their config (a bare cluster/resources dump): host-bound devices, CD drives and snapshots unknown',
    );
  if (running && r.mem === undefined)
    guesses.add('memory use of running guests that did not report mem (the simulator picks one)', label);

  const vcpus = Number(config?.['cores'] ?? r.maxcpu ?? 1);
  const memoryMiB =
    config?.['memory'] !== undefined ? Number(config['memory']) : Math.round((r.maxmem ?? 512 * 1024 ** 2) / 1024 ** 2);
  return {
    vmid: r.vmid!,
    type,
    name,
    node: r.node!,
    status: running ? 'running' : 'stopped',
    memory: Math.max(16, memoryMiB),
    cores: Math.max(1, Math.round(vcpus)),
    ...(type === 'qemu' && config?.['sockets'] !== undefined
      ? { sockets: Math.max(1, Number(config['sockets'])) }
      : {}),
    disks: guestDisks(r, type, label, config, ctx),
    tags: validTags,
    template: Boolean(r.template),
    ha: r.hastate
      ? { state: (['stopped', 'disabled', 'ignored'].includes(r.hastate) ? r.hastate : 'started') as 'started' }
      : false,
    ...(running && r.mem !== undefined && r.maxmem ? { mem_usage: clamp(r.mem / r.maxmem) } : {}),
    ...(running && r.cpu !== undefined ? { cpu_load: clamp(r.cpu) } : {}),
    ...(r.lock ? { lock: r.lock } : {}),
    ...(config ? devices(config, type, label, ctx) : {}),
  };
}

/** Disks on the storages the guest's config names; without a config, one disk on a guessed storage. */
function guestDisks(
  r: Resource,
  type: 'qemu' | 'lxc',
  label: string,
  config: Record<string, string | number> | undefined,
  ctx: GuestContext,
) {
  const { guesses } = ctx;
  const needed = type === 'qemu' ? 'images' : 'rootdir';
  if (!config) {
    const storage = pickStorage(ctx, r.node!, needed);
    const size = Math.max(r.maxdisk ?? 0, type === 'lxc' ? 8 * GiB : 0);
    if (storage && size > 0)
      guesses.add(`disks of guests without a config, put on one storage`, `${label} on ${storage}`);
    return storage && size > 0 ? [{ storage, size }] : [];
  }
  const keyPattern = type === 'qemu' ? QEMU_DISK_KEY : LXC_DISK_KEY;
  // The boot disk first (the simulator boots from the first): by the config's boot order, else by kind and name.
  const booting = /order=([^,]+)/.exec(String(config['boot'] ?? ''))?.[1]?.split(';') ?? [];
  const rank = (k: string) => (booting.includes(k) ? booting.indexOf(k) : booting.length + diskOrder(k));
  const keys = Object.keys(config)
    .filter((k) => keyPattern.test(k))
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b, 'en', { numeric: true }));
  const disks: { storage: string; size: number }[] = [];
  const renamed: string[] = [];
  for (const key of keys) {
    const value = String(config[key]);
    const [volid, ...props] = value.split(',');
    if (!volid || props.includes('media=cdrom') || volid === 'none' || !volid.includes(':') || volid.startsWith('/')) {
      if (volid?.startsWith('/'))
        guesses.add('bind mounts and pass-through disks left out (they pin a guest to its node)', `${label} ${key}`);
      continue;
    }
    let storage = volid.split(':')[0]!;
    const known = ctx.storages.find((s) => s.id === storage);
    if (!known || !(known.shared || known.nodes.includes(r.node!))) {
      const fallback = pickStorage(ctx, r.node!, needed);
      guesses.add(
        `disks on a storage cluster/resources does not list on the guest's node, moved`,
        `${label} ${key} ${storage} -> ${fallback ?? 'none'}`,
      );
      if (!fallback) continue;
      storage = fallback;
    } else if (!known.content.includes(needed)) {
      known.content.push(needed);
      guesses.add(`storages given content ${needed} because a guest's disk is on them`, storage);
    }
    const size = sizeOf(props) ?? listedSize(volid, r.node!, ctx) ?? (disks.length === 0 ? r.maxdisk : undefined);
    if (size === undefined || sizeOf(props) === undefined)
      guesses.add('disk sizes not in the config (from the storage listing or maxdisk, else 1 GiB)', `${label} ${key}`);
    disks.push({ storage, size: Math.max(size ?? GiB, 1024 ** 2) });
    renamed.push(key);
  }
  const simulatedKeys = renamed.map((_, i) => (type === 'qemu' ? `scsi${i}` : i === 0 ? 'rootfs' : `mp${i}`));
  if (renamed.some((k, i) => k !== simulatedKeys[i]))
    guesses.add('disk keys renumbered in the simulated config', `${label} ${renamed.join(', ')}`);
  return disks;
}

/** Host-bound devices, the CD drive's ISO, protection and snapshots from a guest's config. */
function devices(config: Record<string, string | number>, type: 'qemu' | 'lxc', label: string, ctx: GuestContext) {
  const keys = (pattern: RegExp) =>
    Object.keys(config)
      .filter((k) => pattern.test(k))
      .sort()
      .map((k) => String(config[k]));
  const iso = Object.values(config)
    .map(String)
    .find((v) => v.includes('media=cdrom') && MEDIA_VOLID.test(v.split(',')[0]!))
    ?.split(',')[0];
  if (iso && !ctx.content.some((c) => c.volid === iso))
    ctx.guesses.add('CD drives emptied: their ISO is not in the storage listing', `${label} ${iso}`);
  if (config['parent'] !== undefined) ctx.guesses.add('snapshot trees reduced to the current snapshot', label);
  return {
    ...(type === 'qemu' ? { hostpci: keys(/^hostpci\d+$/), usb: keys(/^usb\d+$/) } : {}),
    ...(iso && ctx.content.some((c) => c.volid === iso) ? { cdrom: iso } : {}),
    protection: String(config['protection'] ?? '0') === '1',
    onboot: String(config['onboot'] ?? '0') === '1',
    ...(type === 'qemu' ? { agent: /^(1|enabled=1)/.test(String(config['agent'] ?? '0')) } : {}),
    ...(config['parent'] !== undefined ? { snapshots: [{ name: String(config['parent']) }] } : {}),
  };
}

/** Storage use the guests do not account for: what PVE reported in use, less the imported disks. */
function settleStorageUse(
  resources: readonly Resource[],
  storages: ImportedStorage[],
  guests: NonNullable<Scenario['guests']>,
): void {
  for (const s of storages) {
    let used = 0;
    for (const r of resources.filter((x) => x.type === 'storage' && x.storage === s.id)) {
      const disks = guests
        .filter((g) => s.shared || g.node === r.node)
        .flatMap((g) => g.disks ?? [])
        .filter((d) => d.storage === s.id)
        .reduce((sum, d) => sum + Number(d.size), 0);
      used = Math.max(used, (r.disk ?? 0) - disks);
    }
    if (used > 0) s.used = Math.min(used, s.size);
  }
}

function importHaRules(
  rules: z.output<typeof Inventory>['ha_rules'],
  guesses: Guesses,
): NonNullable<Scenario['ha_rules']> {
  return rules.flatMap((r) => {
    if (r.type !== 'node-affinity' && r.type !== 'resource-affinity') {
      guesses.add('HA rules of a type the simulator lacks, left out', r.rule);
      return [];
    }
    const type = r.type;
    if (r.disable) guesses.add('disabled HA rules left out', r.rule);
    if (r.disable) return [];
    return [
      {
        rule: r.rule,
        type,
        resources: (r.resources ?? '').split(',').filter(Boolean),
        nodes: (r.nodes ?? '').split(',').filter(Boolean),
        ...(r.affinity === 'positive' || r.affinity === 'negative' ? { affinity: r.affinity } : {}),
        strict: Boolean(r.strict),
      },
    ];
  });
}

function noteUnsimulated(resources: readonly Resource[], guesses: Guesses): void {
  for (const r of resources.filter((x) => x.type === 'pool')) {
    const id = String(r['pool'] ?? r['id'] ?? '');
    const members = resources.filter((g) => g.pool === id && g.vmid !== undefined).length;
    guesses.add('resource pools not simulated (their members are)', `${id} (${members} guests)`);
  }
  const other = [
    ...new Set(resources.map((r) => r.type).filter((t) => !['node', 'storage', 'qemu', 'lxc', 'pool'].includes(t))),
  ];
  for (const t of other) guesses.add('resource types not simulated', t);
}

function pickStorage(ctx: GuestContext, node: string, content: 'images' | 'rootdir'): string | undefined {
  const on = (s: ImportedStorage) => s.shared || s.nodes.includes(node);
  const asked = ctx.storages.find((s) => s.id === ctx.opts.diskStorage && on(s));
  if (asked) return asked.id;
  const candidates = ctx.storages.filter((s) => s.content.includes(content) && on(s));
  return (candidates.find((s) => s.shared) ?? candidates[0])?.id;
}

/** Boot disks first: scsi/virtio/sata/ide before the EFI and TPM state volumes; rootfs before mount points. */
function diskOrder(key: string): number {
  return /^(efidisk|tpmstate)/.test(key) ? 2 : key.startsWith('mp') ? 1 : 0;
}

/** `size=32G` of a volume property string, in bytes. */
function sizeOf(props: readonly string[]): number | undefined {
  const m = props.map((p) => /^size=(\d+(?:\.\d+)?)([KMGT]?)$/i.exec(p)).find(Boolean);
  if (!m) return undefined;
  const unit = { '': 1, K: 1024, M: 1024 ** 2, G: GiB, T: 1024 ** 4 }[
    m[2]!.toUpperCase() as '' | 'K' | 'M' | 'G' | 'T'
  ];
  return Math.round(Number(m[1]) * unit);
}

/** A volume's size from the storage listing of its node (any node's, for a shared storage). */
function listedSize(volid: string, node: string, ctx: GuestContext): number | undefined {
  const sid = volid.split(':')[0]!;
  const shared = ctx.storages.find((s) => s.id === sid)?.shared;
  for (const [key, volumes] of Object.entries(ctx.listing)) {
    if (key !== `${node}/${sid}` && !(shared && key.endsWith(`/${sid}`))) continue;
    const size = volumes.find((v) => v.volid === volid)?.size;
    if (size !== undefined) return size;
  }
  return undefined;
}

function dnsName(name: string | undefined, fallback: string): string {
  const cleaned = (name ?? '').replace(/[^a-zA-Z0-9.-]/g, '-').replace(/^[^a-zA-Z0-9]+|[^a-zA-Z0-9]+$/g, '');
  return cleaned || fallback;
}

function clamp(x: number): number {
  return Math.min(1, Math.max(0, x));
}
