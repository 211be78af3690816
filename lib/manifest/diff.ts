/**
 * The difference between a fleet manifest and a cluster, as the changes that close it: a pure
 * function of the manifest, one reading of the cluster and the environment's policy, so the
 * reconcile plan, drift detection and the tests share one answer.
 *
 * Per manifest guest: create it (clone a template, import an image, install from an ISO, or
 * unpack a container template), change it in place (live, or with a restart for what only
 * takes effect at boot), replace it (its kind or source changed), or leave it. Guests the
 * manifest does not name are left alone — unless the manifest claims them (by tag or VMID
 * range): then they are deleted. Deleting is never implied by omission alone.
 *
 * Every step carries the exact parameters it sends to PVE; config changes carry the config
 * `digest` they were computed from, so PVE refuses them if the guest changed in between.
 */
import type { SafetyPolicy, VmDefaults } from '../config/schema.js';
import { safetySnapshotName } from '../lifecycle/guest-steps.js';
import { guestName, NamingError } from '../lifecycle/naming.js';
import { placeGuests, placementConstraints, type PlacementItem, type PlacementTarget } from '../planning/placement.js';
import type { PlanStep, Risk } from '../operations/plan.js';
import { configDelta, type ConfigDelta, type FieldChange, type ParamValue } from './config-delta.js';
import { findGuest, guestLabel, type Fleet, type FleetGuest, type ManifestProblem, type VmidRange } from './load.js';
import { matchGuests, resolveTemplate, type Problem } from './match.js';
import { manifestPath, stepRefusals } from './refusals.js';
import { kindLabel, type GuestKind, type ObservedCluster, type ObservedGuest } from './observed.js';
import {
  composeDescription,
  configFlag,
  configString,
  encodeSshKeys,
  formatGiB,
  formatIpConfig,
  formatLxcNic,
  formatQemuNic,
  formatTagList,
  parseDescription,
  parseDrive,
  sourceLabel,
} from './pve-config.js';
import { defaultDiskSlot, fieldsSet } from './schema.js';

export type { FieldChange } from './config-delta.js';
export { guestsToInspect, volumesToLocate } from './match.js';
export type { GuestKind, ObservedCluster, ObservedGuest, ObservedStorage } from './observed.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

export interface DiffContext {
  environment: string;
  naming: { pattern: string };
  /** The environment's VM range: new guests' VMIDs come from it unless their file claims one. */
  vmids: VmidRange;
  defaults: VmDefaults;
  policy: SafetyPolicy;
  now: Date;
}

export type ChangeAction = 'create' | 'update' | 'replace' | 'delete';

/** A guest to create, in the shape the provisioning activity takes (activities/provision.ts CreateSpec). */
export interface NewGuestSpec {
  kind: 'create' | 'clone';
  type: GuestKind;
  node: string;
  vmid: number;
  vmidFixed: boolean;
  range: VmidRange;
  name: { fixed: string } | { pattern: string; service: string };
  params: Record<string, ParamValue>;
  source?: { vmid: number; name: string; node: string };
}

export interface GuestChange {
  /** The guest as the manifest names it (name, service, or `service#vmid`); a deleted guest's own name. */
  key: string;
  action: ChangeAction;
  kind: GuestKind;
  /** The guest as it is (update, replace, delete) or will be (create). */
  vmid: number;
  name: string;
  node: string;
  /** What a replacement creates. */
  replacement?: { vmid: number; name: string; node: string; kind: GuestKind };
  /** The change restarts the guest (or takes effect at its next start). */
  restart: boolean;
  fields: FieldChange[];
  steps: PlanStep[];
  risk: Risk;
  /** Why the change carries its risk. */
  reasons: string[];
  /** Dependency wave: wave n starts once every change of wave n-1 has finished. */
  wave: number;
  /** Keys of the guests whose changes must succeed first. */
  dependsOn: string[];
  /** Creates sharing a lane run one at a time (clones of one template: PVE locks it while copying). */
  lane?: string;
  create?: NewGuestSpec;
  /**
   * The plan-time values of the keys the config step sets (null: absent). The config digest
   * also changes when the safety snapshot is taken, so the apply compares these to tell its
   * own snapshot from someone else's edit.
   */
  before?: Record<string, string | null>;
  /** The manifest file naming the guest; deletes say why the guest is claimed instead. */
  file?: string;
  claimedBy?: string;
}

export interface FleetDiff {
  environment: string;
  manifestDigest: string;
  /** In apply order: by wave, then as the manifest lists them. */
  changes: GuestChange[];
  unchanged: { key: string; vmid: number; name: string }[];
  /** Differences the reconcile does not change (shrinking disks, moving storage), and notices. */
  warnings: string[];
  /** Manifest entries that cannot be planned against this cluster, as `file:path: reason`. */
  problems: ManifestProblem[];
}

