/**
 * Scenarios: the cluster a simulator starts with (nodes, storages, guests, tokens, SSH keys,
 * downloadable URLs, faults), written in YAML or built in code. Validation errors read as
 * `path: reason`, e.g. `guests.3.node: unknown node 'pve09'`.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { BUILTIN_ROLES, VALID_PRIVILEGES } from './access.js';
import { parseSize } from './units.js';

const Size = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const bytes = parseSize(value);
  if (bytes === undefined) {
    ctx.addIssue({ code: 'custom', message: `'${value}' is not a size such as 32G, 512M or a byte count` });
    return z.NEVER;
  }
  return bytes;
});

/** Guest memory: a number is MiB (as in PVE configs), a string carries its unit. */
const GuestMemoryMiB = z.union([z.number().int().min(16), z.string()]).transform((value, ctx) => {
  if (typeof value === 'number') return value;
  const bytes = parseSize(value);
  if (bytes === undefined || bytes < 16 * 1024 ** 2) {
    ctx.addIssue({ code: 'custom', message: `'${value}' is not a memory size such as 4096 (MiB) or 4G` });
    return z.NEVER;
  }
  return Math.round(bytes / 1024 ** 2);
});

const NodeName = z.string().regex(/^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/, 'must be a PVE node name');
const StorageId = z.string().regex(/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i, 'must be a PVE storage id');
const Vmid = z.number().int().min(100).max(999_999_999);
const ContentType = z.enum(['images', 'rootdir', 'iso', 'vztmpl', 'import', 'backup', 'snippets']);
export type ContentType = z.infer<typeof ContentType>;

const StorageType = z.enum(['dir', 'lvmthin', 'lvm', 'zfspool', 'nfs', 'cifs', 'cephfs', 'rbd']);
export type StorageType = z.infer<typeof StorageType>;
const SHARED_TYPES: ReadonlySet<string> = new Set(['nfs', 'cifs', 'cephfs', 'rbd']);
/** Storage types whose volumes are files (`<vmid>/vm-<vmid>-disk-0.qcow2`) rather than block devices. */
export const FILE_STORAGE_TYPES: ReadonlySet<string> = new Set(['dir', 'nfs', 'cifs', 'cephfs']);

const NodeSpec = z.strictObject({
  name: NodeName,
  cores: z.number().int().min(1).default(16),
  memory: Size.default(64 * 1024 ** 3),
  /** Link speed for migrations; 10 GbE unless stated. */
  link_gbps: z.number().positive().default(10),
  ip: z.ipv4().optional(),
  online: z.boolean().default(true),
  pveversion: z.string().optional(),
  kernel: z.string().optional(),
  /** Simulated seconds a reboot keeps the node offline. */
  reboot_seconds: z.number().min(0).default(90),
  /**
   * How far this node's clock is off (seconds, + ahead): real nodes' clocks never agree
   * exactly with the worker's, and PVE stamps tasks and UPIDs with its own.
   */
  clock_skew_seconds: z.number().default(0),
  /** What `apt-get dist-upgrade` installs; the new kernel runs after a reboot. */
  upgrade: z
    .strictObject({
      pveversion: z.string(),
      kernel: z.string().optional(),
      packages: z.array(z.strictObject({ name: z.string(), from: z.string(), to: z.string() })).default([]),
    })
    .optional(),
});

const StorageSpec = z.strictObject({
  id: StorageId,
  type: StorageType,
  content: z.array(ContentType).min(1),
  /** Defaults from the type: nfs, cifs, cephfs and rbd are shared. */
  shared: z.boolean().optional(),
  /** Capacity: per node for local storages, in total for shared ones. */
  size: Size,
  /** Space already used by things the scenario does not list. */
  used: Size.default(0),
  /** Nodes the storage is available on; all when absent. */
  nodes: z.array(NodeName).optional(),
  /** Mount point of file storages, e.g. /var/lib/vz. */
  path: z.string().optional(),
  /** Throughput of the storage's link (network for shared storages, disks for local ones), shared by backups writing to it. */
  link_gbps: z.number().positive().default(10),
});

const ContentSpec = z.strictObject({
  volid: z
    .string()
    .regex(
      /^[a-z][a-z0-9\-_.]*[a-z0-9]:(iso|vztmpl|import|snippets)\/[^/]+$/i,
      "must be a volume id such as 'local:iso/debian.iso'",
    ),
  /** For local storages: the node holding the file; every node when absent. */
  node: NodeName.optional(),
  size: Size,
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});

