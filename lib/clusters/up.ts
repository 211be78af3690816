/**
 * The plan of cluster-up, as a pure function of the profile, the environment's policy and one
 * snapshot of the cluster: which VMs exist already (a half-built cluster is resumed, never
 * duplicated), which are cloned with which VMID and name, where each one runs under the
 * memory headroom, and what the whole cluster takes. A cluster that does not fit is refused,
 * saying what is short and where.
 */
import type { EnvironmentConfig } from '../config/schema.js';
import { followsPattern, guestName, NamingError, vmidCandidates } from '../lifecycle/naming.js';
import {
  memoryHeld,
  placeGuests,
  placementConstraints,
  type PlacementItem,
  type PlacementTarget,
} from '../planning/placement.js';
import { formatBytes, GiB, MiB } from '../planning/units.js';
import type { PlanStep } from '../operations/plan.js';
import { clusterTag, memberService, ROLE_TAG, type MemberRole } from './identity.js';
import type { ClusterProfile } from './profile.js';

export interface SnapshotNode {
  name: string;
  online: boolean;
  memoryTotal: number;
  memoryUsed: number;
  cpus: number;
  /** vCPUs of the guests running there. */
  vcpusAssigned: number;
}

export interface SnapshotStorage {
  storage: string;
  node: string;
  shared: boolean;
  content: string[];
  free: number;
}

export interface SnapshotGuest {
  vmid: number;
  name: string;
  type: 'qemu' | 'lxc';
  node: string;
  status: string;
  template: boolean;
  tags: string[];
  memoryBytes: number;
  cores: number;
  /** Read only for guests that might be members (their name follows a member's pattern). */
  description?: string;
}

export interface SnapshotTemplate {
  vmid: number;
  name: string;
  node: string;
  template: boolean;
  agent: boolean;
  cloudInitDrive: boolean;
  description: string;
  bootDisk?: { key: string; storage: string; bytes: number; shared: boolean };
}

/**
 * What cluster-up reads of the PVE cluster before it plans (not the placement planners'
 * ClusterSnapshot of lib/planning/snapshot.ts).
 */
export interface ClusterUpSnapshot {
  nodes: SnapshotNode[];
  storages: SnapshotStorage[];
  guests: SnapshotGuest[];
  /** The profile's template as PVE has it; absent when no guest has its vmid. */
  template?: SnapshotTemplate;
}

export interface ClusterMember {
  role: MemberRole;
  /** 1-based within its role. */
  index: number;
  service: string;
  vmid: number;
  name: string;
  node: string;
  cores: number;
  memoryMb: number;
  diskGb: number;
  /** The static address, when the profile assigns addresses. */
  address?: string;
  /** The VM exists already (an earlier run made it): it is kept and brought to the profile. */
  existing?: { status: string };
  /** The config the configure step brings the VM to (see memberConfig). */
  config: Record<string, string | number>;
}

/** What the configure step sets on every VM (besides its own cores, memory and disk). */
export interface VmSettings {
  cpu: string;
  hotplug: string;
  tags: string[];
  bridge: string;
  vlan?: number;
  /** Static addressing through the template's cloud-init drive. */
  static?: { prefix: number; gateway: string; nameservers: string[] };
}

export interface ClusterUpPlan {
  cluster: string;
  environment: string;
  profile: { path: string; sha256: string };
  tag: string;
  template: { vmid: number; name: string; node: string; diskKey: string };
  /** Storage the clones' disks go to; the template's when absent. */
  storage?: string;
  members: ClusterMember[];
  vm: VmSettings;
  addressing: 'dhcp' | 'static';
  /** Kubernetes API endpoint host; the first control plane's address when absent. */
  endpoint?: string;
  talos: { version: string; kubernetesVersion?: string; installImage?: string; patchCount: number };
  flux?: { repository: string; path: string; branch: string };
  maxParallel: number;
  totals: { vms: number; toClone: number; vcpus: number; memoryBytes: number; diskBytes: number };
}

export interface ClusterUpDraft {
  summary: string;
  plan: ClusterUpPlan;
  steps: PlanStep[];
  warnings: string[];
  nodes: string[];
}