const RISK_ORDER: Record<Risk, number> = { low: 0, medium: 1, high: 2 };
export function maxRisk(risks: Iterable<Risk>): Risk {
  let worst: Risk = 'low';
  for (const r of risks) if (RISK_ORDER[r] > RISK_ORDER[worst]) worst = r;
  return worst;
}

function describeSource(g: FleetGuest): string {
  const s = g.source!;
  if (s.template !== undefined) return `${s.full === false ? 'linked' : 'full'} clone of template ${s.template}`;
  if (s.image !== undefined) return `disk imported from ${s.image}`;
  if (s.iso !== undefined) return `installer ${s.iso}`;
  return `from ${s.ostemplate}`;
}

// ---------------------------------------------------------------------------------------------
// New guests: what they are created from, and the request that creates them.

interface NewGuestDraft {
  g: FleetGuest;
  key: string;
  template?: ObservedGuest;
  /** Nodes it can be created on (the source and its storages must be there). */
  onlyOn?: string[];
  memoryMb: number;
  cores: number;
  bootStorage: string;
  bootDiskBytes: number;
}

function createParams(d: NewGuestDraft, ctx: DiffContext, claimTags: readonly string[]): Record<string, ParamValue> {
  const { g } = d;
  const defaults = ctx.defaults;
  const tags = formatTagList([...(g.tags ?? []), ...claimTags]);
  const common: Record<string, ParamValue> = {
    ...(tags ? { tags } : {}),
    ...(g.onboot !== undefined ? { onboot: g.onboot } : {}),
  };
  if (g.kind === 'lxc') {
    const disks = g.disks ?? [{ size: 8 }];
    const params: Record<string, ParamValue> = {
      ostemplate: g.source!.ostemplate!,
      cores: g.cores ?? defaults.cores,
      memory: g.memory ?? defaults.memory_mb,
      swap: g.swap ?? 512,
      unprivileged: true,
    };
    disks.forEach((disk, i) => {
      const slot = disk.slot ?? defaultDiskSlot('lxc', i);
      params[slot] = `${disk.storage ?? defaults.storage}:${disk.size}${disk.path ? `,mp=${disk.path}` : ''}`;
    });
    (g.network ?? [{}]).forEach((nic, i) => {
      params[`net${i}`] = formatLxcNic({
        name: nic.name ?? `eth${i}`,
        bridge: nic.bridge ?? defaults.network_bridge,
        ip: nic.ip ?? 'dhcp',
        ...(nic.gateway ? { gateway: nic.gateway } : {}),
        ...(nic.vlan !== undefined ? { vlan: nic.vlan } : {}),
        firewall: nic.firewall ?? false,
        rest: [],
      });
    });
    return { ...params, ...common };
  }

  const disks = g.disks ?? [{ size: defaults.disk_gb }];
  const iothread = defaults.scsi_controller === 'virtio-scsi-single';
  const params: Record<string, ParamValue> = {
    cores: g.cores ?? defaults.cores,
    sockets: 1,
    memory: String(g.memory ?? defaults.memory_mb),
    cpu: defaults.cpu,
    bios: defaults.bios,
    machine: defaults.machine,
    scsihw: defaults.scsi_controller,
    ostype: 'l26',
    agent: defaults.guest_agent ? '1' : '0',
  };
  disks.forEach((disk, i) => {
    const slot = disk.slot ?? defaultDiskSlot('qemu', i);
    const importFrom = i === 0 && g.source!.image ? `,import-from=${g.source!.image}` : '';
    params[slot] =
      `${disk.storage ?? defaults.storage}:${disk.size}${iothread && slot.startsWith('scsi') ? ',iothread=1' : ''}${importFrom}`;
  });
  (g.network ?? [{}]).forEach((nic, i) => {
    params[`net${i}`] = formatQemuNic({
      model: nic.model ?? 'virtio',
      bridge: nic.bridge ?? defaults.network_bridge,
      ...(nic.vlan !== undefined ? { vlan: nic.vlan } : {}),
      firewall: nic.firewall ?? false,
      rest: [],
    });
  });
  const bootSlot = disks[0]!.slot ?? 'scsi0';
  if (g.source!.iso) {
    params['ide2'] = `${g.source!.iso},media=cdrom`;
    params['boot'] = `order=${bootSlot};ide2;net0`;
  } else {
    if (g.cloud_init) params['ide2'] = `${d.bootStorage}:cloudinit`;
    params['boot'] = `order=${bootSlot};net0`;
  }
  if (defaults.bios === 'ovmf')
    params['efidisk0'] =
      `${d.bootStorage}:1,efitype=4m,pre-enrolled-keys=${defaults.efidisk_pre_enrolled_keys ? 1 : 0}`;
  const ci = g.cloud_init;
  if (ci) {
    if (ci.user) params['ciuser'] = ci.user;
    if (ci.ssh_keys) params['sshkeys'] = encodeSshKeys(ci.ssh_keys);
    if (ci.ip) params['ipconfig0'] = formatIpConfig(ci.ip, ci.gateway);
    if (ci.nameserver) params['nameserver'] = ci.nameserver.join(' ');
    if (ci.searchdomain) params['searchdomain'] = ci.searchdomain;
  }
  return { ...params, ...common };
}

