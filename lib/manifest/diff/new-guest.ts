/** New guests: what they are created from, whether they can be created here, and the request that creates them. */
import type { CreateSpec } from '../../lifecycle/create-spec.js';
import type { PlanStep } from '../../operations/plan.js';
import { configDelta, type FieldChange, type ParamValue } from '../config-delta.js';
import type { FleetGuest, VmidRange } from '../load.js';
import { resolveTemplate } from '../match.js';
import { kindLabel, type ObservedGuest } from '../observed.js';
import {
  composeDescription,
  configString,
  encodeSshKeys,
  formatGiB,
  formatIpConfig,
  formatLxcNic,
  formatQemuNic,
  formatTagList,
  parseDrive,
  sourceLabel,
} from '../pve-config.js';
import { defaultDiskSlot, fieldsSet } from '../schema.js';
import { describeConfigChange, resizeSteps, step } from './changes.js';
import { allowedNodes, isShared, storageNodes, type DiffScope } from './scope.js';
import type { DiffContext, GuestChange } from './types.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

function describeSource(g: FleetGuest): string {
  const s = g.source!;
  if (s.template !== undefined) return `${s.full === false ? 'linked' : 'full'} clone of template ${s.template}`;
  if (s.image !== undefined) return `disk imported from ${s.image}`;
  if (s.iso !== undefined) return `installer ${s.iso}`;
  return `from ${s.ostemplate}`;
}

