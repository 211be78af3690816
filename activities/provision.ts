/**
 * New guests: plan a create or clone (VMID, name, node, storage, config from the cluster's
 * defaults), then claim the VMID and send the request — the one place guests come into being.
 *
 * VMIDs are claimed by PVE's create itself, the only check no other creator can race: a
 * candidate is probed with `cluster/nextid?vmid=N`, and when the create still finds it taken
 * (another request won), the next free one is tried. Creates in this worker also hold their
 * candidate locally, so they do not even collide with each other.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import type { EnvironmentConfig } from '../lib/config/schema.js';
import { inventoryFromResources, type GuestView, type NodeView } from '../lib/inventory.js';
import { guestName, NamingError, vmidCandidates } from '../lib/lifecycle/naming.js';
import type { VmCloneInput, VmCreateInput } from '../lib/operations/catalog.js';
import { placeGuests, placementConstraints } from '../lib/planning/placement.js';
import { formatBytes, GiB, MiB } from '../lib/planning/units.js';
import type { PveClient } from '../lib/pve/client.js';
import type { ClusterResource } from '../lib/pve/cluster/endpoints.js';
import { PveApiError, PveUnavailableError, PveValidationError } from '../lib/pve/errors.js';
import type { PlanDraft, PlanStep } from '../lib/operations/plan.js';
import type { WorkerDeps } from '../worker/deps.js';
import { classified, fail } from './failures.js';
import { describeGuest, guestConfig, operationId, verifyIdentity, type LocatedGuest } from './vm.js';
import { Failure } from '../lib/operations/failures.js';

type ConfigValue = string | number | boolean;

/** Everything the create step needs, fixed at plan time except the final VMID (and a name built from it). */
export interface CreateSpec {
  kind: 'create' | 'clone';
  type: 'qemu' | 'lxc';
  node: string;
  /** The VMID the plan expects; the create takes the next free one if it is gone by then. */
  vmid: number;
  /** The operator named this VMID: it is used or the create fails, never substituted. */
  vmidFixed: boolean;
  range: { min: number; max: number };
  /** The name, or the naming pattern's inputs when the name carries the VMID. */
  name: { fixed: string } | { pattern: string; service: string };
  /** Request parameters besides vmid and name (create: the config; clone: full, target, storage). */
  params: Record<string, ConfigValue>;
  source?: { vmid: number; name: string; node: string };
}

export interface NewGuest {
  vmid: number;
  name: string;
  node: string;
  type: 'qemu' | 'lxc';
  /** The create or clone task to wait on; absent when a repeated attempt found the guest ready. */
  upid?: string;
}

export interface NewGuestCheck {
  environment: string;
  vmid: number;
  name: string;
  status?: 'running' | 'stopped';
  tags: string[];
}

/** Marks guests this orchestrator created, and which operation did: found again after a lost answer. */
export function creationMarker(operationId: string): string {
  return `Created by proxmox-manager, operation ${operationId}`;
}

export type NewGuestInput = VmCreateInput | VmCloneInput;

interface ClusterView {
  nodes: NodeView[];
  guests: GuestView[];
  storages: ClusterResource[];
}

async function readCluster(client: PveClient): Promise<ClusterView> {
  const resources = await client.cluster.resources();
  return { ...inventoryFromResources(resources), storages: resources.filter((r) => r.type === 'storage') };
}

function nameOf(spec: CreateSpec, vmid: number): string {
  return 'fixed' in spec.name ? spec.name.fixed : guestName(spec.name.pattern, { service: spec.name.service, vmid });
}

/**
 * The node a new guest goes to, under the safety policy's memory headroom and with room on
 * its storage: the one asked for, or the one left with the most free memory.
 */