// ---------------------------------------------------------------------------------------------

export function diffFleet(fleet: Fleet, cluster: ObservedCluster, ctx: DiffContext): FleetDiff {
  const problems: ManifestProblem[] = [];
  const warnings: string[] = [];
  const problem: Problem = (g, path, message) =>
    problems.push({ file: g.file, path: ['guests', g.index, ...path].join('.'), message });
  const claimTags = fleet.claims.tags;
  const onlineNodes = cluster.nodes.filter((n) => n.online).map((n) => n.name);
  const knownNodes = new Set(cluster.nodes.map((n) => n.name));

  for (const g of fleet.guests) {
    for (const [path, node] of [
      ['node', g.node] as const,
      ...(g.placement?.nodes ?? []).map((n, i) => [`placement.nodes.${i}`, n] as const),
    ]) {
      if (node !== undefined && !knownNodes.has(node))
        problem(g, path.split('.'), `no node '${node}' in environment ${ctx.environment}`);
    }
  }

  const { matched, claimed } = matchGuests(fleet, cluster.guests, ctx.naming.pattern, problem);
  const label = new Map(fleet.guests.map((g) => [g, guestLabel(g)]));
  const allowedNodes = (g: FleetGuest): string[] | undefined => (g.node !== undefined ? [g.node] : g.placement?.nodes);

  // Storages that can hold a guest's disks, and the nodes that see them.
  const storageNodes = (storage: string, kind: GuestKind): string[] =>
    cluster.storages
      .filter((s) => s.storage === storage && s.content.includes(kind === 'qemu' ? 'images' : 'rootdir'))
      .map((s) => s.node);
  const isShared = (storage: string) => cluster.storages.some((s) => s.storage === storage && s.shared);

  /** What creating `g` takes, or undefined (with problems) when it cannot be created here. */
  const draftNew = (g: FleetGuest, replacing: boolean): NewGuestDraft | undefined => {
    const key = label.get(g)!;
    if (!g.source) {
      problem(
        g,
        ['source'],
        replacing
          ? `'${key}' must be replaced, which needs a source`
          : `'${key}' does not exist; creating it needs a source`,
      );
      return undefined;
    }
    let ok = true;
    const restrict: string[][] = [];
    const bootStorage = g.disks?.[0]?.storage ?? ctx.defaults.storage;
    // A clone's disks land where the template's are, unless the manifest names a storage.
    const clone = g.source.template !== undefined;
    for (const [i, disk] of (g.disks ?? [{ storage: undefined }]).entries()) {
      if (clone && disk.storage === undefined) continue;
      const storage = disk.storage ?? ctx.defaults.storage;
      const nodes = storageNodes(storage, g.kind);
      if (nodes.length === 0) {
        problem(
          g,
          disk.storage ? ['disks', i, 'storage'] : ['disks'],
          `no storage '${storage}' for ${g.kind === 'qemu' ? 'VM disks' : 'container volumes'} in environment ${ctx.environment}`,
        );
        ok = false;
      } else restrict.push(nodes);
    }
    let template: ObservedGuest | undefined;
    let memoryMb = g.memory ?? ctx.defaults.memory_mb;
    let cores = g.cores ?? ctx.defaults.cores;
    let bootDiskBytes = (g.disks?.[0]?.size ?? (g.kind === 'lxc' ? 8 : ctx.defaults.disk_gb)) * GiB;
    if (g.source.template !== undefined) {
      template = resolveTemplate(g.source.template, cluster.guests);
      if (!template) {
        problem(g, ['source', 'template'], `no VM template '${g.source.template}' in environment ${ctx.environment}`);
        return undefined;
      }
      if (!template.template)
        problem(g, ['source', 'template'], `VM ${template.vmid} '${template.name}' is not a template`);
      const config = template.config ?? {};
      const disks = Object.entries(config).filter(
        ([k, v]) => /^(scsi|virtio|sata|ide)\d+$/.test(k) && !parseDrive(String(v)).cdrom,
      );
      const local = disks.find(([, v]) => !isShared(parseDrive(String(v)).storage));
      if (local) restrict.push([template.node]);
      if (g.source.full === false && g.disks?.[0]?.storage !== undefined) {
        problem(
          g,
          ['disks', 0, 'storage'],
          'a linked clone shares the template’s storage; remove the storage or clone in full',
        );
      }
      memoryMb = g.memory ?? Math.round(template.memoryBytes / MiB);
      cores = g.cores ?? template.cores;
      bootDiskBytes =
        g.source.full === false
          ? 0
          : Math.max(bootDiskBytes, ...disks.map(([, v]) => (parseDrive(String(v)).sizeGiB ?? 0) * GiB));
      for (const [i, disk] of (g.disks ?? []).entries()) {
        const slot = disk.slot ?? defaultDiskSlot('qemu', i);
        const size = parseDrive(configString(config, slot) ?? '').sizeGiB;
        if (size !== undefined && disk.size < size - 1e-6) {
          problem(
            g,
            ['disks', i, 'size'],
            `template ${template.name}'s ${slot} is ${formatGiB(size)}; a clone's disks only grow`,
          );
          ok = false;
        }
      }
    } else {
      const volid = (g.source.image ?? g.source.iso ?? g.source.ostemplate)!;
      const field = g.source.image !== undefined ? 'image' : g.source.iso !== undefined ? 'iso' : 'ostemplate';
      const nodes = cluster.volumes[volid] ?? [];
      if (nodes.length === 0) {
        problem(g, ['source', field], `no volume '${volid}' on any node of environment ${ctx.environment}`);
        ok = false;
      } else restrict.push(nodes);
    }
    const allowed = allowedNodes(g);
    if (allowed) restrict.push(allowed);
    if (!ok) return undefined;
    const onlyOn = restrict.length > 0 ? restrict.reduce((a, b) => a.filter((n) => b.includes(n))) : undefined;
    if (onlyOn && onlyOn.length === 0) {
      problem(
        g,
        [g.node !== undefined ? 'node' : 'placement'],
        `no node has both the source and the storages it needs${allowed ? ` among ${allowed.join(', ')}` : ''}`,
      );
      return undefined;
    }
    return {
      g,
      key,
      ...(template ? { template } : {}),
      ...(onlyOn ? { onlyOn } : {}),
      memoryMb,
      cores,
      bootStorage,
      bootDiskBytes,
    };
  };

  // Compare existing guests; collect what must be created, replaced or moved.
  interface Pending {
    g: FleetGuest;
    observed?: ObservedGuest;
    action: 'create' | 'update' | 'replace';
    delta?: ConfigDelta;
    forcing?: FieldChange[];
    power?: 'start' | 'shutdown';
    move?: boolean;
    draft?: NewGuestDraft;
  }
  const pending: Pending[] = [];
  const unchanged: FleetDiff['unchanged'] = [];

  for (const g of fleet.guests) {
    const key = label.get(g)!;
    const observed = matched.get(g);
    if (!observed) {
      const at = `guests.${g.index}`;
      if (problems.some((p) => p.file === g.file && (p.path === at || p.path.startsWith(`${at}.`)))) continue;
      const draft = draftNew(g, false);
      if (draft) pending.push({ g, action: 'create', draft });
      continue;
    }
    const what = `${kindLabel(observed.kind)} ${observed.vmid} '${observed.name}'`;
    const config = observed.config;
    if (!config) {
      problem(g, [], `the config of ${what} was not read`);
      continue;
    }
    const recorded = parseDescription(configString(config, 'description')).source;
    const forcing: FieldChange[] = [];
    if (observed.kind !== g.kind) forcing.push({ field: 'kind', from: observed.kind, to: g.kind, replaces: true });
    if (g.managed.includes('source') && g.source) {
      const wanted = sourceLabel(g.source);
      if (recorded === undefined)
        warnings.push(`${key}: ${what} does not record what it was created from; its source is not compared`);
      else if (recorded !== wanted) forcing.push({ field: 'source', from: recorded, to: wanted, replaces: true });
    }
    if (forcing.length > 0) {
      if (configFlag(config, 'protection')) {
        warnings.push(
          `${key}: ${what} must be replaced (${forcing.map((f) => f.field).join(', ')} changed) but has protection enabled; turn it off in PVE to let the manifest replace it`,
        );
        continue;
      }
      const draft = draftNew(g, true);
      if (draft) pending.push({ g, observed, action: 'replace', forcing, draft });
      continue;
    }
    if (observed.lock)
      warnings.push(`${key}: ${what} is locked (${observed.lock}); PVE refuses changes until the lock clears`);
    const running = observed.status === 'running';
    const delta = configDelta(g, {
      kind: g.kind,
      config,
      running,
      fields: new Set(g.managed),
      claimTags,
      defaults: ctx.defaults,
      source: recorded,
      warn: (m) => warnings.push(`${key}: ${m}`),
      what,
    });
    const power =
      g.managed.includes('power') && g.power !== undefined && (g.power === 'running') !== running
        ? g.power === 'running'
          ? 'start'
          : 'shutdown'
        : undefined;
    const allowed = g.managed.includes('node') ? allowedNodes(g) : undefined;
    const move = allowed !== undefined && !allowed.includes(observed.node);
    if (delta.fields.length === 0 && delta.resizes.length === 0 && !power && !move) {
      unchanged.push({ key, vmid: observed.vmid, name: observed.name });
      continue;
    }
    pending.push({ g, observed, action: 'update', delta, ...(power ? { power } : {}), move });
  }

  // Placement: new guests, and guests that must move to a node their rule allows.
  const items: PlacementItem[] = [];
  for (const p of pending) {
    const groups = p.g.placement?.anti_affinity ? { apart: [p.g.placement.anti_affinity] } : {};
    if (p.draft) {
      items.push({
        id: p.draft.key,
        memory: p.draft.memoryMb * MiB,
        vcpus: p.draft.cores,
        storage:
          isShared(p.draft.bootStorage) || p.draft.template ? {} : { [p.draft.bootStorage]: p.draft.bootDiskBytes },
        ...(p.draft.onlyOn ? { onlyOn: p.draft.onlyOn } : {}),
        ...groups,
      });
    } else if (p.move) {
      items.push({
        id: label.get(p.g)!,
        memory: p.observed!.memoryBytes,
        vcpus: p.observed!.cores,
        storage: {},
        onlyOn: allowedNodes(p.g)!,
        ...groups,
      });
    }
  }
  const placement =
    items.length === 0
      ? undefined
      : placeGuests(items, placementTargets(cluster, fleet, matched, label), placementConstraints(ctx.policy));
  const placed = (p: Pending): string | undefined => {
    const key = label.get(p.g)!;
    const node = placement?.placements[key];
    if (!node) {
      const reasons = placement?.unplaced.find((u) => u.id === key)?.reasons ?? [];
      const text = `no node can take it${onlineNodes.length ? '' : ' (no node is online)'}: ${reasons.join('; ') || 'no node qualifies'}`;
      if (p.draft) problem(p.g, [p.g.node !== undefined ? 'node' : 'placement'], text);
      else warnings.push(`${key}: should move to ${allowedNodes(p.g)!.join(' or ')}, but ${text}`);
    }
    return node;
  };

  // VMIDs and names of new guests, in manifest order.
  const taken = new Set<number>([
    ...cluster.guests.map((o) => o.vmid),
    ...fleet.guests.flatMap((g) => (g.vmid !== undefined ? [g.vmid] : [])),
  ]);
  const existingNames = new Set(cluster.guests.map((o) => o.name.toLowerCase()));
  const allocate = (g: FleetGuest): { vmid: number; range: VmidRange } | undefined => {
    const range = g.vmidRange ?? ctx.vmids;
    if (g.vmid !== undefined) return { vmid: g.vmid, range };
    for (let vmid = range.min; vmid <= range.max; vmid++) {
      if (!taken.has(vmid)) {
        taken.add(vmid);
        return { vmid, range };
      }
    }
    problem(g, ['vmid'], `no free VMID left in ${range.min}-${range.max}`);
    return undefined;
  };

  const changes: GuestChange[] = [];
  for (const p of pending) {
    const key = label.get(p.g)!;
    const g = p.g;
    const dependsOn = g.depends_on.map((d) => label.get(findGuest(fleet.guests, d)!)!);
    if (p.action === 'update') {
      const target = p.move ? placed(p) : undefined;
      changes.push(updateChange(p.g, key, p.observed!, p.delta!, p.power, target, dependsOn, ctx));
      continue;
    }
    const node = placed(p);
    const vmid = node ? allocate(g) : undefined;
    if (!node || !vmid) continue;
    let name: string;
    try {
      name = g.name ?? guestName(ctx.naming.pattern, { service: g.service!, vmid: vmid.vmid });
    } catch (err) {
      if (!(err instanceof NamingError)) throw err;
      problem(g, ['service'], err.message);
      continue;
    }
    if (existingNames.has(name.toLowerCase()) && name.toLowerCase() !== p.observed?.name.toLowerCase()) {
      problem(g, [g.name !== undefined ? 'name' : 'service'], `a guest named '${name}' exists already`);
      continue;
    }
    existingNames.add(name.toLowerCase());
    const created = newGuestChange(p.draft!, { node, vmid: vmid.vmid, range: vmid.range, name }, claimTags, ctx, (m) =>
      warnings.push(`${key}: ${m}`),
    );
    if (p.action === 'create') {
      changes.push({ ...created, dependsOn, file: g.file });
    } else {
      changes.push(replaceChange(p.observed!, p.forcing!, created, dependsOn, g.file));
    }
  }

  // Claimed guests the manifest no longer lists.
  const keys = new Set(changes.map((c) => c.key));
  for (const { guest, why } of claimed) {
    const what = `${kindLabel(guest.kind)} ${guest.vmid} '${guest.name}'`;
    if (configFlag(guest.config ?? {}, 'protection')) {
      warnings.push(
        `${guest.name}: ${what} is claimed by the manifest (${why}) but not in it, and has protection enabled; it is kept`,
      );
      continue;
    }
    const key = keys.has(guest.name) ? `${guest.name}#${guest.vmid}` : guest.name;
    changes.push(deleteChange(key, guest, why));
  }

  // Waves: a guest's changes start once those of the guests it depends on have finished.
  const level = new Map<FleetGuest, number>();
  const levelOf = (g: FleetGuest): number => {
    const known = level.get(g);
    if (known !== undefined) return known;
    level.set(g, 0);
    const deps = g.depends_on.map((d) => findGuest(fleet.guests, d)!);
    const value = deps.length === 0 ? 0 : 1 + Math.max(...deps.map(levelOf));
    level.set(g, value);
    return value;
  };
  const byKey = new Map(fleet.guests.map((g) => [label.get(g)!, g]));
  for (const c of changes) c.wave = c.action === 'delete' ? 0 : 1 + levelOf(byKey.get(c.key)!);
  const order = new Map(fleet.guests.map((g, i) => [label.get(g)!, i]));
  changes.sort((a, b) => a.wave - b.wave || (order.get(a.key) ?? -1) - (order.get(b.key) ?? -1) || a.vmid - b.vmid);

  for (const c of changes) {
    const g = byKey.get(c.key);
    if (g) reportRefusals(g, c, problem);
  }

  return {
    environment: ctx.environment,
    manifestDigest: fleet.digest,
    changes: problems.length ? [] : changes,
    unchanged,
    warnings,
    problems,
  };
}