/** The plan cannot be made; every problem is listed. */
export class ClusterPlanRefusal extends Error {
  constructor(readonly problems: string[]) {
    super(
      problems.length === 1
        ? problems[0]
        : `the cluster cannot be planned:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.name = 'ClusterPlanRefusal';
  }
}

export interface PlanOptions {
  environment: string;
  profilePath: string;
  profileSha256: string;
  maxParallel: number;
  /** Description prefix of VMs that cluster-up runs for this cluster cloned. */
  creationMarkerPrefix: string;
}

interface Slot {
  role: MemberRole;
  index: number;
  service: string;
  cores: number;
  memoryMb: number;
  diskGb: number;
  address?: string;
}

function slotsOf(profile: ClusterProfile): Slot[] {
  const slots: Slot[] = [];
  const addresses = profile.network.static;
  for (const [role, size, ips] of [
    ['control-plane', profile.control_plane, addresses?.control_plane],
    ['worker', profile.workers, addresses?.workers],
  ] as const) {
    for (let index = 1; index <= size.count; index++) {
      const address = ips?.[index - 1];
      slots.push({
        role,
        index,
        service: memberService(profile.name, role, index),
        cores: size.cores,
        memoryMb: size.memory_mb,
        diskGb: size.disk_gb,
        ...(address ? { address } : {}),
      });
    }
  }
  return slots;
}

export function planClusterUp(
  profile: ClusterProfile,
  env: EnvironmentConfig,
  snapshot: ClusterUpSnapshot,
  opts: PlanOptions,
): ClusterUpDraft {
  const problems: string[] = [];
  const warnings: string[] = [];
  const tag = clusterTag(profile.name);
  const pattern = env.naming.pattern;

  if (profile.environment !== opts.environment) {
    throw new ClusterPlanRefusal([
      `environment: profile '${profile.name}' is for environment '${profile.environment}', not '${opts.environment}'`,
    ]);
  }

  const template = checkTemplate(profile, snapshot.template, problems, warnings);
  const slots = slotsOf(profile);

  // Members that exist already: named for their slot and marked as this cluster's.
  const existing = new Map<string, SnapshotGuest>();
  for (const slot of slots) {
    const named = snapshot.guests.filter((g) => !g.template && followsPattern(pattern, slot.service, g.name));
    const ours = named.filter((g) => g.tags.includes(tag) || (g.description ?? '').includes(opts.creationMarkerPrefix));
    for (const g of named.filter((n) => !ours.includes(n))) {
      problems.push(
        `${kind(g)} ${g.vmid} '${g.name}' has the name of cluster member ${slot.service} but neither tag ${tag} nor a cluster-up marker: rename it or tag it ${tag}`,
      );
    }
    if (ours.length > 1) {
      problems.push(
        `${ours.map((g) => `${kind(g)} ${g.vmid} '${g.name}'`).join(' and ')} both claim to be cluster member ${slot.service}: remove all but one`,
      );
    } else if (ours[0]) {
      if (ours[0].type !== 'qemu')
        problems.push(
          `CT ${ours[0].vmid} '${ours[0].name}' claims to be cluster member ${slot.service}, but members are VMs`,
        );
      existing.set(slot.service, ours[0]);
    }
  }
  const claimed = new Set([...existing.values()].map((g) => g.vmid));
  for (const g of snapshot.guests.filter((g) => g.tags.includes(tag) && !claimed.has(g.vmid))) {
    warnings.push(
      `${kind(g)} ${g.vmid} '${g.name}' carries tag ${tag} but is no member of the profile: left alone (cluster-down would remove it)`,
    );
  }

  // VMIDs and names for the members still to clone.
  const taken = new Set(snapshot.guests.map((g) => g.vmid));
  const free = vmidCandidates(env.vmid_ranges.vms, (v) => taken.has(v));
  const members: Omit<ClusterMember, 'node' | 'config'>[] = [];
  for (const slot of slots) {
    const found = existing.get(slot.service);
    const base = {
      role: slot.role,
      index: slot.index,
      service: slot.service,
      cores: slot.cores,
      memoryMb: slot.memoryMb,
      diskGb: slot.diskGb,
      ...(slot.address ? { address: slot.address } : {}),
    };
    if (found) {
      members.push({ ...base, vmid: found.vmid, name: found.name, existing: { status: found.status } });
      continue;
    }
    const vmid = free.next().value;
    if (vmid === undefined) {
      problems.push(
        `vmid_ranges.vms: no free VMID left in ${env.vmid_ranges.vms.min}-${env.vmid_ranges.vms.max} for ${slot.service}`,
      );
      continue;
    }
    let name: string;
    try {
      name = guestName(pattern, { service: slot.service, vmid });
    } catch (err) {
      if (!(err instanceof NamingError)) throw err;
      throw new ClusterPlanRefusal([err.message]);
    }
    const clash = snapshot.guests.find((g) => g.name.toLowerCase() === name.toLowerCase());
    if (clash)
      problems.push(`name: '${name}' (for ${slot.service}) is already the name of ${kind(clash)} ${clash.vmid}`);
    members.push({ ...base, vmid, name });
  }

  const templateDisk = template?.bootDisk?.bytes ?? 0;
  for (const [field, size] of [
    ['control_plane', profile.control_plane],
    ['workers', profile.workers],
  ] as const) {
    if (size.count > 0 && size.disk_gb * GiB < templateDisk) {
      problems.push(
        `${field}.disk_gb: ${size.disk_gb} GiB is smaller than the template's ${formatBytes(templateDisk)} disk (disks only grow)`,
      );
    }
  }
  if (problems.length > 0) throw new ClusterPlanRefusal(problems);
  const tpl = template!;

  const storage = profile.storage ?? tpl.bootDisk?.storage;
  const placed = place(profile, env, snapshot, members, tpl, storage, problems);
  if (problems.length > 0) throw new ClusterPlanRefusal(problems);
  const vm: VmSettings = {
    cpu: profile.vm.cpu,
    hotplug: profile.vm.hotplug.join(','),
    tags: [...new Set([...(env.tags['talos'] ?? []), ...profile.tags, tag])],
    bridge: profile.network.bridge ?? env.defaults.network_bridge,
    ...(profile.network.vlan !== undefined ? { vlan: profile.network.vlan } : {}),
    ...(profile.network.static
      ? {
          static: {
            prefix: profile.network.static.prefix,
            gateway: profile.network.static.gateway,
            nameservers: profile.network.static.nameservers,
          },
        }
      : {}),
  };
  const located: ClusterMember[] = members.map((m) => ({
    ...m,
    node: placed.nodes[m.name]!,
    config: memberConfig(vm, m),
  }));
  const toClone = located.filter((m) => !m.existing);
  const totals = {
    vms: located.length,
    toClone: toClone.length,
    vcpus: located.reduce((n, m) => n + m.cores, 0),
    memoryBytes: located.reduce((n, m) => n + m.memoryMb * MiB, 0),
    diskBytes: located.reduce((n, m) => n + m.diskGb * GiB, 0),
  };
  const patches = profile.talos.patches;
  const plan: ClusterUpPlan = {
    cluster: profile.name,
    environment: opts.environment,
    profile: { path: opts.profilePath, sha256: opts.profileSha256 },
    tag,
    template: { vmid: tpl.vmid, name: tpl.name, node: tpl.node, diskKey: tpl.bootDisk?.key ?? 'scsi0' },
    ...(profile.storage ? { storage: profile.storage } : {}),
    members: located,
    vm,
    addressing: profile.network.addressing,
    ...(profile.network.endpoint ? { endpoint: profile.network.endpoint } : {}),
    talos: {
      version: profile.talos.version,
      ...(profile.talos.kubernetes_version ? { kubernetesVersion: profile.talos.kubernetes_version } : {}),
      ...(profile.talos.install_image ? { installImage: profile.talos.install_image } : {}),
      patchCount: patches.all.length + patches.control_plane.length + patches.worker.length,
    },
    ...(profile.flux ? { flux: profile.flux } : {}),
    maxParallel: opts.maxParallel,
    totals,
  };
  if (located.some((m) => m.existing)) {
    warnings.push(
      `${located.length - toClone.length} of ${located.length} VMs exist from an earlier run and are resumed, not cloned again`,
    );
  }
  if (profile.flux) {
    warnings.push(
      `flux: Flux bootstrap is not configured on this worker (no Flux adapter); ${profile.flux.repository} will not be bootstrapped`,
    );
  }
  if (!profile.network.endpoint && profile.control_plane.count > 1) {
    warnings.push(
      'no network.endpoint: the Kubernetes API endpoint is the first control plane alone; set a VIP or DNS name to survive its loss',
    );
  }

  const nodes = [...new Set(located.map((m) => m.node))].sort();
  return {
    summary:
      `cluster ${profile.name}: ${profile.control_plane.count} control plane${profile.control_plane.count === 1 ? '' : 's'} + ` +
      `${profile.workers.count} worker${profile.workers.count === 1 ? '' : 's'} on ${nodes.join(', ')} ` +
      `(${totals.vcpus} vCPUs, ${formatBytes(totals.memoryBytes)} memory, ${formatBytes(totals.diskBytes)} disk; ${toClone.length} to clone)`,
    plan,
    steps: planSteps(plan, placed.why),
    warnings,
    nodes: [...new Set([...nodes, tpl.node])].sort(),
  };
}