const DiskSpec = z.strictObject({
  storage: StorageId,
  size: Size,
  format: z.enum(['raw', 'qcow2', 'vmdk']).optional(),
});

const SnapshotSpec = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9_-]+$/i, 'must be a PVE snapshot name'),
  description: z.string().default(''),
  vmstate: z.boolean().default(false),
});

const GuestSpec = z.strictObject({
  vmid: Vmid,
  type: z.enum(['qemu', 'lxc']).default('qemu'),
  name: z.string().regex(/^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$/, 'must be a DNS name'),
  node: NodeName,
  status: z.enum(['running', 'stopped']).default('running'),
  memory: GuestMemoryMiB.default(2048),
  cores: z.number().int().min(1).default(2),
  sockets: z.number().int().min(1).default(1),
  /** First disk is the boot disk (scsi0 for VMs, rootfs for containers). */
  disks: z.array(DiskSpec).default([]),
  tags: z.array(z.string().regex(/^[a-z0-9_][a-z0-9_\-+.]*$/i, 'must be a PVE tag')).default([]),
  template: z.boolean().default(false),
  agent: z.boolean().default(true),
  /** HA-managed; `true` means requested state `started`. */
  ha: z
    .union([z.boolean(), z.strictObject({ state: z.enum(['started', 'stopped', 'disabled', 'ignored']) })])
    .default(false),
  hostpci: z.array(z.string()).default([]),
  usb: z.array(z.string()).default([]),
  /** Volume id of an ISO in the drive, e.g. local:iso/debian.iso. */
  cdrom: z.string().optional(),
  protection: z.boolean().default(false),
  onboot: z.boolean().default(false),
  lock: z.string().optional(),
  snapshots: z.array(SnapshotSpec).default([]),
  /** Guest IPv4 the agent reports; derived from the vmid when absent. */
  ip: z.ipv4().optional(),
  /** CPU load as a fraction of the guest's cores, and memory use as a fraction of its memory. */
  cpu_load: z.number().min(0).max(1).optional(),
  mem_usage: z.number().min(0).max(1).optional(),
  /** Further config keys, verbatim. */
  config: z.record(z.string(), z.union([z.string(), z.number()])).default({}),
});

const AclSpec = z
  .strictObject({
    path: z.string().regex(/^\/[A-Za-z0-9.\-_/]*$/, 'must be an ACL path such as / or /vms/101'),
    roles: z.array(z.string()).default([]),
    privs: z.array(z.string()).default([]),
    propagate: z.boolean().default(true),
  })
  .refine((a) => a.roles.length + a.privs.length > 0, { message: 'needs roles or privs' });

const TokenSpec = z.strictObject({
  id: z
    .string()
    .regex(
      /^[^\s:/@!]+@[A-Za-z][A-Za-z0-9.\-_]+![A-Za-z][A-Za-z0-9.\-_]+$/,
      'must be a token id such as automation@pve!pm',
    ),
  secret: z.string().min(8, 'must be at least 8 characters'),
  acl: z.array(AclSpec).min(1, 'a token without ACL entries can do nothing'),
});

const DownloadSpec = z.strictObject({
  url: z.string().regex(/^https?:\/\/\S+$/, 'must be an http(s) URL'),
  /** Simulated size; the content and its checksums come from sim/downloads.ts, never from here. */
  size: Size,
  /** Make the fetch fail with this HTTP status. */
  http_status: z.number().int().min(400).max(599).optional(),
});

export const FaultSettings = z.strictObject({
  /** Fraction of API calls answered with an error instead of being handled. */
  api_error_rate: z.number().min(0).max(1).default(0),
  api_error_status: z.number().int().min(500).max(599).default(500),
  /** Wall milliseconds added to every API call. */
  latency_ms: z.number().min(0).default(0),
  /** Fraction of API connections reset before an answer. */
  reset_rate: z.number().min(0).max(1).default(0),
  /** Task types that fail, optionally only for one guest and a number of times. */
  task_failures: z
    .array(
      z.strictObject({
        type: z.string().min(1),
        vmid: Vmid.optional(),
        message: z.string().optional(),
        /** `after`: the task's effect happens, then it reports failure anyway. */
        when: z.enum(['before', 'after']).default('before'),
        times: z.number().int().min(1).optional(),
      }),
    )
    .default([]),
  offline_nodes: z.array(NodeName).default([]),
});
export type FaultSettings = z.output<typeof FaultSettings>;