/** A step's parameters PVE would refuse, as problems of the manifest field they come from. */
function reportRefusals(g: FleetGuest, c: GuestChange, problem: Problem): void {
  for (const s of c.steps) {
    if (!s.params) continue;
    // A replacement's create and configure steps act on the new guest, whose kind may differ.
    const kind = c.replacement && s.action !== 'destroy' && s.action !== 'shutdown' ? c.replacement.kind : c.kind;
    for (const [key, reason] of Object.entries(stepRefusals(kind, s.action, s.params))) {
      problem(g, manifestPath(key), `PVE would refuse ${key}=${String(s.params[key])}: ${reason}`);
    }
  }
}

function placementTargets(
  cluster: ObservedCluster,
  fleet: Fleet,
  matched: Map<FleetGuest, ObservedGuest>,
  label: Map<FleetGuest, string>,
): PlacementTarget[] {
  return cluster.nodes
    .filter((n) => n.online)
    .map((n) => {
      const groups: Record<string, string[]> = {};
      for (const g of fleet.guests) {
        const group = g.placement?.anti_affinity;
        const o = matched.get(g);
        if (group && o?.node === n.name) (groups[group] ??= []).push(label.get(g)!);
      }
      const running = cluster.guests.filter((o) => o.node === n.name && o.status === 'running');
      return {
        node: n.name,
        memoryTotal: n.memoryTotalBytes,
        memoryUsed: n.memoryUsedBytes,
        memoryCommitted: running.reduce((sum, o) => sum + o.memoryBytes, 0),
        cpus: n.cores,
        vcpusAssigned: running.reduce((sum, o) => sum + o.cores, 0),
        storageFree: Object.fromEntries(
          cluster.storages
            .filter((s) => s.node === n.name && (s.content.includes('images') || s.content.includes('rootdir')))
            .map((s) => [s.storage, s.freeBytes]),
        ),
        groups,
      };
    });
}