function kind(g: Pick<SnapshotGuest, 'type'>): string {
  return g.type === 'qemu' ? 'VM' : 'CT';
}

function checkTemplate(
  profile: ClusterProfile,
  template: SnapshotTemplate | undefined,
  problems: string[],
  warnings: string[],
): SnapshotTemplate | undefined {
  const { vmid, name } = profile.template;
  if (!template) {
    problems.push(`template: no VM ${vmid} in this environment`);
    return undefined;
  }
  if (template.name !== name) {
    problems.push(`template: VM ${vmid} is named '${template.name}', not '${name}'`);
    return undefined;
  }
  if (!template.template)
    problems.push(
      `template: VM ${vmid} '${name}' is not a template (convert it, or build one with the talos-nocloud runbook)`,
    );
  if (profile.network.addressing === 'dhcp' && !template.agent) {
    problems.push(
      `template: VM ${vmid} '${name}' has no QEMU guest agent enabled, and DHCP addresses are found through it ` +
        '(use the nocloud image with the qemu-guest-agent extension, and agent: 1)',
    );
  }
  if (profile.network.addressing === 'static' && !template.cloudInitDrive) {
    problems.push(
      `template: VM ${vmid} '${name}' has no cloud-init drive, and static addresses reach Talos through it ` +
        `(qm set ${vmid} --ide2 <storage>:cloudinit)`,
    );
  }
  if (/metal/i.test(`${template.name} ${template.description}`)) {
    warnings.push(
      `template: VM ${vmid} '${name}' looks like a Talos metal image; on Proxmox use the nocloud image (the metal image has no guest agent)`,
    );
  }
  if (!template.bootDisk) problems.push(`template: VM ${vmid} '${name}' has no disk to clone`);
  return template;
}