function chooseNode(
  view: ClusterView,
  demand: { memory: number; vcpus: number; disk?: { storage: string; bytes: number }; content: 'images' | 'rootdir' },
  env: EnvironmentConfig,
  onlyOn: string | undefined,
): { node: string; why: string } {
  const targets = view.nodes
    .filter((n) => n.online)
    .map((n) => {
      const running = view.guests.filter((g) => g.node === n.name && g.status === 'running');
      return {
        node: n.name,
        memoryTotal: n.memoryTotalBytes,
        memoryUsed: n.memoryUsedBytes,
        memoryCommitted: running.reduce((sum, g) => sum + g.memoryBytes, 0),
        cpus: n.cores,
        vcpusAssigned: running.reduce((sum, g) => sum + g.cores, 0),
        storageFree: Object.fromEntries(
          view.storages
            .filter((s) => s.node === n.name && s.storage && (s.content ?? '').split(',').includes(demand.content))
            .map((s) => [s.storage!, (s.maxdisk ?? 0) - (s.disk ?? 0)]),
        ),
        groups: {},
      };
    });
  if (onlyOn && !view.nodes.some((n) => n.name === onlyOn))
    fail(Failure.PlanRefused, `node: no node '${onlyOn}' in this cluster`);
  if (onlyOn && !targets.some((t) => t.node === onlyOn)) fail(Failure.PlanRefused, `node: ${onlyOn} is offline`);
  const result = placeGuests(
    [
      {
        id: 'new',
        memory: demand.memory,
        vcpus: demand.vcpus,
        storage: demand.disk ? { [demand.disk.storage]: demand.disk.bytes } : {},
        ...(onlyOn ? { onlyOn: [onlyOn] } : {}),
      },
    ],
    targets,
    placementConstraints(env.policy),
  );
  const node = result.placements['new'];
  if (!node)
    fail(
      Failure.PlanRefused,
      `no node can take the new guest: ${result.unplaced[0]?.reasons.join('; ') ?? 'no online node'}`,
    );
  return { node, why: result.why['new'] ?? '' };
}

function qemuConfig(
  env: EnvironmentConfig,
  input: {
    cores: number;
    memoryMb: number;
    diskGb: number;
    storage: string;
    bridge: string;
    tags: string[];
    iso?: string;
    netboot?: boolean;
  },
): Record<string, ConfigValue> {
  const d = env.defaults;
  const config: Record<string, ConfigValue> = {
    cores: input.cores,
    sockets: 1,
    memory: String(input.memoryMb),
    cpu: d.cpu,
    bios: d.bios,
    machine: d.machine,
    scsihw: d.scsi_controller,
    ostype: 'l26',
    agent: d.guest_agent ? '1' : '0',
    net0: `virtio,bridge=${input.bridge}`,
    scsi0: `${input.storage}:${input.diskGb}${d.scsi_controller === 'virtio-scsi-single' ? ',iothread=1' : ''}`,
    ide2: input.iso ? `${input.iso},media=cdrom` : 'none,media=cdrom',
    boot: input.netboot ? 'order=net0;scsi0' : input.iso ? 'order=scsi0;ide2;net0' : 'order=scsi0;net0',
  };
  if (d.bios === 'ovmf')
    config['efidisk0'] = `${input.storage}:1,efitype=4m,pre-enrolled-keys=${d.efidisk_pre_enrolled_keys ? 1 : 0}`;
  if (input.tags.length > 0) config['tags'] = input.tags.join(';');
  return config;
}

function lxcConfig(input: {
  cores: number;
  memoryMb: number;
  diskGb: number;
  storage: string;
  bridge: string;
  tags: string[];
  ostemplate: string;
}): Record<string, ConfigValue> {
  return {
    ostemplate: input.ostemplate,
    cores: input.cores,
    memory: input.memoryMb,
    swap: 512,
    rootfs: `${input.storage}:${input.diskGb}`,
    net0: `name=eth0,bridge=${input.bridge},ip=dhcp`,
    unprivileged: true,
    ...(input.tags.length > 0 ? { tags: input.tags.join(';') } : {}),
  };
}

export interface NewGuestPlanOptions {
  /** Boot from the network first (stateful PXE installs). */
  netboot?: boolean;
}

/** Request fields shared by every kind of new guest. */
type NewGuestRequest = Pick<
  VmCreateInput,
  'environment' | 'service' | 'name' | 'vmid' | 'node' | 'cores' | 'memoryMb' | 'storage' | 'bridge' | 'tags' | 'start'
> & {
  diskGb?: number;
};

/**
 * VMIDs creates in this worker process are trying right now, so they pass each other by.
 * Process-wide on purpose: every activity instance in the worker shares the one PVE cluster.
 */
const claiming = new Set<number>();