// ---------------------------------------------------------------------------------------------
// Changes and their steps.

function describeConfigChange(params: Record<string, ParamValue>): string {
  const set = Object.keys(params).filter((k) => k !== 'delete');
  const removed = params['delete'] === undefined ? [] : [`remove ${params['delete']}`];
  return [...(set.length ? [`set ${set.join(', ')}`] : []), ...removed].join(' and ');
}

function step(key: string, suffix: string, fields: Omit<PlanStep, 'id'>): PlanStep {
  return { id: `${key}/${suffix}`, ...fields };
}

function updateChange(
  g: FleetGuest,
  key: string,
  o: ObservedGuest,
  delta: ConfigDelta,
  power: 'start' | 'shutdown' | undefined,
  moveTo: string | undefined,
  dependsOn: string[],
  ctx: DiffContext,
): GuestChange {
  const what = `${kindLabel(o.kind)} ${o.vmid}`;
  const base = { vmid: o.vmid, name: o.name, node: o.node };
  const fields = [...delta.fields];
  const steps: PlanStep[] = [];
  const reasons: string[] = [];
  let risk: Risk = 'low';
  const raise = (r: Risk, why: string) => {
    risk = maxRisk([risk, r]);
    reasons.push(why);
  };
  const changesConfig = Object.keys(delta.params).length > 0 || delta.resizes.length > 0;

  if (changesConfig && delta.hardware && ctx.policy.snapshot_before_change) {
    const snapname = safetySnapshotName('reconcile', ctx.now);
    steps.push(
      step(key, 'snapshot', {
        ...base,
        action: 'snapshot',
        params: { snapname },
        description: `snapshot ${what} as '${snapname}' before changing it`,
      }),
    );
  }
  let before: Record<string, string | null> | undefined;
  if (Object.keys(delta.params).length > 0) {
    const digest = configString(o.config!, 'digest');
    const keys = [
      ...Object.keys(delta.params).filter((k) => k !== 'delete'),
      ...String(delta.params['delete'] ?? '')
        .split(',')
        .filter(Boolean),
    ];
    before = Object.fromEntries(keys.map((k) => [k, configString(o.config!, k) ?? null]));
    steps.push(
      step(key, 'config', {
        ...base,
        action: 'config',
        params: { ...delta.params, ...(digest ? { digest } : {}) },
        description: `${describeConfigChange(delta.params)} of ${what} '${o.name}' (refused by PVE if its config changed since this plan)`,
      }),
    );
  }
  for (const r of delta.resizes) {
    steps.push(
      step(key, `resize-${r.slot}`, {
        ...base,
        action: 'resize-disk',
        params: { disk: r.slot, size: `${r.sizeGiB}G` },
        description: `grow ${what}'s ${r.slot} to ${r.sizeGiB}G`,
      }),
    );
  }
  if (delta.hardware) raise('medium', `changes the CPU, memory, disks, network or cloud-init of ${what} '${o.name}'`);
  else if (changesConfig) raise('low', `changes only tags, description or onboot of ${what} '${o.name}'`);

  if (moveTo) {
    fields.push({ field: 'node', from: o.node, to: moveTo });
    const mode = o.status !== 'running' ? 'offline' : o.kind === 'qemu' ? 'online' : 'restart';
    steps.push(
      step(key, 'migrate', {
        ...base,
        action: 'migrate',
        target: moveTo,
        params: { target: moveTo, mode },
        description: `migrate ${what} from ${o.node} to ${moveTo} (${mode})`,
      }),
    );
    raise('high', `migrates ${what} '${o.name}' to ${moveTo}`);
  }
  if (power === 'start') {
    fields.push({ field: 'power', from: o.status, to: 'running' });
    steps.push(step(key, 'start', { ...base, node: moveTo ?? o.node, action: 'start', description: `start ${what}` }));
    raise('low', `starts ${what} '${o.name}'`);
  } else if (power === 'shutdown') {
    fields.push({ field: 'power', from: o.status, to: 'stopped' });
    steps.push(
      step(key, 'shutdown', {
        ...base,
        node: moveTo ?? o.node,
        action: 'shutdown',
        params: { timeout: 180, forceStop: false },
        description: `shut ${what} down gracefully (up to 180 s)`,
      }),
    );
    raise('medium', `shuts down ${what} '${o.name}'`);
  } else if (delta.restart && o.status === 'running') {
    steps.push(
      step(key, 'reboot', {
        ...base,
        node: moveTo ?? o.node,
        action: 'reboot',
        description: `reboot ${what} so the changes that apply at boot take effect`,
      }),
    );
    raise('medium', `reboots ${what} '${o.name}' for changes that apply at boot`);
  }
  return {
    key,
    action: 'update',
    kind: o.kind,
    ...base,
    restart: delta.restart && o.status === 'running' && power !== 'shutdown',
    fields,
    steps,
    risk,
    reasons,
    wave: 0,
    dependsOn,
    file: g.file,
    ...(before ? { before } : {}),
  };
}

