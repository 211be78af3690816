/**
 * The simulated cluster's resource model: nodes, storage pools and their volumes, guests with
 * PVE-format configs, HA resources. Operations (sim/ops/*) change it; the API and SSH
 * endpoints read it; tests assert on it through `SimulatedCluster.state`.
 */
import { createHash } from 'node:crypto';
import { fail } from './errors.js';
import {
  configDigest,
  drives,
  parseTags,
  serializeConfig,
  type Drive,
  type GuestConfig,
  type GuestType,
  type SnapshotRecord,
} from './guest-config.js';
import {
  FILE_STORAGE_TYPES,
  isSharedStorage,
  type ContentType,
  type GuestSpec,
  type NodeSpec,
  type ResolvedScenario,
  type StorageSpec,
} from './scenario.js';
import { formatDiskSize, MiB } from './units.js';

/** A stable fraction in [0, 1) derived from a key, for plausible per-guest numbers. */
export function unitHash(key: string | number): number {
  const digest = createHash('sha256').update(String(key)).digest();
  return digest.readUInt32BE(0) / 2 ** 32;
}

function uuidFrom(key: string): string {
  const h = createHash('sha256').update(key).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** A unicast MAC with PVE's default prefix (datacenter.cfg `mac_prefix`), stable per key. */
export function macFrom(key: string): string {
  const h = createHash('sha256').update(key).digest('hex').toUpperCase();
  return `BC:24:11:${h.slice(0, 2)}:${h.slice(2, 4)}:${h.slice(4, 6)}`;
}

export interface Volume {
  volid: string;
  content: ContentType;
  size: number;
  format: string;
  vmid?: number;
  /** Epoch seconds. */
  ctime: number;
  /** Content checksum, for files fetched or listed with one. */
  sha256?: string;
  /** Backup archives (content `backup`): what vzdump wrote. */
  backup?: BackupRecord;
}

/** What a vzdump archive holds and carries: the guest's config at backup time, notes, protection. */
export interface BackupRecord {
  type: GuestType;
  config: GuestConfig;
  /** Uncompressed bytes of guest data the archive restores. */
  dataBytes: number;
  notes?: string;
  protected: boolean;
}

/** Volumes by volid, also indexed by owning guest so disk numbering stays cheap in big clusters. */
export class VolumeMap extends Map<string, Volume> {
  readonly #byVmid = new Map<number, Set<string>>();

  override set(volid: string, volume: Volume): this {
    this.delete(volid);
    super.set(volid, volume);
    if (volume.vmid !== undefined) {
      const owned = this.#byVmid.get(volume.vmid) ?? new Set<string>();
      owned.add(volid);
      this.#byVmid.set(volume.vmid, owned);
    }
    return this;
  }

  override delete(volid: string): boolean {
    const volume = super.get(volid);
    if (volume?.vmid !== undefined) this.#byVmid.get(volume.vmid)?.delete(volid);
    return super.delete(volid);
  }

  ownedBy(vmid: number): ReadonlySet<string> {
    return this.#byVmid.get(vmid) ?? new Set();
  }
}

/** One storage as seen from one node (local storages) or cluster-wide (shared storages). */
export class StoragePool {
  readonly volumes = new VolumeMap();

  constructor(
    readonly spec: StorageSpec,
    /** Null for shared storages. */
    readonly node: string | null,
  ) {}

  get id(): string {
    return this.spec.id;
  }

  get shared(): boolean {
    return this.node === null;
  }

  get total(): number {
    return this.spec.size;
  }

  get used(): number {
    let used = this.spec.used;
    for (const v of this.volumes.values()) used += v.size;
    return used;
  }

  get avail(): number {
    return Math.max(0, this.total - this.used);
  }

  /** Where a file volume lives on disk (dir-like storages only). */
  pathOf(volid: string): string | undefined {
    const base = this.spec.path ?? (this.shared ? `/mnt/pve/${this.id}` : undefined);
    if (!base) return undefined;
    const name = volid.slice(this.id.length + 1);
    const m = /^(iso|vztmpl|import|snippets|backup)\/(.+)$/.exec(name);
    if (!m) return `${base}/images/${name}`;
    const dir = {
      iso: 'template/iso',
      vztmpl: 'template/cache',
      import: 'import',
      snippets: 'snippets',
      backup: 'dump',
    }[m[1] as 'iso'];
    return `${base}/${dir}/${m[2]}`;
  }
}

export interface NodeUpgrade {
  pveversion: string;
  kernel?: string;
  packages: { name: string; from: string; to: string }[];
}

export interface SimNodeSpec {
  name: string;
  nodeid: number;
  cores: number;
  /** Bytes. */
  memory: number;
  ip: string;
  linkBytesPerSecond: number;
  rebootSeconds: number;
  clockSkewSeconds: number;
  online: boolean;
  pveversion: string;
  kernel: string;
  upgrade: NodeUpgrade | undefined;
}

export class SimNode {
  readonly name: string;
  readonly nodeid: number;
  readonly cores: number;
  readonly memory: number;
  readonly ip: string;
  readonly linkBytesPerSecond: number;
  readonly rebootSeconds: number;
  /** Milliseconds this node's clock is ahead of true (simulated) time; negative: behind. */
  clockSkewMs: number;
  online: boolean;
  pveversion: string;
  /** The kernel running now; an upgraded kernel runs after the next reboot. */
  kernel: string;
  installedKernel: string;
  /** Simulated epoch ms of the last boot. */
  bootedAt: number;
  upgrade: NodeUpgrade | undefined;
  /** Memory held for incoming online migrations (bytes). */
  reservedMemory = 0;
  /** Files outside any storage (e.g. /tmp), by absolute path. */
  readonly files = new Map<string, { size: number; sha256: string }>();
  /** Set once `apt-get update` has refreshed the package lists since boot. */
  aptUpdated = false;

  constructor(spec: SimNodeSpec, now: number) {
    this.name = spec.name;
    this.nodeid = spec.nodeid;
    this.cores = spec.cores;
    this.memory = spec.memory;
    this.ip = spec.ip;
    this.linkBytesPerSecond = spec.linkBytesPerSecond;
    this.rebootSeconds = spec.rebootSeconds;
    this.clockSkewMs = spec.clockSkewSeconds * 1000;
    this.online = spec.online;
    this.pveversion = spec.pveversion;
    this.kernel = spec.kernel;
    this.installedKernel = spec.kernel;
    this.upgrade = spec.upgrade;
    this.bootedAt = now - (3 * 86400 + spec.nodeid * 3607) * 1000;
  }
}

export type HaState = 'started' | 'stopped' | 'disabled' | 'ignored';
/** A request queued with the HA cluster resource manager. */
export type HaRequest = 'start' | 'stop' | 'migrate';

export interface HaResource {
  sid: string;
  type: 'vm' | 'ct';
  state: HaState;
  max_restart: number;
  max_relocate: number;
  failback: number;
  comment?: string;
}

export class Guest {
  status: 'running' | 'stopped';
  /** Simulated epoch ms of the last start. */
  startedAt: number | undefined;
  pid: number | undefined;
  readonly snapshots = new Map<string, SnapshotRecord>();
  #config: GuestConfig;
  /** The config file's `[PENDING]` section: changes a running VM takes at its next start; `undefined` deletes. */
  #pending = new Map<string, string | undefined>();
  #digest = '';
  #node: string;
  /** Told when the guest changes node, so the cluster's per-node index follows it (GuestMap). */
  #onMove: ((guest: Guest, from: string) => void) | undefined;
  /** Drives parsed from the current config; a config write replaces the config, so this is re-read then. */
  #drives: { config: GuestConfig; drives: Drive[] } | undefined;

  constructor(
    readonly vmid: number,
    readonly type: GuestType,
    node: string,
    config: GuestConfig,
    readonly cpuLoad: number,
    readonly memUsage: number,
    readonly ip: string,
  ) {
    this.#node = node;
    this.#config = config;
    this.status = 'stopped';
    this.#refreshDigest();
  }

  get node(): string {
    return this.#node;
  }

  set node(next: string) {
    const from = this.#node;
    this.#node = next;
    this.#onMove?.(this, from);
  }

  /** Called by the map that indexes this guest by node. */
  onMove(listener: ((guest: Guest, from: string) => void) | undefined): void {
    this.#onMove = listener;
  }

  /** A copy of the config; change it with `update`. */
  get config(): Readonly<GuestConfig> {
    return this.#config;
  }

  get digest(): string {
    return this.#digest;
  }

  /** Every config write goes through here so the digest changes like PVE's. */
  update(mutate: (config: GuestConfig) => void): void {
    const next = { ...this.#config };
    mutate(next);
    this.#config = next;
    this.#refreshDigest();
  }

  /** Rewrites the file after snapshot changes (the digest covers snapshot sections too). */
  touch(): void {
    this.#refreshDigest();
  }

  get pending(): ReadonlyMap<string, string | undefined> {
    return this.#pending;
  }

  /** Records a change for the next start (`undefined`: delete the key); a value equal to the current one is no change. */
  stage(key: string, value: string | undefined): void {
    if (this.#config[key] === value) this.#pending.delete(key);
    else this.#pending.set(key, value);
    this.#refreshDigest();
  }

  /** Drops pending changes (PVE's `revert`); none named drops none. */
  revert(keys: readonly string[]): void {
    for (const key of keys) this.#pending.delete(key);
    this.#refreshDigest();
  }

  /** The config as it will be after the next start: what GET config answers unless `current=1`. */
  get configWithPending(): Readonly<GuestConfig> {
    if (this.#pending.size === 0) return this.#config;
    const next = { ...this.#config };
    for (const [key, value] of this.#pending) {
      if (value === undefined) delete next[key];
      else next[key] = value;
    }
    return next;
  }

  /** A (re)start takes every pending change. */
  applyPending(): void {
    if (this.#pending.size === 0) return;
    const next = this.configWithPending;
    this.#pending = new Map();
    this.update((config) => {
      for (const key of Object.keys(config)) delete config[key];
      Object.assign(config, next);
    });
  }

  #refreshDigest(): void {
    const pending = [...this.#pending].filter(([, v]) => v !== undefined) as [string, string][];
    const deletes = [...this.#pending].filter(([, v]) => v === undefined).map(([k]) => k);
    const pendingSection = this.#pending.size
      ? `\n[PENDING]\n${pending.map(([k, v]) => `${k}: ${v}\n`).join('')}${deletes.length ? `delete: ${deletes.join(',')}\n` : ''}`
      : '';
    this.#digest = configDigest(serializeConfig(this.#config, this.snapshots.values()) + pendingSection);
  }

  get name(): string {
    return (
      (this.type === 'qemu' ? this.#config['name'] : this.#config['hostname']) ??
      `${this.type === 'qemu' ? 'VM' : 'CT'}${this.vmid}`
    );
  }

  get template(): boolean {
    return this.#config['template'] === '1';
  }

  get lock(): string | undefined {
    return this.#config['lock'];
  }

  get protection(): boolean {
    return this.#config['protection'] === '1';
  }

  get memoryBytes(): number {
    const raw = this.#config['memory'] ?? '512';
    const mib = Number(/(?:current=)?(\d+)/.exec(raw)?.[1] ?? 512);
    return mib * MiB;
  }

  get cores(): number {
    return Number(this.#config['cores'] ?? 1) * Number(this.#config['sockets'] ?? 1);
  }

  get tags(): string[] {
    return parseTags(this.#config['tags']);
  }

  get agentEnabled(): boolean {
    const agent = this.#config['agent'];
    if (agent === undefined) return false;
    const first = agent.split(',')[0]!;
    return first === '1' || /(^|,)enabled=1/.test(agent);
  }

  get drives(): Drive[] {
    if (this.#drives?.config !== this.#config)
      this.#drives = { config: this.#config, drives: drives(this.type, this.#config) };
    return this.#drives.drives;
  }

  /** hostpci/usb devices, which tie a VM to its node. */
  get localResources(): string[] {
    return Object.keys(this.#config)
      .filter((k) => /^(hostpci|usb)\d+$/.test(k) && !/mapping=/.test(this.#config[k]!))
      .sort();
  }

  get configPath(): string {
    return `nodes/${this.node}/${this.type === 'qemu' ? 'qemu-server' : 'lxc'}/${this.vmid}.conf`;
  }

  get lockFilePath(): string {
    return this.type === 'qemu'
      ? `/var/lock/qemu-server/lock-${this.vmid}.conf`
      : `/run/lock/lxc/pve-config-${this.vmid}.lock`;
  }

  uptimeSeconds(now: number): number {
    return this.status === 'running' && this.startedAt !== undefined ? Math.floor((now - this.startedAt) / 1000) : 0;
  }
}

export function diskVolumeName(spec: StorageSpec, vmid: number, index: number, base: boolean, format: string): string {
  const stem = `${base ? 'base' : 'vm'}-${vmid}-disk-${index}`;
  return FILE_STORAGE_TYPES.has(spec.type) ? `${spec.id}:${vmid}/${stem}.${format}` : `${spec.id}:${stem}`;
}

function defaultDiskFormat(spec: StorageSpec): string {
  return FILE_STORAGE_TYPES.has(spec.type) ? 'qcow2' : 'raw';
}

/**
 * Guests by vmid, also indexed by the node they are on, so per-node views (a node's memory and
 * CPU in cluster/resources, its guest lists) cost the node's guests, not the cluster's.
 */
export class GuestMap extends Map<number, Guest> {
  readonly #byNode = new Map<string, Set<Guest>>();
  /** Insertion order, so a node's guests come in the order the whole map lists them. */
  readonly #order = new Map<Guest, number>();
  #next = 0;

  override set(vmid: number, guest: Guest): this {
    const previous = super.get(vmid);
    const position = previous ? this.#order.get(previous)! : this.#next++;
    if (previous) this.#unindex(previous);
    super.set(vmid, guest);
    this.#order.set(guest, position);
    this.#nodeSet(guest.node).add(guest);
    guest.onMove((g, from) => {
      this.#byNode.get(from)?.delete(g);
      this.#nodeSet(g.node).add(g);
    });
    return this;
  }

  override delete(vmid: number): boolean {
    const guest = super.get(vmid);
    if (guest) this.#unindex(guest);
    return super.delete(vmid);
  }

  override clear(): void {
    for (const guest of this.values()) this.#unindex(guest);
    super.clear();
  }

  /** The guests on `node`, in the map's order. */
  on(node: string): Guest[] {
    return [...(this.#byNode.get(node) ?? [])].sort((a, b) => this.#order.get(a)! - this.#order.get(b)!);
  }

  #nodeSet(node: string): Set<Guest> {
    let set = this.#byNode.get(node);
    if (!set) this.#byNode.set(node, (set = new Set()));
    return set;
  }

  #unindex(guest: Guest): void {
    guest.onMove(undefined);
    this.#byNode.get(guest.node)?.delete(guest);
    this.#order.delete(guest);
  }
}

export class ClusterState {
  readonly clusterName: string;
  readonly nodes = new Map<string, SimNode>();
  readonly storages = new Map<string, StorageSpec>();
  readonly guests = new GuestMap();
  readonly ha = new Map<string, HaResource>();
  /** Requests the HA manager has not acted on yet, by vmid. */
  readonly haRequests = new Map<number, HaRequest>();
  readonly haRules: ResolvedScenario['ha_rules'];
  readonly downloads: Map<string, ResolvedScenario['downloads'][number]>;
  readonly timing: ResolvedScenario['timing'];
  readonly #pools = new Map<string, StoragePool>();

  constructor(scenario: ResolvedScenario, now: number) {
    this.clusterName = scenario.cluster_name;
    this.timing = scenario.timing;
    this.haRules = scenario.ha_rules;
    this.downloads = new Map(scenario.downloads.map((d) => [d.url, d]));
    scenario.nodes.forEach((spec, i) => this.nodes.set(spec.name, buildNode(spec, i + 1, scenario, now)));
    for (const spec of scenario.storages) {
      this.storages.set(spec.id, spec);
      if (isSharedStorage(spec)) this.#pools.set(spec.id, new StoragePool(spec, null));
      else
        for (const node of spec.nodes ?? [...this.nodes.keys()])
          this.#pools.set(`${node}/${spec.id}`, new StoragePool(spec, node));
    }
    const ctime = Math.floor(now / 1000) - 30 * 86400;
    for (const c of scenario.content) {
      const [sid, rest] = c.volid.split(':') as [string, string];
      const content = rest.split('/')[0] as ContentType;
      const format = content === 'iso' ? 'iso' : (/\.([a-z0-9]+)$/.exec(rest)?.[1] ?? 'raw');
      const spec = this.storages.get(sid)!;
      const targets = isSharedStorage(spec) ? [null] : c.node ? [c.node] : (spec.nodes ?? [...this.nodes.keys()]);
      for (const node of targets) {
        const pool = node === null ? this.#pools.get(sid) : this.pool(sid, node);
        pool?.volumes.set(c.volid, {
          volid: c.volid,
          content,
          size: c.size,
          format,
          ctime,
          ...(c.sha256 ? { sha256: c.sha256 } : {}),
        });
      }
    }
    for (const spec of scenario.guests) this.addGuest(this.#buildGuest(spec, now));
    for (const spec of scenario.guests) {
      if (spec.ha === false) continue;
      const state = spec.ha === true ? (spec.status === 'running' ? 'started' : 'stopped') : spec.ha.state;
      this.addHa(spec.vmid, spec.type, state);
    }
  }

  /** The storage `sid` as available on `node` (undefined when not configured there). */
  pool(sid: string, node: string): StoragePool | undefined {
    const spec = this.storages.get(sid);
    if (!spec) return undefined;
    if (spec.nodes && !spec.nodes.includes(node)) return undefined;
    return isSharedStorage(spec) ? this.#pools.get(sid) : this.#pools.get(`${node}/${sid}`);
  }

  poolsOn(node: string): StoragePool[] {
    return [...this.storages.keys()]
      .map((sid) => this.pool(sid, node))
      .filter((p): p is StoragePool => p !== undefined);
  }

  /** The volume `volid` as seen from `node`. */
  volume(volid: string, node: string): Volume | undefined {
    return this.pool(volid.split(':')[0]!, node)?.volumes.get(volid);
  }

  /** Bytes/s of a storage link named by cost.storageLinkEnd, undefined for anything else. */
  storageLinkBytesPerSecond(end: string): number | undefined {
    const m = /^storage:([^@]+)/.exec(end);
    const spec = m ? this.storages.get(m[1]!) : undefined;
    return spec && (spec.link_gbps * 1e9) / 8;
  }

  isShared(sid: string): boolean {
    const spec = this.storages.get(sid);
    return spec !== undefined && isSharedStorage(spec);
  }

  node(name: string): SimNode {
    const node = this.nodes.get(name);
    if (!node) throw fail(`no such cluster node '${name}'`);
    return node;
  }

  /** The guest whose config lives on `node`, as PVE finds it (500 when it does not). */
  guestOn(node: string, vmid: number, type: GuestType): Guest {
    const guest = this.guests.get(vmid);
    if (!guest || guest.node !== node || guest.type !== type) {
      const dir = type === 'qemu' ? 'qemu-server' : 'lxc';
      throw fail(`Configuration file 'nodes/${node}/${dir}/${vmid}.conf' does not exist`);
    }
    return guest;
  }

  guestsOn(node: string): Guest[] {
    return this.guests.on(node);
  }

  addGuest(guest: Guest): void {
    this.guests.set(guest.vmid, guest);
  }

  addHa(vmid: number, type: GuestType, state: HaState): void {
    const sid = `${type === 'qemu' ? 'vm' : 'ct'}:${vmid}`;
    this.ha.set(sid, { sid, type: type === 'qemu' ? 'vm' : 'ct', state, max_restart: 1, max_relocate: 1, failback: 1 });
  }

  haOf(guest: Guest): HaResource | undefined {
    return this.ha.get(`${guest.type === 'qemu' ? 'vm' : 'ct'}:${guest.vmid}`);
  }

  /** Next free `disk-N` index for a guest on a storage pool. */
  nextDiskIndex(pool: StoragePool, vmid: number): number {
    const used = new Set<number>();
    const pattern = new RegExp(`(?:vm|base)-${vmid}-disk-(\\d+)`);
    for (const volid of pool.volumes.ownedBy(vmid)) {
      const m = pattern.exec(volid.split('/').pop()!);
      if (m) used.add(Number(m[1]));
    }
    let i = 0;
    while (used.has(i)) i++;
    return i;
  }

  /** Allocates a new disk volume for a guest and returns its volid. */
  allocateDisk(
    pool: StoragePool,
    vmid: number,
    size: number,
    opts: { base?: boolean; format?: string; content?: ContentType; now: number },
  ): Volume {
    const format = opts.format ?? defaultDiskFormat(pool.spec);
    const volid = diskVolumeName(pool.spec, vmid, this.nextDiskIndex(pool, vmid), opts.base ?? false, format);
    const volume: Volume = {
      volid,
      content: opts.content ?? 'images',
      size,
      format,
      vmid,
      ctime: Math.floor(opts.now / 1000),
    };
    pool.volumes.set(volid, volume);
    return volume;
  }

  #buildGuest(spec: GuestSpec, now: number): Guest {
    const config: GuestConfig = {};
    const diskConfig: string[] = [];
    spec.disks.forEach((disk, i) => {
      const pool = this.pool(disk.storage, spec.node)!;
      const volume = this.allocateDisk(pool, spec.vmid, disk.size, {
        base: spec.template,
        content: spec.type === 'qemu' ? 'images' : 'rootdir',
        now,
        ...(disk.format ? { format: disk.format } : {}),
      });
      const size = formatDiskSize(disk.size);
      if (spec.type === 'qemu') diskConfig.push(`${volume.volid},iothread=1,size=${size}`);
      else diskConfig.push(i === 0 ? `${volume.volid},size=${size}` : `${volume.volid},mp=/mnt/data${i},size=${size}`);
    });
    const mac = macFrom(`${spec.vmid}/net0`);
    if (spec.type === 'qemu') {
      Object.assign(config, {
        boot: `order=${spec.disks.length ? 'scsi0;' : ''}ide2;net0`,
        cores: String(spec.cores),
        cpu: 'x86-64-v2-AES',
        ide2: spec.cdrom ? `${spec.cdrom},media=cdrom` : 'none,media=cdrom',
        memory: String(spec.memory),
        meta: `creation-qemu=9.2.0,ctime=${Math.floor(now / 1000) - 60 * 86400}`,
        name: spec.name,
        net0: `virtio=${mac},bridge=vmbr0,firewall=1`,
        numa: '0',
        ostype: 'l26',
        scsihw: 'virtio-scsi-single',
        smbios1: `uuid=${uuidFrom(`smbios/${spec.vmid}`)}`,
        sockets: String(spec.sockets),
        vmgenid: uuidFrom(`vmgenid/${spec.vmid}`),
      });
      diskConfig.forEach((d, i) => (config[`scsi${i}`] = d));
      if (spec.agent) config['agent'] = '1';
      spec.hostpci.forEach((dev, i) => (config[`hostpci${i}`] = dev));
      spec.usb.forEach((dev, i) => (config[`usb${i}`] = dev));
    } else {
      Object.assign(config, {
        arch: 'amd64',
        cores: String(spec.cores),
        hostname: spec.name,
        memory: String(spec.memory),
        net0: `name=eth0,bridge=vmbr0,hwaddr=${mac},ip=dhcp,type=veth`,
        ostype: 'debian',
        swap: '512',
        unprivileged: '1',
      });
      diskConfig.forEach((d, i) => (config[i === 0 ? 'rootfs' : `mp${i - 1}`] = d));
    }
    if (spec.tags.length) config['tags'] = spec.tags.join(';');
    if (spec.template) config['template'] = '1';
    if (spec.protection) config['protection'] = '1';
    if (spec.onboot) config['onboot'] = '1';
    if (spec.lock) config['lock'] = spec.lock;
    for (const [k, v] of Object.entries(spec.config)) config[k] = String(v);

    const guest = new Guest(
      spec.vmid,
      spec.type,
      spec.node,
      config,
      spec.cpu_load ?? 0.02 + unitHash(`cpu/${spec.vmid}`) * 0.25,
      spec.mem_usage ?? 0.35 + unitHash(`mem/${spec.vmid}`) * 0.4,
      spec.ip ?? `10.0.${(spec.vmid >> 8) & 255}.${spec.vmid & 255 || 1}`,
    );
    let parent: string | undefined;
    spec.snapshots.forEach((s, i) => {
      guest.snapshots.set(s.name, {
        name: s.name,
        description: s.description,
        snaptime: Math.floor(now / 1000) - (spec.snapshots.length - i) * 86400,
        vmstate: s.vmstate,
        ...(parent ? { parent } : {}),
        config: { ...config },
      });
      parent = s.name;
    });
    if (parent) guest.update((c) => (c['parent'] = parent!));
    if (spec.status === 'running' && !spec.template) {
      guest.status = 'running';
      guest.startedAt = now - (1 + unitHash(`up/${spec.vmid}`) * 20) * 86400 * 1000;
      guest.pid = 1000 + Math.floor(unitHash(`pid/${spec.vmid}`) * 3_000_000);
    }
    return guest;
  }
}

function buildNode(spec: NodeSpec, nodeid: number, scenario: ResolvedScenario, now: number): SimNode {
  return new SimNode(
    {
      name: spec.name,
      nodeid,
      cores: spec.cores,
      memory: spec.memory,
      ip: spec.ip ?? `10.10.10.${nodeid}`,
      linkBytesPerSecond: (spec.link_gbps * 1e9) / 8,
      rebootSeconds: spec.reboot_seconds,
      clockSkewSeconds: spec.clock_skew_seconds,
      online: spec.online,
      pveversion: spec.pveversion ?? scenario.pveversion,
      kernel: spec.kernel ?? scenario.kernel,
      upgrade: spec.upgrade,
    },
    now,
  );
}