export interface NewGuestDraft {
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

/** What creating `g` takes, or undefined (with problems) when it cannot be created here. */
export function draftNew(scope: DiffScope, g: FleetGuest, replacing: boolean): NewGuestDraft | undefined {
  const key = scope.label.get(g)!;
  if (!g.source) {
    scope.problem(
      g,
      ['source'],
      replacing
        ? `'${key}' must be replaced, which needs a source`
        : `'${key}' does not exist; creating it needs a source`,
    );
    return undefined;
  }
  const disks = diskNodes(scope, g);
  const source = g.source.template !== undefined ? fromTemplate(scope, g) : fromVolume(scope, g);
  if (!source) return undefined;
  const restrict = [...disks.restrict, ...source.restrict];
  const allowed = allowedNodes(g);
  if (allowed) restrict.push(allowed);
  if (!disks.ok || !source.ok) return undefined;
  const onlyOn = restrict.length > 0 ? restrict.reduce((a, b) => a.filter((n) => b.includes(n))) : undefined;
  if (onlyOn && onlyOn.length === 0) {
    scope.problem(
      g,
      [g.node !== undefined ? 'node' : 'placement'],
      `no node has both the source and the storages it needs${allowed ? ` among ${allowed.join(', ')}` : ''}`,
    );
    return undefined;
  }
  const { template, memoryMb, cores, bootDiskBytes } = source;
  return {
    g,
    key,
    ...(template ? { template } : {}),
    ...(onlyOn ? { onlyOn } : {}),
    memoryMb,
    cores,
    bootStorage: g.disks?.[0]?.storage ?? scope.ctx.defaults.storage,
    bootDiskBytes,
  };
}

/** Where a new guest's disks can go: the nodes that see each storage it names (or the default one). */
function diskNodes(scope: DiffScope, g: FleetGuest): { ok: boolean; restrict: string[][] } {
  const { ctx } = scope;
  let ok = true;
  const restrict: string[][] = [];
  // A clone's disks land where the template's are, unless the manifest names a storage.
  const clone = g.source!.template !== undefined;
  for (const [i, disk] of (g.disks ?? [{ storage: undefined }]).entries()) {
    if (clone && disk.storage === undefined) continue;
    const storage = disk.storage ?? ctx.defaults.storage;
    const nodes = storageNodes(scope.cluster, storage, g.kind);
    if (nodes.length === 0) {
      scope.problem(
        g,
        disk.storage ? ['disks', i, 'storage'] : ['disks'],
        `no storage '${storage}' for ${g.kind === 'qemu' ? 'VM disks' : 'container volumes'} in environment ${ctx.environment}`,
      );
      ok = false;
    } else restrict.push(nodes);
  }
  return { ok, restrict };
}

/** What a new guest's source decides: where it can be created, and its size when the manifest does not say. */
interface SourceFacts {
  ok: boolean;
  restrict: string[][];
  template?: ObservedGuest;
  memoryMb: number;
  cores: number;
  bootDiskBytes: number;
}

/** A clone: the template must exist; its local disks pin the clone to its node; disks only grow. */
function fromTemplate(scope: DiffScope, g: FleetGuest): SourceFacts | undefined {
  const { ctx, problem } = scope;
  const source = g.source!;
  const template = resolveTemplate(source.template!, scope.cluster.guests);
  if (!template) {
    problem(g, ['source', 'template'], `no VM template '${source.template}' in environment ${ctx.environment}`);
    return undefined;
  }
  if (!template.template)
    problem(g, ['source', 'template'], `VM ${template.vmid} '${template.name}' is not a template`);
  const config = template.config ?? {};
  const disks = Object.entries(config).filter(
    ([k, v]) => /^(scsi|virtio|sata|ide)\d+$/.test(k) && !parseDrive(String(v)).cdrom,
  );
  const local = disks.find(([, v]) => !isShared(scope.cluster, parseDrive(String(v)).storage));
  if (source.full === false && g.disks?.[0]?.storage !== undefined) {
    problem(
      g,
      ['disks', 0, 'storage'],
      'a linked clone shares the template’s storage; remove the storage or clone in full',
    );
  }
  let ok = true;
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
  return {
    ok,
    restrict: local ? [[template.node]] : [],
    template,
    memoryMb: g.memory ?? Math.round(template.memoryBytes / MiB),
    cores: g.cores ?? template.cores,
    bootDiskBytes:
      source.full === false
        ? 0
        : Math.max(defaultBootDiskBytes(g, ctx), ...disks.map(([, v]) => (parseDrive(String(v)).sizeGiB ?? 0) * GiB)),
  };
}

/** An image, ISO or container template: the volume must be on some node, which the guest is then created on. */
function fromVolume(scope: DiffScope, g: FleetGuest): SourceFacts {
  const { ctx } = scope;
  const source = g.source!;
  const volid = (source.image ?? source.iso ?? source.ostemplate)!;
  const field = source.image !== undefined ? 'image' : source.iso !== undefined ? 'iso' : 'ostemplate';
  const nodes = scope.cluster.volumes[volid] ?? [];
  if (nodes.length === 0)
    scope.problem(g, ['source', field], `no volume '${volid}' on any node of environment ${ctx.environment}`);
  return {
    ok: nodes.length > 0,
    restrict: nodes.length > 0 ? [nodes] : [],
    memoryMb: g.memory ?? ctx.defaults.memory_mb,
    cores: g.cores ?? ctx.defaults.cores,
    bootDiskBytes: defaultBootDiskBytes(g, ctx),
  };
}

function defaultBootDiskBytes(g: FleetGuest, ctx: DiffContext): number {
  return (g.disks?.[0]?.size ?? (g.kind === 'lxc' ? 8 : ctx.defaults.disk_gb)) * GiB;
}

export function newGuestChange(
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
  const nameSpec: CreateSpec['name'] =
    g.name !== undefined ? { fixed: g.name } : { pattern: ctx.naming.pattern, service: g.service! };
  /** Where and as what the guest is created, whatever it is created from. */
  const where = { node, vmid, vmidFixed: g.vmid !== undefined, range: at.range, name: nameSpec };
  const description = composeDescription(g.description ?? '', sourceLabel(g.source!));
  let spec: CreateSpec;
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
      ...where,
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
    steps.push(...resizeSteps(key, base, delta.resizes, "the clone's"));
  } else {
    const params = createParams(d, ctx, claimTags);
    spec = { kind: 'create', type: g.kind, ...where, params };
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