function newGuestChange(
  d: NewGuestDraft,
  at: { node: string; vmid: number; range: VmidRange; name: string },
  claimTags: readonly string[],
  ctx: DiffContext,
  warn: (message: string) => void,
): GuestChange {
  const { g, key } = d;
  const { node, vmid, name } = at;
  const what = `${kindLabel(g.kind)} ${vmid} '${name}'`;
  const base = { vmid, name, node };
  const steps: PlanStep[] = [];
  const nameSpec: NewGuestSpec['name'] =
    g.name !== undefined ? { fixed: g.name } : { pattern: ctx.naming.pattern, service: g.service! };
  const description = composeDescription(g.description ?? '', sourceLabel(g.source!));
  let spec: NewGuestSpec;
  const fields: FieldChange[] = [{ field: 'source', from: '(none)', to: sourceLabel(g.source!) }];

  if (d.template) {
    const tpl = d.template;
    const full = g.source!.full !== false;
    const storage = full ? g.disks?.[0]?.storage : undefined;
    const params: Record<string, ParamValue> = {
      full,
      ...(node !== tpl.node ? { target: node } : {}),
      ...(storage ? { storage } : {}),
    };
    spec = {
      kind: 'clone',
      type: 'qemu',
      node,
      vmid,
      vmidFixed: g.vmid !== undefined,
      range: at.range,
      name: nameSpec,
      params,
      source: { vmid: tpl.vmid, name: tpl.name, node: tpl.node },
    };
    steps.push(
      step(key, 'clone', {
        ...base,
        node: tpl.node,
        target: node,
        action: 'clone',
        params: { newid: vmid, name, ...params },
        description: `${describeSource(g)} (VM ${tpl.vmid} on ${tpl.node}) as ${what} on ${node}`,
      }),
    );
    // The clone starts as a copy of the template: configure what the manifest sets differently.
    const delta = configDelta(
      { ...g, tags: g.tags ?? [] },
      {
        kind: 'qemu',
        config: tpl.config ?? {},
        running: false,
        fields: new Set([...fieldsSet(g), 'tags']),
        claimTags,
        defaults: ctx.defaults,
        source: sourceLabel(g.source!),
        warn,
        what,
        ...(storage ? { storageSetByClone: storage } : {}),
      },
    );
    fields.push(...delta.fields.map((f) => ({ field: f.field, from: '(template)', to: f.to })));
    steps.push(
      step(key, 'configure', {
        ...base,
        action: 'config',
        params: { ...delta.params, description },
        description: `${describeConfigChange({ ...delta.params, description })} of the clone`,
      }),
    );
    for (const r of delta.resizes) {
      steps.push(
        step(key, `resize-${r.slot}`, {
          ...base,
          action: 'resize-disk',
          params: { disk: r.slot, size: `${r.sizeGiB}G` },
          description: `grow the clone's ${r.slot} to ${r.sizeGiB}G`,
        }),
      );
    }
  } else {
    const params = createParams(d, ctx, claimTags);
    spec = {
      kind: 'create',
      type: g.kind,
      node,
      vmid,
      vmidFixed: g.vmid !== undefined,
      range: at.range,
      name: nameSpec,
      params,
    };
    for (const [k, v] of Object.entries(params)) fields.push({ field: k, from: '(none)', to: String(v) });
    steps.push(
      step(key, 'create', {
        ...base,
        action: 'create',
        params: { vmid, [g.kind === 'qemu' ? 'name' : 'hostname']: name, ...params },
        description: `create ${what} on ${node}, ${describeSource(g)}: ${d.cores} cores, ${d.memoryMb} MiB`,
      }),
    );
    steps.push(
      step(key, 'configure', {
        ...base,
        action: 'config',
        params: { description },
        description: 'record what the guest was created from in its description',
      }),
    );
  }
  if (g.power === 'running') {
    fields.push({ field: 'power', from: '(none)', to: 'running' });
    steps.push(step(key, 'start', { ...base, action: 'start', description: `start ${what}` }));
  }
  return {
    key,
    action: 'create',
    kind: g.kind,
    ...base,
    restart: false,
    fields,
    steps,
    risk: 'medium',
    reasons: [`creates ${what} on ${node}, allocating ${d.memoryMb} MiB of memory and its disks`],
    wave: 0,
    dependsOn: [],
    ...(d.template ? { lane: `template:${d.template.vmid}` } : {}),
    create: spec,
  };
}