/** Where each member runs: existing ones where they are, new ones by the policy's headroom and the profile's placement. */
function place(
  profile: ClusterProfile,
  env: EnvironmentConfig,
  snapshot: ClusterUpSnapshot,
  members: Omit<ClusterMember, 'node' | 'config'>[],
  template: SnapshotTemplate,
  storage: string | undefined,
  problems: string[],
): { nodes: Record<string, string>; why: Record<string, string> } {
  const constraints = placementConstraints(env.policy);
  const online = snapshot.nodes
    .filter((n) => n.online)
    .map((n) => ({
      ...n,
      memoryCommitted: snapshot.guests
        .filter((g) => g.node === n.name && g.status === 'running')
        .reduce((sum, g) => sum + g.memoryBytes, 0),
    }));
  const cpGroup = `${profile.name}-control-planes`;
  if (profile.placement === 'spread' && profile.control_plane.count > online.length) {
    problems.push(
      `placement: ${profile.control_plane.count} control planes cannot be spread over ${online.length} online node${online.length === 1 ? '' : 's'} ` +
        `(${online.map((n) => n.name).join(', ') || 'none'}); use placement: pack or fewer control planes`,
    );
    return { nodes: {}, why: {} };
  }

  if (storage && !snapshot.storages.some((s) => s.storage === storage)) {
    problems.push(`storage: no storage '${storage}' in this environment`);
    return { nodes: {}, why: {} };
  }
  const sharedStorage = storage !== undefined && snapshot.storages.some((s) => s.storage === storage && s.shared);
  const toClone = members.filter((m) => !m.existing);
  const cloneBytes = (m: Omit<ClusterMember, 'node' | 'config'>) =>
    Math.max(m.diskGb * GiB, template.bootDisk?.bytes ?? 0);
  if (sharedStorage) {
    // A shared storage is one pool whichever node writes to it: check the total once.
    const need = toClone.reduce((n, m) => n + cloneBytes(m), 0);
    const have = Math.max(0, ...snapshot.storages.filter((s) => s.storage === storage).map((s) => s.free));
    if (need > have)
      problems.push(`storage ${storage}: ${formatBytes(have)} free, the clones need ${formatBytes(need)}`);
  }
  // A template with local disks can be cloned only on its own node.
  const onlyOnTemplateNode = template.bootDisk !== undefined && !template.bootDisk.shared;

  const room = (n: (typeof online)[number]) =>
    n.memoryTotal * (1 - constraints.memoryHeadroom) - memoryHeld(n, constraints.memoryBasis);
  const byMemoryRoom = [...online].sort((a, b) => room(b) - room(a) || a.name.localeCompare(b.name));
  // Members that exist stay where they are; they weigh on their node (a stopped one will start)
  // and hold their place in the control planes' anti-affinity group.
  const kept = new Map<string, string>();
  const load = new Map(
    online.map((n) => [
      n.name,
      { used: n.memoryUsed, committed: n.memoryCommitted, vcpus: n.vcpusAssigned, controlPlanes: [] as string[] },
    ]),
  );
  for (const m of members.filter((x) => x.existing)) {
    const node = snapshot.guests.find((g) => g.vmid === m.vmid)!.node;
    const l = load.get(node);
    if (!l) {
      problems.push(`VM ${m.vmid} '${m.name}' (${m.service}) is on ${node}, which is offline`);
      continue;
    }
    kept.set(m.name, node);
    if (m.existing!.status !== 'running') {
      l.used += m.memoryMb * MiB;
      l.committed += m.memoryMb * MiB;
      l.vcpus += m.cores;
    }
    if (m.role === 'control-plane') l.controlPlanes.push(m.name);
  }
  const items: PlacementItem[] = members
    .filter((m) => !m.existing)
    .map((m) => ({
      id: m.name,
      memory: m.memoryMb * MiB,
      vcpus: m.cores,
      storage: storage ? { [storage]: sharedStorage ? 0 : cloneBytes(m) } : {},
      ...(onlyOnTemplateNode ? { onlyOn: [template.node] } : {}),
      ...(profile.placement === 'pack' ? { prefers: byMemoryRoom.map((n) => n.name) } : {}),
      ...(profile.placement === 'spread' && m.role === 'control-plane' ? { apart: [cpGroup] } : {}),
    }));
  const targets: PlacementTarget[] = online.map((n) => {
    const l = load.get(n.name)!;
    return {
      node: n.name,
      memoryTotal: n.memoryTotal,
      memoryUsed: l.used,
      memoryCommitted: l.committed,
      cpus: n.cpus,
      vcpusAssigned: l.vcpus,
      storageFree: Object.fromEntries(
        snapshot.storages
          .filter((s) => s.node === n.name && s.content.includes('images'))
          .map((s) => [s.storage, s.free]),
      ),
      groups: profile.placement === 'spread' && l.controlPlanes.length > 0 ? { [cpGroup]: l.controlPlanes } : {},
    };
  });
  const result = placeGuests(items, targets, constraints);
  if (result.unplaced.length > 0) {
    for (const u of result.unplaced) {
      const m = members.find((x) => x.name === u.id)!;
      problems.push(
        `${m.service} (${m.cores} vCPUs, ${formatBytes(m.memoryMb * MiB)}) fits on no node: ${u.reasons.join('; ')}`,
      );
    }
    const needed = items.reduce((n, i) => n + i.memory, 0);
    const room = result.targets.reduce((n, t) => n + Math.max(0, t.memoryLimit - t.memoryBefore), 0);
    if (needed > room) {
      problems.push(
        `memory: the cluster needs ${formatBytes(needed)}, the online nodes can take ${formatBytes(room)} while keeping ` +
          `${Math.round(constraints.memoryHeadroom * 100)}% free (${result.targets.map((t) => `${t.node} ${formatBytes(Math.max(0, t.memoryLimit - t.memoryBefore))}`).join(', ')}): ` +
          `short by ${formatBytes(needed - room)}`,
      );
    }
  }
  const why: Record<string, string> = { ...result.why };
  for (const name of kept.keys()) why[name] = 'exists there';
  return { nodes: { ...result.placements, ...Object.fromEntries(kept) }, why };
}