/** Simulated durations that shape the model; defaults are realistic for a homelab. */
const TimingSpec = z.strictObject({
  boot_seconds: z.number().min(0).default(3),
  shutdown_seconds: z.number().min(0).default(8),
  agent_ip_delay_seconds: z.number().min(0).default(20),
  ha_delay_seconds: z.number().min(0).default(10),
  /** Full clones copy at this rate (bytes/s) per clone. */
  clone_bytes_per_second: Size.default(400 * 1024 ** 2),
  download_bytes_per_second: Size.default(100 * 1024 ** 2),
  lock_timeout_seconds: z.number().min(0).default(10),
  /** How long a clone waits for the source's lock file before failing. */
  clone_lock_timeout_seconds: z.number().min(0).default(10),
});

const HaRuleSpec = z.strictObject({
  rule: z.string(),
  type: z.enum(['node-affinity', 'resource-affinity']),
  resources: z.array(z.string().regex(/^(vm|ct):\d+$/, "must be an HA resource id such as 'vm:101'")),
  nodes: z.array(NodeName).default([]),
  affinity: z.enum(['positive', 'negative']).optional(),
  strict: z.boolean().default(false),
});

const ScenarioObject = z.strictObject({
  name: z.string().default('scenario'),
  cluster_name: z.string().default('pve'),
  pveversion: z.string().default('9.1.2'),
  kernel: z.string().default('6.17.2-1-pve'),
  nodes: z.array(NodeSpec).min(1, 'a cluster needs at least one node'),
  storages: z.array(StorageSpec).min(1, 'a cluster needs at least one storage'),
  content: z.array(ContentSpec).default([]),
  guests: z.array(GuestSpec).default([]),
  tokens: z.array(TokenSpec).default([]),
  /** Custom roles: name -> privileges. */
  roles: z.record(z.string().regex(/^[A-Za-z0-9.\-_]+$/), z.array(z.string())).default({}),
  ssh: z.strictObject({ authorized_keys: z.array(z.string()).default([]) }).default({ authorized_keys: [] }),
  downloads: z.array(DownloadSpec).default([]),
  ha_rules: z.array(HaRuleSpec).default([]),
  faults: FaultSettings.optional(),
  timing: TimingSpec.default(TimingSpec.parse({})),
});