function removalSteps(key: string, o: ObservedGuest): PlanStep[] {
  const what = `${kindLabel(o.kind)} ${o.vmid}`;
  const base = { vmid: o.vmid, name: o.name, node: o.node };
  return [
    ...(o.status === 'running'
      ? [
          step(key, 'stop', {
            ...base,
            action: 'stop',
            description: `power off ${what} '${o.name}' before destroying it`,
          }),
        ]
      : []),
    step(key, 'destroy', {
      ...base,
      action: 'destroy',
      params: { purge: true, 'destroy-unreferenced-disks': true },
      description: `destroy ${what} '${o.name}' and its disks (vmid and name verified first)`,
    }),
  ];
}

function replaceChange(
  o: ObservedGuest,
  forcing: FieldChange[],
  created: GuestChange,
  dependsOn: string[],
  file: string,
): GuestChange {
  const what = `${kindLabel(o.kind)} ${o.vmid} '${o.name}'`;
  return {
    ...created,
    action: 'replace',
    vmid: o.vmid,
    name: o.name,
    node: o.node,
    kind: o.kind,
    replacement: { vmid: created.vmid, name: created.name, node: created.node, kind: created.kind },
    fields: [...forcing, ...created.fields.filter((f) => !forcing.some((x) => x.field === f.field))],
    steps: [
      ...removalSteps(created.key, o).map((s) => ({ ...s, id: `${created.key}/old-${s.id.split('/').pop()}` })),
      ...created.steps,
    ],
    risk: 'high',
    reasons: [
      `replaces ${what} (${forcing.map((f) => f.field).join(' and ')} changed): the guest and its disks are destroyed and created anew`,
    ],
    dependsOn,
    file,
  };
}

function deleteChange(key: string, o: ObservedGuest, why: string): GuestChange {
  const what = `${kindLabel(o.kind)} ${o.vmid} '${o.name}'`;
  return {
    key,
    action: 'delete',
    kind: o.kind,
    vmid: o.vmid,
    name: o.name,
    node: o.node,
    restart: false,
    fields: [],
    steps: removalSteps(key, o),
    risk: 'high',
    reasons: [`destroys ${what} and its disks: the manifest claims it (${why}) and does not list it`],
    wave: 0,
    dependsOn: [],
    claimedBy: why,
  };
}