export function createProvisionActivities(deps: Pick<WorkerDeps, 'pve' | 'config'>) {
  /** The plan shared by create, clone and stateful installs. */
  async function planNewGuest(
    request: NewGuestRequest,
    kind:
      | { create: { type: 'qemu' | 'lxc'; iso?: string; ostemplate?: string; netboot?: boolean } }
      | { clone: VmCloneInput },
  ): Promise<PlanDraft<{ spec: CreateSpec }>> {
    const env = deps.config.environments[request.environment]!;
    const client = await deps.pve(request.environment);
    return classified('write', async () => {
      const view = await readCluster(client);
      const range = env.vmid_ranges.vms;
      const byVmid = new Map(view.guests.map((g) => [g.vmid, g]));

      if (request.vmid !== undefined) {
        const existing = byVmid.get(request.vmid);
        if (existing) {
          fail(
            Failure.PlanRefused,
            `vmid: ${request.vmid} already exists ('${existing.name}' on ${existing.node}); a VMID is never reused`,
          );
        }
        if (request.vmid < range.min || request.vmid > range.max) {
          fail(
            Failure.PlanRefused,
            `vmid: ${request.vmid} is outside this environment's VM range ${range.min}-${range.max}`,
          );
        }
      }
      const vmid = request.vmid ?? vmidCandidates(range, (v) => byVmid.has(v) || claiming.has(v)).next().value;
      if (vmid === undefined) fail(Failure.PlanRefused, `no free VMID left in the VM range ${range.min}-${range.max}`);

      let name: CreateSpec['name'];
      let provisionalName: string;
      try {
        name = request.name ? { fixed: request.name } : { pattern: env.naming.pattern, service: request.service };
        provisionalName = 'fixed' in name ? name.fixed : guestName(name.pattern, { service: name.service, vmid });
      } catch (err) {
        if (err instanceof NamingError) fail(Failure.PlanRefused, err.message);
        throw err;
      }
      const sameName = view.guests.find((g) => g.name.toLowerCase() === provisionalName.toLowerCase());
      if (sameName)
        fail(
          Failure.PlanRefused,
          `name: '${provisionalName}' is already the name of ${sameName.type === 'qemu' ? 'VM' : 'CT'} ${sameName.vmid}`,
        );

      const d = env.defaults;
      const storage = request.storage ?? d.storage;
      const bridge = request.bridge ?? d.network_bridge;
      const steps: PlanStep[] = [];
      const warnings: string[] = [];
      let spec: CreateSpec;

      if ('clone' in kind) {
        const clone = kind.clone;
        const source = await verifyIdentity(client, clone.sourceVmid, clone.sourceName);
        if (source.type !== 'qemu')
          fail(Failure.PlanRefused, `sourceVmid: ${describeGuest(source)} is a container; only VMs are cloned`);
        const sourceView = byVmid.get(source.vmid)!;
        if (!clone.full && !sourceView.template) {
          fail(
            Failure.PlanRefused,
            `full: a linked clone needs a template, and ${describeGuest(source)} '${clone.sourceName}' is not one`,
          );
        }
        const cores = request.cores ?? sourceView.cores;
        const memoryBytes = request.memoryMb !== undefined ? request.memoryMb * MiB : sourceView.memoryBytes;
        // A full clone lands on the storage asked for or the source's; a linked one shares the template's disks.
        const cloneStorage = request.storage ?? bootDiskStorage(await guestConfig(client, source));
        const placed = chooseNode(
          view,
          {
            memory: memoryBytes,
            vcpus: cores,
            ...(clone.full && cloneStorage ? { disk: { storage: cloneStorage, bytes: sourceView.diskBytes } } : {}),
            content: 'images',
          },
          env,
          request.node ?? source.node,
        );
        const params: Record<string, ConfigValue> = {
          full: clone.full,
          ...(placed.node !== source.node ? { target: placed.node } : {}),
          ...(clone.full && request.storage ? { storage: request.storage } : {}),
        };
        spec = {
          kind: 'clone',
          type: 'qemu',
          node: placed.node,
          vmid,
          vmidFixed: request.vmid !== undefined,
          range,
          name,
          params,
          source: { vmid: source.vmid, name: clone.sourceName, node: source.node },
        };
        steps.push({
          id: 'create',
          action: 'clone',
          vmid,
          name: provisionalName,
          node: source.node,
          target: placed.node,
          params: { source: source.vmid, ...params },
          description: `${clone.full ? 'full' : 'linked'} clone of ${describeGuest(source)} '${clone.sourceName}' as VM ${vmid} '${provisionalName}' on ${placed.node} (${placed.why})`,
        });
        const configure: Record<string, ConfigValue> = {
          ...(request.tags.length > 0 ? { tags: request.tags.join(';') } : {}),
          ...(request.cores !== undefined ? { cores: request.cores } : {}),
          ...(request.memoryMb !== undefined ? { memory: request.memoryMb } : {}),
        };
        if (Object.keys(configure).length > 0) {
          steps.push({
            id: 'configure',
            action: 'config',
            vmid,
            name: provisionalName,
            node: placed.node,
            params: configure,
            description: `set ${Object.keys(configure).join(', ')} of the clone`,
          });
        } else if (sourceView.tags.length > 0) {
          warnings.push(`the clone keeps the source's tags (${sourceView.tags.join(', ')})`);
        }
      } else {
        const { type } = kind.create;
        const cores = request.cores ?? d.cores;
        const memoryMb = request.memoryMb ?? d.memory_mb;
        const diskGb = request.diskGb ?? (type === 'lxc' ? 8 : d.disk_gb);
        const placed = chooseNode(
          view,
          {
            memory: memoryMb * MiB,
            vcpus: cores,
            disk: { storage, bytes: diskGb * GiB },
            content: type === 'qemu' ? 'images' : 'rootdir',
          },
          env,
          request.node,
        );
        const common = { cores, memoryMb, diskGb, storage, bridge, tags: request.tags };
        const params =
          type === 'qemu'
            ? qemuConfig(env, {
                ...common,
                ...(kind.create.iso ? { iso: kind.create.iso } : {}),
                ...(kind.create.netboot ? { netboot: true } : {}),
              })
            : lxcConfig({ ...common, ostemplate: kind.create.ostemplate! });
        spec = {
          kind: 'create',
          type,
          node: placed.node,
          vmid,
          vmidFixed: request.vmid !== undefined,
          range,
          name,
          params,
        };
        steps.push({
          id: 'create',
          action: 'create',
          vmid,
          name: provisionalName,
          node: placed.node,
          params,
          description:
            `create ${type === 'qemu' ? 'VM' : 'CT'} ${vmid} '${provisionalName}' on ${placed.node} (${placed.why}): ` +
            `${cores} cores, ${formatBytes(memoryMb * MiB)}, ${diskGb} GiB on ${storage}`,
        });
      }
      if (request.vmid === undefined) {
        warnings.push(
          `VMID ${vmid} is the next free one now; if another create takes it first, the next free one in ${range.min}-${range.max} is used`,
        );
      }
      if (request.start)
        steps.push({
          id: 'start',
          action: 'start',
          vmid,
          name: provisionalName,
          node: spec.node,
          description: `start the new guest`,
        });
      steps.push({
        id: 'verify',
        action: 'verify',
        vmid,
        name: provisionalName,
        node: spec.node,
        description: 'check the guest exists as planned (name, node, tags, state)',
      });

      const what = spec.kind === 'clone' ? 'clone' : `create ${spec.type === 'qemu' ? 'VM' : 'CT'}`;
      return {
        summary: `${what} ${vmid} '${provisionalName}' on ${spec.node}`,
        risk: 'medium',
        reasons: [`allocates memory and disk on ${spec.node}${request.start ? ' and starts the guest' : ''}`],
        steps,
        warnings,
        nodes: [...new Set([spec.node, ...(spec.source ? [spec.source.node] : [])])],
        vmids: [vmid, ...(spec.source ? [spec.source.vmid] : [])],
        estimatedDurationMs: steps.length * 10_000,
        details: { spec },
      };
    });
  }

  /** A guest this operation created in an earlier attempt whose answer was lost. */
  async function findCreatedBy(client: PveClient, spec: CreateSpec, marker: string): Promise<NewGuest | undefined> {
    const guests = (await client.cluster.resources({ type: 'vm' })).filter(
      (g) =>
        g.vmid !== undefined &&
        g.node &&
        g.vmid >= spec.range.min &&
        g.vmid <= spec.range.max &&
        g.name === nameOf(spec, g.vmid),
    );
    for (const g of guests) {
      const located: LocatedGuest = {
        vmid: g.vmid!,
        type: g.type as 'qemu' | 'lxc',
        node: g.node!,
        status: g.status ?? 'unknown',
      };
      const config = await guestConfig(client, located);
      if (!String(config['description'] ?? '').includes(marker)) continue;
      const active = await client.tasks.list({ node: located.node, vmid: located.vmid, source: 'active' });
      const task = active.find((t) => /^(qmcreate|qmclone|vzcreate)$/.test(t.type));
      return {
        vmid: located.vmid,
        name: g.name!,
        node: located.node,
        type: located.type,
        ...(task ? { upid: task.upid } : {}),
      };
    }
    return undefined;
  }

  function send(client: PveClient, spec: CreateSpec, vmid: number, name: string, marker: string): Promise<string> {
    if (spec.kind === 'clone') {
      const source = spec.source!;
      return client.qemu.clone({
        node: source.node,
        vmid: source.vmid,
        newid: vmid,
        name,
        description: marker,
        ...spec.params,
      });
    }
    if (spec.type === 'qemu')
      return client.qemu.create({ node: spec.node, vmid, name, description: marker, ...spec.params });
    const { ostemplate, ...rest } = spec.params;
    return client.lxc.create({
      node: spec.node,
      vmid,
      hostname: name,
      description: marker,
      ostemplate: String(ostemplate),
      ...rest,
    });
  }

  return {
    planCreateGuest(input: NewGuestInput): Promise<PlanDraft<{ spec: CreateSpec }>> {
      if ('sourceVmid' in input) return planNewGuest(input, { clone: input });
      return planNewGuest(input, {
        create: {
          type: input.type,
          ...(input.iso ? { iso: input.iso } : {}),
          ...(input.ostemplate ? { ostemplate: input.ostemplate } : {}),
        },
      });
    },

    planNewGuest,

    /**
     * Claims a VMID and sends the create (or clone). A repeated attempt first looks for the
     * guest an earlier one made (by the operation's marker), so it never creates two.
     */
    async createGuest({ environment, spec }: { environment: string; spec: CreateSpec }): Promise<NewGuest> {
      const client = await deps.pve(environment);
      const info = Context.current().info;
      const marker = creationMarker(operationId());
      return classified('write', async () => {
        if (info.attempt > 1) {
          const earlier = await findCreatedBy(client, spec, marker);
          if (earlier) return earlier;
        }
        const inUse = new Set(
          (await client.cluster.resources({ type: 'vm' })).flatMap((g) => (g.vmid !== undefined ? [g.vmid] : [])),
        );
        const candidates = spec.vmidFixed
          ? [spec.vmid]
          : vmidCandidates({ min: spec.vmid, max: spec.range.max }, (v) => inUse.has(v) || claiming.has(v));
        let tried = 0;
        for (const vmid of candidates) {
          if (++tried > 50) break;
          claiming.add(vmid);
          try {
            await client.cluster.nextId({ vmid });
            const name = nameOf(spec, vmid);
            const upid = await send(client, spec, vmid, name, marker);
            return { vmid, name, node: spec.node, type: spec.type, upid };
          } catch (err) {
            const taken =
              (err instanceof PveValidationError && 'vmid' in err.errors) ||
              (err instanceof PveApiError && /already exists/.test(err.pveMessage));
            if (!taken) {
              if (err instanceof PveUnavailableError && err.requestMayHaveBeenSent) {
                // The next attempt looks for this guest by its marker before creating anything.
                throw ApplicationFailure.create({
                  type: Failure.CreateUnanswered,
                  message: `create of guest ${vmid} was sent but PVE did not answer: ${err.message}`,
                });
              }
              throw err;
            }
            if (spec.vmidFixed)
              fail(Failure.PlanRefused, `vmid: ${vmid} was taken after the plan was made; a VMID is never reused`);
          } finally {
            claiming.delete(vmid);
          }
        }
        throw ApplicationFailure.create({
          type: Failure.NoFreeVmid,
          message: `no free VMID found from ${spec.vmid} in ${spec.range.min}-${spec.range.max} after ${tried} tries`,
          nonRetryable: true,
        });
      });
    },

    /** The guest exists as planned: right name on the planned node, tags present, in the expected state. */
    async verifyNewGuest(
      check: NewGuestCheck & { node: string },
    ): Promise<LocatedGuest & { name: string; tags: string[] }> {
      const client = await deps.pve(check.environment);
      return classified('write', async () => {
        const guest = await verifyIdentity(client, check.vmid, check.name);
        const problems: string[] = [];
        if (guest.node !== check.node) problems.push(`is on ${guest.node}, not ${check.node}`);
        if (check.status && guest.status !== check.status) problems.push(`is ${guest.status}, not ${check.status}`);
        const config = await guestConfig(client, guest);
        const tags = (config.tags ?? '').split(/[;, ]+/).filter(Boolean);
        const missing = check.tags.filter((t) => !tags.includes(t));
        if (missing.length > 0) problems.push(`lacks tags ${missing.join(', ')}`);
        if (problems.length > 0) {
          throw ApplicationFailure.create({
            type: Failure.NotAsPlanned,
            message: `${describeGuest(guest)} '${check.name}' ${problems.join(', ')}`,
            nonRetryable: true,
          });
        }
        return { ...guest, name: check.name, tags };
      });
    },
  };
}

/** The storage of a VM's boot disk: where a clone lands unless told otherwise. */
function bootDiskStorage(config: Record<string, unknown>): string | undefined {
  const key = Object.keys(config)
    .filter((k) => /^(scsi|virtio|sata|ide)\d+$/.test(k) && !/media=cdrom/.test(String(config[k])))
    .sort()[0];
  return key ? /^([^:,]+):/.exec(String(config[key]))?.[1] : undefined;
}

export type ProvisionActivities = ReturnType<typeof createProvisionActivities>;