function crossCheck(s: z.output<typeof ScenarioObject>, ctx: z.RefinementCtx): void {
  const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  const nodes = new Set<string>();
  s.nodes.forEach((n, i) => {
    if (nodes.has(n.name)) issue(['nodes', i, 'name'], `duplicate node '${n.name}'`);
    nodes.add(n.name);
  });
  const storages = new Map<string, (typeof s.storages)[number]>();
  s.storages.forEach((st, i) => {
    if (storages.has(st.id)) issue(['storages', i, 'id'], `duplicate storage '${st.id}'`);
    storages.set(st.id, st);
    st.nodes?.forEach((n, j) => {
      if (!nodes.has(n)) issue(['storages', i, 'nodes', j], `unknown node '${n}'`);
    });
  });
  const onNode = (sid: string, node: string) => {
    const st = storages.get(sid);
    return st !== undefined && (st.nodes === undefined || st.nodes.includes(node));
  };
  const content = new Set<string>();
  s.content.forEach((c, i) => {
    const [sid, rest] = c.volid.split(':') as [string, string];
    const kind = rest.split('/')[0]!;
    const st = storages.get(sid);
    if (!st) return issue(['content', i, 'volid'], `unknown storage '${sid}'`);
    if (!st.content.includes(kind as ContentType)) {
      issue(['content', i, 'volid'], `storage '${sid}' is not configured for content-type '${kind}'`);
    }
    if (c.node !== undefined && !nodes.has(c.node)) issue(['content', i, 'node'], `unknown node '${c.node}'`);
    content.add(c.volid);
  });
  const vmids = new Set<number>();
  s.guests.forEach((g, i) => {
    if (vmids.has(g.vmid)) issue(['guests', i, 'vmid'], `duplicate vmid ${g.vmid}`);
    vmids.add(g.vmid);
    if (!nodes.has(g.node)) issue(['guests', i, 'node'], `unknown node '${g.node}'`);
    if (g.type === 'lxc' && g.disks.length === 0) issue(['guests', i, 'disks'], 'a container needs a root disk');
    if (g.template && g.status === 'running') issue(['guests', i, 'status'], 'a template cannot be running');
    g.disks.forEach((d, j) => {
      const st = storages.get(d.storage);
      const needed: ContentType = g.type === 'qemu' ? 'images' : 'rootdir';
      if (!st) issue(['guests', i, 'disks', j, 'storage'], `unknown storage '${d.storage}'`);
      else if (!st.content.includes(needed)) {
        issue(
          ['guests', i, 'disks', j, 'storage'],
          `storage '${d.storage}' is not configured for content-type '${needed}'`,
        );
      } else if (nodes.has(g.node) && !onNode(d.storage, g.node)) {
        issue(['guests', i, 'disks', j, 'storage'], `storage '${d.storage}' is not available on node '${g.node}'`);
      }
    });
    if (g.cdrom !== undefined && !content.has(g.cdrom)) {
      issue(['guests', i, 'cdrom'], `'${g.cdrom}' is not listed in content`);
    }
    if (g.type === 'lxc' && (g.hostpci.length > 0 || g.usb.length > 0)) {
      issue(['guests', i, 'hostpci'], 'containers have no PCI or USB passthrough');
    }
  });
  const roleNames = new Set([...BUILTIN_ROLES.keys(), ...Object.keys(s.roles)]);
  for (const [role, privs] of Object.entries(s.roles)) {
    privs.forEach((p, j) => {
      if (!VALID_PRIVILEGES.has(p)) issue(['roles', role, j], `invalid privilege '${p}'`);
    });
  }
  const tokenIds = new Set<string>();
  s.tokens.forEach((t, i) => {
    if (tokenIds.has(t.id)) issue(['tokens', i, 'id'], `duplicate token '${t.id}'`);
    tokenIds.add(t.id);
    t.acl.forEach((a, j) => {
      a.roles.forEach((r, k) => {
        if (!roleNames.has(r)) issue(['tokens', i, 'acl', j, 'roles', k], `unknown role '${r}'`);
      });
      a.privs.forEach((p, k) => {
        if (!VALID_PRIVILEGES.has(p)) issue(['tokens', i, 'acl', j, 'privs', k], `invalid privilege '${p}'`);
      });
    });
  });
  s.ha_rules.forEach((r, i) => {
    r.nodes.forEach((n, j) => {
      if (!nodes.has(n.split(':')[0]!)) issue(['ha_rules', i, 'nodes', j], `unknown node '${n}'`);
    });
  });
  s.faults?.offline_nodes.forEach((n, i) => {
    if (!nodes.has(n)) issue(['faults', 'offline_nodes', i], `unknown node '${n}'`);
  });
}

export const ScenarioSchema = ScenarioObject.superRefine(crossCheck);

/** A scenario as written (YAML or code): defaults may be left out. */
export type Scenario = z.input<typeof ScenarioSchema>;
/** A validated scenario with every default filled in. */
export type ResolvedScenario = z.output<typeof ScenarioSchema>;
export type GuestSpec = ResolvedScenario['guests'][number];
export type NodeSpec = ResolvedScenario['nodes'][number];
export type StorageSpec = ResolvedScenario['storages'][number];

export function isSharedStorage(spec: Pick<StorageSpec, 'type' | 'shared'>): boolean {
  return spec.shared ?? SHARED_TYPES.has(spec.type);
}

export class ScenarioError extends Error {
  constructor(
    readonly source: string,
    readonly issues: readonly string[],
  ) {
    super(`invalid scenario ${source}:\n${issues.map((i) => `  ${i}`).join('\n')}`);
    this.name = 'ScenarioError';
  }
}

function describe(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String).join('.') || '(root)';
  return `${path}: ${issue.message}`;
}

/** Validates a scenario object; throws ScenarioError listing every problem as `path: reason`. */
export function parseScenario(input: unknown, source = '(inline)'): ResolvedScenario {
  const result = ScenarioSchema.safeParse(input);
  if (!result.success) throw new ScenarioError(source, result.error.issues.map(describe));
  return result.data;
}

/** Reads a scenario from a YAML (or JSON) file. */
export async function loadScenarioFile(path: string): Promise<ResolvedScenario> {
  const text = await readFile(path, 'utf8');
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new ScenarioError(path, [`(file): not valid YAML - ${(err as Error).message.split('\n')[0]}`]);
  }
  return parseScenario(data, path);
}

/** A scenario given as an object or as the path of a YAML file. */
export async function resolveScenario(scenario: Scenario | ResolvedScenario | string): Promise<ResolvedScenario> {
  return typeof scenario === 'string' ? loadScenarioFile(scenario) : parseScenario(scenario);
}
