/**
 * Desired state: plan a reconcile (read the manifest folder and the cluster, diff them), apply
 * one guest's config change guarded by its digest, and record drift reports.
 */
import { realpath } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { mapBounded } from '../lib/lifecycle/bounded.js';
import { inventoryFromResources } from '../lib/inventory.js';
import { backupBefore, type BackupBeforePolicy } from '../lib/backup/before.js';
import {
  diffFleet,
  guestsToInspect,
  volumesToLocate,
  type FleetDiff,
  type GuestChange,
  type ObservedCluster,
  type ObservedGuest,
} from '../lib/manifest/diff/index.js';
import { driftReport, invalidManifestReport, type DriftReport, type DriftRun } from '../lib/manifest/drift.js';
import { createDriftStore } from '../lib/manifest/drift-store.js';
import { formatProblem, loadFleet, ManifestError, type Fleet } from '../lib/manifest/load.js';
import { reconcilePlan, type ReconcileDetails } from '../lib/manifest/plan.js';
import {
  configString,
  decodeSshKeys,
  formatTagList,
  parsePropertyString,
  parseTagList,
  type PveConfig,
} from '../lib/manifest/pve-config.js';
import { manifestSettings, type ManifestSettings } from '../lib/manifest/settings.js';
import type { PveClient } from '../lib/pve/client.js';
import { PveApiError } from '../lib/pve/errors.js';
import type { PlanDraft } from '../lib/operations/plan.js';
import type { WorkerDeps } from '../worker/deps.js';
import { classified, fail } from './failures.js';
import { awaitingRestart, describeGuest, guestConfig, restartNote, verifyIdentity, type LocatedGuest } from './vm.js';
import { Failure } from '../lib/operations/failures.js';

export interface ReconcilePlanRequest {
  environment: string;
  /** The manifest folder; the configured one (`manifests.path`) when absent. */
  manifests?: string;
  maxParallel: number;
}

export interface GuestConfigChange {
  environment: string;
  vmid: number;
  name: string;
  /** The step's parameters: config keys, `delete`, and the `digest` the plan was made from (absent for new guests). */
  params: Record<string, string | number | boolean>;
  /** The plan-time values of the keys it sets (null: absent), when the digest alone cannot tell. */
  before?: Record<string, string | null>;
}

export type ConfigOutcome = { kind: 'applied' | 'already-done'; detail: string };

/** Reads the cluster the way the diff needs it: resources, the configs of the guests it compares, where named volumes are. */
async function observeCluster(client: PveClient, fleet: Fleet, namingPattern: string): Promise<ObservedCluster> {
  const resources = await client.cluster.resources();
  const inventory = inventoryFromResources(resources);
  const guests: ObservedGuest[] = inventory.guests.map((g) => ({
    vmid: g.vmid,
    name: g.name,
    kind: g.type,
    node: g.node,
    status: g.status,
    template: g.template,
    tags: g.tags,
    memoryBytes: g.memoryBytes,
    cores: g.cores,
    ...(g.lock ? { lock: g.lock } : {}),
    ...(g.haState ? { haState: g.haState } : {}),
  }));
  const storages = resources
    .filter((r) => r.type === 'storage' && r.storage && r.node)
    .map((r) => ({
      storage: r.storage!,
      node: r.node!,
      content: (r.content ?? '').split(',').filter(Boolean),
      shared: Boolean(r.shared),
      freeBytes: Math.max(0, (r.maxdisk ?? 0) - (r.disk ?? 0)),
    }));

  const inspect = new Set(guestsToInspect(fleet, guests, namingPattern));
  await mapBounded(
    guests.filter((g) => inspect.has(g.vmid)),
    8,
    async (g) => {
      g.config = await guestConfig(client, { vmid: g.vmid, type: g.kind, node: g.node, status: g.status });
    },
  ).then(rethrowFirst);

  const online = new Set(inventory.nodes.filter((n) => n.online).map((n) => n.name));
  const listings = new Map<string, Promise<Set<string>>>();
  const listing = (node: string, storage: string, content: string) => {
    const key = `${node}\0${storage}\0${content}`;
    let found = listings.get(key);
    if (!found) {
      found = client.storage
        .content({ node, storage, content })
        .then((volumes) => new Set(volumes.map((v) => v.volid)));
      listings.set(key, found);
    }
    return found;
  };
  const volumes: Record<string, string[]> = {};
  for (const volid of volumesToLocate(fleet)) {
    const [storage, rest = ''] = volid.split(':');
    const content = rest.split('/')[0]!;
    const candidates = storages.filter(
      (s) => s.storage === storage && online.has(s.node) && s.content.includes(content),
    );
    const holders = await Promise.all(
      candidates.map(async (s) => ((await listing(s.node, s.storage, content)).has(volid) ? [s.node] : [])),
    );
    volumes[volid] = holders.flat().sort();
  }
  return { nodes: inventory.nodes, guests, storages, volumes };
}

