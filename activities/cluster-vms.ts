/**
 * The Proxmox side of cluster-up and cluster-down: plans from one snapshot of the cluster,
 * waiting on clones (a clone that lost the race for the template's lock did nothing and is
 * safe to repeat), bringing each VM to the profile, finding its address through the guest
 * agent, and the checks around teardown (vmid, name *and* tag before each destroy; nothing
 * left with the tag afterwards).
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { rm, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { nodeAddress, reportedAddresses } from '../lib/clusters/addresses.js';
import { planClusterDown, type ClusterDownPlan } from '../lib/clusters/down.js';
import { clusterSecretsDir, clusterTag, clusterUpOperationPrefix, memberService } from '../lib/clusters/identity.js';
import {
  defaultClustersDir,
  loadClusterProfile,
  ProfileError,
  ProfileNotFoundError,
  type LoadedProfile,
} from '../lib/clusters/profile.js';
import {
  ClusterPlanRefusal,
  planClusterUp,
  type ClusterUpSnapshot,
  type ClusterUpPlan,
  type SnapshotGuest,
  type SnapshotTemplate,
} from '../lib/clusters/up.js';
import { parseTags } from '../lib/inventory.js';
import { followsPattern } from '../lib/lifecycle/naming.js';
import { formatBytes, formatDuration } from '../lib/planning/units.js';
import type { PveClient } from '../lib/pve/client.js';
import type { ClusterResource } from '../lib/pve/cluster/endpoints.js';
import { PveApiError, PveTaskFailedError } from '../lib/pve/errors.js';
import { waitForTask } from '../lib/pve/tasks/wait.js';
import { configuredTalosctl, createTalosctl, TalosctlError, type TalosctlOptions } from '../lib/talos/talosctl.js';
import type { PlanDraft } from '../lib/operations/plan.js';
import type { WorkerDeps } from '../worker/deps.js';
import { classified, fail } from './failures.js';
import { creationMarker } from './provision.js';
import { guestConfig, verifyIdentity } from './vm.js';
import { Failure } from '../lib/operations/failures.js';

export interface ClusterVmActivityOptions {
  /** Where profiles live; `PM_CLUSTERS_DIR` or the repository's clusters/ when absent. */
  clustersDir?: string;
  talosctl?: TalosctlOptions;
  /** How often PVE tasks and guest agents are polled (benchmarks scale it to the simulated clock). */
  polling?: { pollMs: number; maxPollMs: number };
}