/**
 * The config a member's VM is brought to (PVE config keys). `net0` names model and bridge
 * only: the configure step keeps the MAC address the clone was given.
 */
export function memberConfig(
  vm: VmSettings,
  m: Pick<ClusterMember, 'role' | 'cores' | 'memoryMb' | 'address'>,
): Record<string, string | number> {
  return {
    cores: m.cores,
    sockets: 1,
    memory: String(m.memoryMb),
    cpu: vm.cpu,
    hotplug: vm.hotplug,
    agent: '1',
    tags: [...vm.tags, ROLE_TAG[m.role]].join(';'),
    net0: `virtio,bridge=${vm.bridge}${vm.vlan !== undefined ? `,tag=${vm.vlan}` : ''}`,
    ...(m.address && vm.static
      ? {
          ipconfig0: `ip=${m.address}/${vm.static.prefix},gw=${vm.static.gateway}`,
          nameserver: vm.static.nameservers.join(' '),
        }
      : {}),
  };
}

function planSteps(plan: ClusterUpPlan, why: Record<string, string>): PlanStep[] {
  const steps: PlanStep[] = [];
  for (const m of plan.members) {
    if (m.existing) {
      steps.push({
        id: `clone:${m.name}`,
        action: 'keep',
        vmid: m.vmid,
        name: m.name,
        node: m.node,
        description: `VM ${m.vmid} '${m.name}' (${m.service}) exists on ${m.node} (${m.existing.status}) from an earlier run: kept`,
      });
    } else {
      steps.push({
        id: `clone:${m.name}`,
        action: 'clone',
        vmid: m.vmid,
        name: m.name,
        node: plan.template.node,
        target: m.node,
        params: { source: plan.template.vmid, full: true, ...(plan.storage ? { storage: plan.storage } : {}) },
        description: `full clone of template ${plan.template.vmid} '${plan.template.name}' as VM ${m.vmid} '${m.name}' (${m.service}) on ${m.node}: ${why[m.name] ?? ''}`,
      });
    }
    steps.push({
      id: `configure:${m.name}`,
      action: 'config',
      vmid: m.vmid,
      name: m.name,
      node: m.node,
      params: { ...m.config, [plan.template.diskKey]: `grow to ${m.diskGb}G` },
      description:
        `set ${m.cores} cores, ${m.memoryMb} MiB, CPU ${plan.vm.cpu}, hotplug ${plan.vm.hotplug}, ` +
        `bridge ${plan.vm.bridge}${plan.vm.vlan !== undefined ? ` VLAN ${plan.vm.vlan}` : ''}, tags; grow ${plan.template.diskKey} to ${m.diskGb} GiB (never shrinks)`,
    });
    steps.push({
      id: `boot:${m.name}`,
      action: 'start',
      vmid: m.vmid,
      name: m.name,
      node: m.node,
      description: m.address
        ? `start; wait until the guest agent reports ${m.address}`
        : 'start; wait for its DHCP address from the guest agent',
    });
  }
  steps.push({
    id: 'machine-configs',
    action: 'talos-gen-config',
    description:
      `talosctl gen config ${plan.cluster} https://${plan.endpoint ?? '<first control plane>'}:6443 for Talos ${plan.talos.version}` +
      ` with ${plan.talos.patchCount} patch${plan.talos.patchCount === 1 ? '' : 'es'}; kept on the worker (mode 0600), reused on a re-run`,
  });
  for (const m of plan.members) {
    steps.push({
      id: `apply-config:${m.name}`,
      action: 'talos-apply-config',
      vmid: m.vmid,
      name: m.name,
      node: m.node,
      description: `talosctl apply-config --insecure (${m.role === 'control-plane' ? 'controlplane' : 'worker'}.yaml), unless the node already runs it`,
    });
  }
  const first = plan.members.find((m) => m.role === 'control-plane')!;
  steps.push(
    {
      id: 'bootstrap',
      action: 'talos-bootstrap',
      vmid: first.vmid,
      name: first.name,
      node: first.node,
      description: `bootstrap etcd on ${first.name} — exactly once: skipped when etcd already runs on any control plane`,
    },
    {
      id: 'health',
      action: 'talos-health',
      description: 'talosctl health: etcd, Kubernetes control plane and every node ready',
    },
    {
      id: 'kubeconfig',
      action: 'talos-kubeconfig',
      description: 'write kubeconfig and talosconfig on the worker (mode 0600); the result carries only their path',
    },
    {
      id: 'flux',
      action: 'flux-bootstrap',
      description: plan.flux
        ? `Flux bootstrap of ${plan.flux.repository}: not configured (this worker has no Flux adapter), skipped`
        : 'no flux section in the profile: skipped',
    },
  );
  return steps;
}