/**
 * The folder a request names, refused unless it lies inside the configured manifests root
 * (symlinks followed): a request must not make the worker read any folder it can reach.
 */
async function manifestFolder(requested: string | undefined, root: string): Promise<string> {
  if (requested === undefined) return root;
  const real = (path: string) => realpath(path).catch(() => resolve(path));
  const inside = relative(await real(root), await real(requested));
  if (inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside)) {
    fail(Failure.PlanRefused, `manifests: '${requested}' is outside the manifests root '${root}'`);
  }
  return requested;
}

function rethrowFirst(results: { ok: boolean; error?: unknown }[]): void {
  const failed = results.find((r) => !r.ok);
  if (failed) throw failed.error;
}

function manifestInvalid(problems: string[]): never {
  throw ApplicationFailure.create({
    type: Failure.ManifestInvalid,
    message: `the manifest is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    nonRetryable: true,
    details: [problems],
  });
}

const DRIVE_ALLOCATION = /^[a-z][a-z0-9\-_.]*[a-z0-9]:\d+(,|$)/i;
const DRIVE_KEY = /^((scsi|virtio|sata|ide)\d+|efidisk0|tpmstate0|rootfs|mp\d+)$/;

/**
 * Whether the config already holds a parameter's value, as PVE would store it: property strings
 * compare as sets of entries (a bare `virtio` matches any MAC), an allocation (`local-lvm:32`)
 * is done once the slot holds a volume.
 */
function holds(config: PveConfig, key: string, value: string | number | boolean): boolean {
  if (key === 'delete')
    return String(value)
      .split(',')
      .every((k) => config[k] === undefined);
  const current = configString(config, key);
  if (current === undefined) return false;
  const wanted = typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
  if (key === 'tags') return formatTagList(parseTagList(current)) === formatTagList(parseTagList(wanted));
  if (key === 'sshkeys') return decodeSshKeys(current).join('\n') === decodeSshKeys(wanted).join('\n');
  if (key === 'description') return current.trim() === wanted.trim();
  if (DRIVE_KEY.test(key) && DRIVE_ALLOCATION.test(wanted)) return true;
  if (!wanted.includes(',') && !wanted.includes('=')) return current === wanted;
  const have = new Map(parsePropertyString(current));
  const want = parsePropertyString(wanted);
  return want.length === have.size && want.every(([k, v]) => have.has(k) && (v === undefined || have.get(k) === v));
}

/** `overrides` replace configured manifest settings (tests point the drift store at a temporary folder). */
/**
 * `policy.backup_before`: a replacement or a delete it names starts with a backup of the
 * guest, so the approver sees it and the guest is destroyed only after its backup succeeded.
 */
function withBackupBefore(policy: BackupBeforePolicy, change: GuestChange): GuestChange {
  const kind =
    change.action === 'replace' ? 'reconcile-replace' : change.action === 'delete' ? 'reconcile-delete' : undefined;
  if (!kind) return change;
  const guest = { vmid: change.vmid, name: change.name, node: change.node, type: change.kind };
  return { ...change, steps: [...backupBefore(policy, kind, guest, `${change.key}/backup`), ...change.steps] };
}

export function createReconcileActivities(
  deps: Pick<WorkerDeps, 'pve' | 'config'>,
  overrides: Partial<ManifestSettings> = {},
) {
  const settings = { ...manifestSettings(deps.config), ...overrides };
  const drift = createDriftStore(settings.driftDir);

  return {
    /**
     * The reconcile plan: the manifest folder read and validated (every problem listed), the
     * cluster read once, the diff computed. Drift detection runs this too and never applies it.
     */
    async planReconcile(request: ReconcilePlanRequest): Promise<PlanDraft<ReconcileDetails>> {
      const env = deps.config.environments[request.environment];
      if (!env) fail(Failure.PlanRefused, `environment: unknown environment '${request.environment}'`);
      const folder = await manifestFolder(request.manifests, settings.path);
      let fleet: Fleet;
      try {
        fleet = await loadFleet(folder, request.environment);
      } catch (err) {
        if (err instanceof ManifestError) manifestInvalid(err.problems.map(formatProblem));
        throw err;
      }
      const client = await deps.pve(request.environment);
      return classified('write', async () => {
        const cluster = await observeCluster(client, fleet, env.naming.pattern);
        const diff: FleetDiff = diffFleet(fleet, cluster, {
          environment: request.environment,
          naming: env.naming,
          vmids: env.vmid_ranges.vms,
          defaults: env.defaults,
          policy: env.policy,
          now: new Date(),
        });
        if (diff.problems.length > 0) manifestInvalid(diff.problems.map(formatProblem));
        if (fleet.files.length === 0)
          diff.warnings.unshift(`no manifest file in ${folder} names environment ${request.environment}`);
        const changes = diff.changes.map((c) => withBackupBefore(env.policy, c));
        return reconcilePlan({ ...diff, changes }, fleet, { manifests: folder, maxParallel: request.maxParallel });
      });
    },

    /**
     * Sets config keys of one guest, guarded by the digest the plan was made from: if the
     * config changed since, nothing is sent (or PVE refuses with `checksum mismatch`). Safe to
     * retry: a repeated attempt that finds its values in place reports them done.
     */
    async applyGuestConfig(change: GuestConfigChange): Promise<ConfigOutcome> {
      const client = await deps.pve(change.environment);
      const { digest: planned, ...params } = change.params;
      return classified('write', async () => {
        const guest = await verifyIdentity(client, change.vmid, change.name);
        const config = await guestConfig(client, guest);
        const keys = Object.keys(params).join(', ');
        const concurrent = (why: string): never => {
          throw ApplicationFailure.create({
            type: Failure.ConcurrentChange,
            message: `${describeGuest(guest)} '${change.name}' ${why}; nothing was changed: plan again`,
            nonRetryable: true,
          });
        };
        if (planned === undefined || config.digest !== planned) {
          if (Object.entries(params).every(([k, v]) => holds(config, k, v))) {
            const waiting = await awaitingRestart(client, guest, Object.keys(params));
            return {
              kind: 'already-done',
              detail: `${describeGuest(guest)} already has ${keys}${restartNote(guest, waiting)}`,
            };
          }
          // The digest moved: by this operation's safety snapshot, or by an edit elsewhere in
          // the config — harmless — unless a key this step sets is no longer what the plan saw.
          const edited = Object.entries(change.before ?? {}).find(([k, v]) => (configString(config, k) ?? null) !== v);
          if (planned !== undefined && (!change.before || edited)) {
            const what = edited
              ? `${edited[0]} is ${configString(config, edited[0]) ?? '(unset)'}, was ${edited[1] ?? '(unset)'}`
              : `config digest ${String(planned).slice(0, 12)} is now ${String(config.digest).slice(0, 12)}`;
            concurrent(`changed since the plan was made (${what})`);
          }
        }
        try {
          await send(client, guest, { ...params, ...(config.digest ? { digest: config.digest } : {}) });
        } catch (err) {
          if (err instanceof PveApiError && /checksum mismatch/.test(err.pveMessage))
            concurrent('changed while the change was being sent (PVE: checksum mismatch)');
          throw err;
        }
        const waiting = await awaitingRestart(client, guest, Object.keys(params));
        return { kind: 'applied', detail: `set ${keys} of ${describeGuest(guest)}${restartNote(guest, waiting)}` };
      });
    },

    /** Writes this run's drift report, carrying over when each difference was first seen. */
    async recordDrift(args: {
      run: DriftRun;
      plan?: ReconcileDetails & { warnings: string[] };
      problems?: string[];
    }): Promise<DriftReport> {
      const run = { ...args.run, manifests: args.run.manifests || settings.path };
      const previous = await drift.read(run.environment);
      const report = args.plan
        ? driftReport(
            run,
            {
              environment: run.environment,
              manifestDigest: args.plan.manifestDigest,
              changes: args.plan.changes,
              unchanged: args.plan.unchanged,
              warnings: args.plan.warnings,
              problems: [],
            },
            args.plan.text,
            previous,
          )
        : invalidManifestReport(run, args.problems ?? [], previous);
      await drift.write(report);
      return report;
    },
  };
}

/** A PUT of the config; the client checks every parameter against the endpoint's definition first. */
async function send(
  client: PveClient,
  guest: LocatedGuest,
  params: Record<string, string | number | boolean>,
): Promise<void> {
  const ref = { node: guest.node, vmid: guest.vmid };
  if (guest.type === 'qemu')
    await client.call('qemuUpdateConfig', { ...ref, ...params } as Parameters<PveClient['qemu']['updateConfig']>[0]);
  else await client.call('lxcUpdateConfig', { ...ref, ...params } as Parameters<PveClient['lxc']['updateConfig']>[0]);
}

export type ReconcileActivities = ReturnType<typeof createReconcileActivities>;