/** PVE's answer when a clone could not take the template's lock in time: nothing was cloned. */
const LOCK_TIMEOUT = /can't lock file '[^']*' - got timeout|got lock (request )?timeout/;

const SIZE_UNITS: Record<string, number> = { K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** `size=10G` inside a drive's property string, in bytes. */
function driveBytes(value: string): number | undefined {
  const m = /(?:^|,)size=(\d+(?:\.\d+)?)([KMGT])?/.exec(value);
  return m ? Math.round(Number(m[1]) * (SIZE_UNITS[m[2] ?? ''] ?? 1)) : undefined;
}

/** A PVE property string (`virtio=BC:..,bridge=vmbr0,tag=30`) as ordered key/value pairs. */
function propertyString(value: string): [string, string][] {
  return value
    .split(',')
    .filter(Boolean)
    .map((part) => {
      const i = part.indexOf('=');
      return i === -1 ? [part, ''] : [part.slice(0, i), part.slice(i + 1)];
    });
}

function formatProperties(pairs: [string, string][]): string {
  return pairs.map(([k, v]) => (v === '' ? k : `${k}=${v}`)).join(',');
}

/** The NIC the profile asks for, keeping the MAC address the clone was given and its other options (firewall, mtu). */
function desiredNet(current: string | undefined, wanted: string): string {
  const [[model], ...wantedOptions] = propertyString(wanted) as [[string, string], ...[string, string][]];
  const [first, ...currentOptions] = propertyString(current ?? '');
  const mac = first && /^([0-9A-F]{2}:){5}[0-9A-F]{2}$/i.test(first[1]) ? first[1] : '';
  const kept = currentOptions.filter(([k]) => k !== 'bridge' && k !== 'tag');
  return formatProperties([[model, mac], ...wantedOptions, ...kept]);
}

function sameValue(key: string, current: unknown, wanted: string | number): boolean {
  if (current === undefined) return false;
  if (key === 'tags')
    return [...parseTags(String(current))].sort().join(';') === [...parseTags(String(wanted))].sort().join(';');
  if (key === 'hotplug')
    return String(current).split(',').sort().join(',') === String(wanted).split(',').sort().join(',');
  // `1` and `enabled=1,fstrim_cloned_disks=1` both mean the agent is on; keep the template's options.
  if (key === 'agent') return /^(enabled=)?1\b/.test(String(current)) === /^(enabled=)?1\b/.test(String(wanted));
  return String(current) === String(wanted);
}

async function readSnapshot(client: PveClient, loaded: LoadedProfile, pattern: string): Promise<ClusterUpSnapshot> {
  const resources = await client.cluster.resources();
  const guests: SnapshotGuest[] = resources
    .filter(
      (r): r is ClusterResource & { vmid: number; node: string } =>
        (r.type === 'qemu' || r.type === 'lxc') && r.vmid !== undefined && !!r.node,
    )
    .map((r) => ({
      vmid: r.vmid,
      name: r.name ?? '',
      type: r.type as 'qemu' | 'lxc',
      node: r.node,
      status: r.status ?? 'unknown',
      template: Boolean(r.template),
      tags: parseTags(r.tags),
      memoryBytes: r.maxmem ?? 0,
      cores: r.maxcpu ?? 0,
    }));
  const nodes = resources
    .filter((r) => r.type === 'node' && r.node)
    .map((r) => ({
      name: r.node!,
      online: r.status === 'online',
      memoryTotal: r.maxmem ?? 0,
      memoryUsed: r.mem ?? 0,
      cpus: r.maxcpu ?? 0,
      vcpusAssigned: guests.filter((g) => g.node === r.node && g.status === 'running').reduce((n, g) => n + g.cores, 0),
    }));
  const storages = resources
    .filter((r) => r.type === 'storage' && r.storage && r.node && r.status !== 'unknown')
    .map((r) => ({
      storage: r.storage!,
      node: r.node!,
      shared: Boolean(r.shared),
      content: (r.content ?? '').split(','),
      free: (r.maxdisk ?? 0) - (r.disk ?? 0),
    }));

  // Only guests that could be members are worth a config read (for their creation marker).
  const { profile } = loaded;
  const services = [
    ...Array.from({ length: profile.control_plane.count }, (_, i) =>
      memberService(profile.name, 'control-plane', i + 1),
    ),
    ...Array.from({ length: profile.workers.count }, (_, i) => memberService(profile.name, 'worker', i + 1)),
  ];
  for (const g of guests) {
    if (g.type === 'qemu' && services.some((s) => followsPattern(pattern, s, g.name))) {
      g.description = String((await client.qemu.config({ node: g.node, vmid: g.vmid })).description ?? '');
    }
  }

  let template: SnapshotTemplate | undefined;
  const tpl = guests.find((g) => g.vmid === profile.template.vmid && g.type === 'qemu');
  if (tpl) {
    const config = await client.qemu.config({ node: tpl.node, vmid: tpl.vmid });
    const diskKey = Object.keys(config)
      .filter((k) => /^(scsi|virtio|sata|ide)\d+$/.test(k) && !/media=cdrom|cloudinit/.test(String(config[k])))
      .sort()[0];
    const diskValue = diskKey ? String(config[diskKey]) : '';
    const diskStorage = /^([^:,]+):/.exec(diskValue)?.[1];
    template = {
      vmid: tpl.vmid,
      name: String(config.name ?? tpl.name),
      node: tpl.node,
      template: Boolean(config.template),
      agent: /^(1|enabled=1)/.test(String(config['agent'] ?? '0')),
      cloudInitDrive: Object.entries(config).some(
        ([k, v]) => /^(ide|scsi|sata)\d+$/.test(k) && /cloudinit/.test(String(v)),
      ),
      description: String(config['description'] ?? ''),
      ...(diskKey && diskStorage
        ? {
            bootDisk: {
              key: diskKey,
              storage: diskStorage,
              bytes: driveBytes(diskValue) ?? 0,
              shared: storages.some((s) => s.storage === diskStorage && s.shared),
            },
          }
        : {}),
    };
  }
  return { nodes, storages, guests, template };
}

export function createClusterVmActivities(
  deps: Pick<WorkerDeps, 'pve' | 'config'>,
  options: ClusterVmActivityOptions = {},
) {
  const clustersDir = () => options.clustersDir ?? defaultClustersDir();
  const talosctl = createTalosctl(options.talosctl ?? configuredTalosctl(deps.config));
  const polling = options.polling ?? { pollMs: 250, maxPollMs: 2_000 };

  return {
    async planClusterUp(request: {
      environment: string;
      profile: string;
      maxParallel: number;
    }): Promise<PlanDraft<ClusterUpPlan>> {
      const env = deps.config.environments[request.environment]!;
      let loaded: LoadedProfile;
      try {
        loaded = await loadClusterProfile(clustersDir(), request.profile);
      } catch (err) {
        if (err instanceof ProfileError || err instanceof ProfileNotFoundError)
          fail(Failure.PlanRefused, `profile: ${err.message}`);
        throw err;
      }
      const warnings: string[] = [];
      let client: string;
      try {
        client = await talosctl.clientVersion();
      } catch (err) {
        if (err instanceof TalosctlError)
          fail(Failure.PlanRefused, `talosctl: ${err.message} (set PM_TALOSCTL to the talosctl binary)`);
        throw err;
      }
      const minor = (v: string) => /^v(\d+\.\d+)/.exec(v)?.[1];
      if (minor(client) !== minor(loaded.profile.talos.version)) {
        warnings.push(
          `talosctl is ${client}, the profile's Talos is ${loaded.profile.talos.version}: use a talosctl of the same minor release`,
        );
      }

      const pve = await deps.pve(request.environment);
      return classified('write', async () => {
        const snapshot = await readSnapshot(pve, loaded, env.naming.pattern);
        let draft;
        try {
          draft = planClusterUp(loaded.profile, env, snapshot, {
            environment: request.environment,
            profilePath: loaded.path,
            profileSha256: loaded.sha256,
            maxParallel: request.maxParallel,
            creationMarkerPrefix: creationMarker(clusterUpOperationPrefix(request.environment, loaded.profile.name)),
          });
        } catch (err) {
          if (err instanceof ClusterPlanRefusal) fail(Failure.PlanRefused, err.message);
          throw err;
        }
        const { plan } = draft;
        const rounds = Math.ceil(plan.totals.toClone / plan.maxParallel);
        // Rough: a full clone round, boot and DHCP, Talos install and bootstrap.
        const estimatedDurationMs = rounds * 90_000 + 120_000 + 300_000;
        return {
          summary: draft.summary,
          risk: 'medium',
          reasons: [
            `allocates ${plan.totals.vcpus} vCPUs, ${formatBytes(plan.totals.memoryBytes)} memory and ${formatBytes(plan.totals.diskBytes)} disk on ${draft.nodes.join(', ')}`,
            `clones ${plan.totals.toClone} VMs from template ${plan.template.vmid} '${plan.template.name}', at most ${plan.maxParallel} at a time`,
            'hands Talos machine configs to the new VMs and bootstraps etcd once',
          ],
          steps: draft.steps,
          warnings: [...warnings, ...draft.warnings],
          nodes: draft.nodes,
          vmids: [...plan.members.map((m) => m.vmid), plan.template.vmid],
          estimatedDurationMs,
          details: plan,
        };
      });
    },

    /**
     * Waits for a clone task. A clone that gave up waiting for the template's lock file left
     * nothing behind (PVE removes the half-made VM), so the workflow may clone again: that
     * failure is reported as CloneLockTimeout, after checking the VMID is free again.
     */
    async awaitClone({ environment, upid, vmid }: { environment: string; upid: string; vmid: number }): Promise<void> {
      const client = await deps.pve(environment);
      const ctx = Context.current();
      return classified('write', async () => {
        try {
          await waitForTask(client, upid, {
            ...polling,
            signal: ctx.cancellationSignal,
            onProgress: (_status, tail) => ctx.heartbeat({ upid, log: tail.at(-1) }),
          });
        } catch (err) {
          if (!(err instanceof PveTaskFailedError) || !LOCK_TIMEOUT.test(err.exitstatus)) throw err;
          const left = (await client.cluster.resources({ type: 'vm' })).find((g) => g.vmid === vmid);
          if (left) {
            throw ApplicationFailure.create({
              type: Failure.CloneLeftBehind,
              message: `the clone to VM ${vmid} timed out on a lock but VM ${vmid} '${left.name ?? ''}' exists on ${left.node ?? '?'}: check it, destroy it if it is half-made, and re-run`,
              nonRetryable: true,
            });
          }
          throw ApplicationFailure.create({
            type: Failure.CloneLockTimeout,
            message: err.exitstatus,
            nonRetryable: true,
          });
        }
      });
    },

    /**
     * Brings a member's VM to the profile: cores, memory, CPU type, hotplug, NIC, tags and
     * addresses in one config update (only what differs), then grows its disk. Idempotent: a
     * repeated attempt finds the work done.
     */
    async configureClusterVm(args: {
      environment: string;
      vmid: number;
      name: string;
      config: Record<string, string | number>;
      disk: { key: string; sizeGb: number };
    }): Promise<{ changed: string[]; grown: boolean }> {
      const client = await deps.pve(args.environment);
      const ctx = Context.current();
      return classified('write', async () => {
        const guest = await verifyIdentity(client, args.vmid, args.name);
        const current = await guestConfig(client, guest);
        if (current.lock) {
          // A clone still copying (from an earlier run) holds `lock: clone`; it clears when the copy ends.
          throw ApplicationFailure.create({
            type: Failure.VmLocked,
            message: `VM ${args.vmid} '${args.name}' is locked (${current.lock}); waiting for it to clear`,
          });
        }
        const changes: Record<string, string | number> = {};
        for (const [key, wanted] of Object.entries(args.config)) {
          const value =
            key === 'net0'
              ? desiredNet(current.net0 === undefined ? undefined : String(current.net0), String(wanted))
              : wanted;
          if (!sameValue(key, current[key], value)) changes[key] = value;
        }
        if (Object.keys(changes).length > 0) {
          await client.qemu.updateConfig({ node: guest.node, vmid: guest.vmid, digest: current.digest, ...changes });
        }

        const disk = current[args.disk.key];
        if (disk === undefined)
          fail(Failure.PlanRefused, `VM ${args.vmid} '${args.name}' has no disk ${args.disk.key}`);
        const wantedBytes = args.disk.sizeGb * 1024 ** 3;
        const grown = (driveBytes(String(disk)) ?? 0) < wantedBytes;
        if (grown) {
          const upid = await client.qemu.resize({
            node: guest.node,
            vmid: guest.vmid,
            disk: args.disk.key,
            size: `${args.disk.sizeGb}G`,
          });
          await waitForTask(client, upid, {
            ...polling,
            signal: ctx.cancellationSignal,
            onProgress: () => ctx.heartbeat({ upid }),
          });
        }
        return { changed: Object.keys(changes), grown };
      });
    },

    /**
     * The member's address as its guest agent reports it, once the agent answers. With a
     * static address the agent must report that one (proof cloud-init reached Talos).
     */
    async awaitGuestAddress(args: {
      environment: string;
      vmid: number;
      name: string;
      node: string;
      expect?: string;
      exclude?: string[];
      timeoutMs: number;
    }): Promise<string> {
      const client = await deps.pve(args.environment);
      const ctx = Context.current();
      return classified('write', async () => {
        const deadline = Date.now() + args.timeoutMs;
        let pauseMs = polling.pollMs;
        let last: string;
        for (;;) {
          try {
            const { result } = await client.qemu.agentNetworkInterfaces({ node: args.node, vmid: args.vmid });
            const address = args.expect
              ? result.some((i) => (i['ip-addresses'] ?? []).some((a) => a['ip-address'] === args.expect))
                ? args.expect
                : undefined
              : nodeAddress(result, args.exclude);
            if (address) return address;
            last = `the guest agent reports ${reportedAddresses(result).join(', ') || 'no IPv4 address'}`;
          } catch (err) {
            // Not running yet, or the agent not up yet: both pass as the VM boots.
            if (!(err instanceof PveApiError)) throw err;
            last = err.pveMessage.trim();
          }
          if (Date.now() >= deadline) {
            throw ApplicationFailure.create({
              type: Failure.AddressTimeout,
              message: `VM ${args.vmid} '${args.name}' has ${args.expect ? `not reported ${args.expect}` : 'no address'} after ${formatDuration(args.timeoutMs)}: ${last}`,
              nonRetryable: true,
            });
          }
          ctx.heartbeat({ waiting: last });
          await sleep(pauseMs, undefined, { signal: ctx.cancellationSignal });
          pauseMs = Math.min(Math.round(pauseMs * 1.5), polling.maxPollMs);
        }
      });
    },

    async planClusterDown(request: {
      environment: string;
      cluster: string;
      shutdownTimeoutSeconds: number;
      maxParallel: number;
    }): Promise<PlanDraft<ClusterDownPlan>> {
      const client = await deps.pve(request.environment);
      const secretsDir = clusterSecretsDir(deps.config.secrets_dir, request.environment, request.cluster);
      const secretsExist = await stat(secretsDir).then(
        () => true,
        () => false,
      );
      return classified('write', async () => {
        const tag = clusterTag(request.cluster);
        const resources = await client.cluster.resources({ type: 'vm' });
        const guests = [];
        for (const r of resources) {
          if ((r.type !== 'qemu' && r.type !== 'lxc') || r.vmid === undefined || !r.node) continue;
          const tags = parseTags(r.tags);
          if (!tags.includes(tag)) continue;
          const config = await guestConfig(client, {
            vmid: r.vmid,
            type: r.type,
            node: r.node,
            status: r.status ?? 'unknown',
          });
          guests.push({
            vmid: r.vmid,
            name: r.name ?? '',
            type: r.type,
            node: r.node,
            status: r.status ?? 'unknown',
            template: Boolean(r.template),
            tags,
            memoryBytes: r.maxmem ?? 0,
            cores: r.maxcpu ?? 0,
            protection: Boolean(config.protection),
          });
        }
        let draft;
        try {
          draft = planClusterDown(request.cluster, guests, { ...request, secretsDir, secretsExist });
        } catch (err) {
          if (err instanceof ClusterPlanRefusal) fail(Failure.PlanRefused, err.message);
          throw err;
        }
        const nothing = draft.steps.length === 0;
        return {
          summary: draft.summary,
          risk: nothing ? 'low' : 'high',
          reasons: [
            nothing
              ? 'changes nothing'
              : 'destroys every VM of the cluster with its disks; the cluster and its data are gone for good',
          ],
          steps: draft.steps,
          warnings: draft.warnings,
          nodes: draft.nodes,
          vmids: draft.plan.members.map((m) => m.vmid),
          estimatedDurationMs:
            (request.shutdownTimeoutSeconds + 30) * 1000 * Math.ceil(draft.plan.members.length / request.maxParallel),
          details: draft.plan,
        };
      });
    },

    /** Right before a destroy: the VM is the one planned (vmid and name) and still carries the cluster's tag. */
    async verifyClusterMember(args: { environment: string; vmid: number; name: string; tag: string }): Promise<void> {
      const client = await deps.pve(args.environment);
      return classified('write', async () => {
        const guest = await verifyIdentity(client, args.vmid, args.name);
        const tags = parseTags((await guestConfig(client, guest)).tags);
        if (!tags.includes(args.tag)) {
          fail(
            Failure.VmIdentityMismatch,
            `VM ${args.vmid} '${args.name}' no longer carries tag ${args.tag}: refusing to destroy it`,
          );
        }
      });
    },

    /** Guests that still carry the tag (none, after a complete teardown). */
    async guestsWithTag(args: {
      environment: string;
      tag: string;
    }): Promise<{ vmid: number; name: string; node: string }[]> {
      const client = await deps.pve(args.environment);
      return classified('write', async () =>
        (await client.cluster.resources({ type: 'vm' }))
          .filter((r) => r.vmid !== undefined && parseTags(r.tags).includes(args.tag))
          .map((r) => ({ vmid: r.vmid!, name: r.name ?? '', node: r.node ?? '' })),
      );
    },

    /** Removes the cluster's machine configs, talosconfig and kubeconfig from the worker. */
    async forgetClusterSecrets(args: { environment: string; cluster: string }): Promise<{ removed: string }> {
      const dir = clusterSecretsDir(deps.config.secrets_dir, args.environment, args.cluster);
      await rm(dir, { recursive: true, force: true });
      return { removed: dir };
    },
  };
}

export type ClusterVmActivities = ReturnType<typeof createClusterVmActivities>;
