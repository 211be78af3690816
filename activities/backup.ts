/**
 * Backups, restores and retention: the plans (which guests and archives, what is lost, what
 * the prune rules keep), then each vzdump or restore sent to PVE once and followed to its end,
 * and each pruned archive removed.
 *
 * "Once" as migrations do it: before sending, the node's task list since the operation's
 * marker is searched for the guest's task (an earlier attempt whose answer was lost, a worker
 * that died); if there is one it is followed instead. After sending, the UPID is heartbeated,
 * so a retry attaches to it directly.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { inventoryFromResources, type GuestView } from '../lib/inventory.js';
import { matchesTags, parseTagExpression, TagExpressionError } from '../lib/lifecycle/tag-expression.js';
import { backupBefore } from '../lib/backup/before.js';
import { createDrillStore, type DrillRecord } from '../lib/backup/drills.js';
import { listBackupVolumes, parseBackupVolid, type BackupVolume } from '../lib/backup/volumes.js';
import { vmidCandidates } from '../lib/lifecycle/naming.js';
import { markBackupGroup, type PruneOptions } from '../lib/backup/prune.js';
import type { BackupInput, BackupPruneInput, RestoreDrillInput, RestoreInput } from '../lib/operations/catalog.js';
import type { PveClient } from '../lib/pve/client.js';
import { isTransient, PveTaskFailedError } from '../lib/pve/errors.js';
import { formatBytes } from '../lib/planning/units.js';
import { waitForTask } from '../lib/pve/tasks/wait.js';
import { parseUpid } from '../lib/pve/upid.js';
import type { PlanDraft, PlanStep } from '../lib/operations/plan.js';
import type { WorkerDeps } from '../worker/deps.js';
import type { TaskMarker } from './evacuation.js';
import { classified, fail } from './failures.js';
import { Failure } from '../lib/operations/failures.js';

export interface BackupTarget {
  vmid: number;
  name: string;
  type: 'qemu' | 'lxc';
  node: string;
}

export interface BackupPlanDetails {
  storage: string;
  targets: BackupTarget[];
  maxParallelPerStorage: number;
  maxParallelPerNode: number;
}

/** One guest's backup as planned: what the step sends to PVE. */
export interface BackupGuestInput {
  environment: string;
  step: PlanStep;
  /** The node's task history before the operation began (a vzdump after it is ours). */
  marker: TaskMarker;
}

export interface BackupReport {
  vmid: number;
  upid: string;
  /** The archive written, e.g. `nfs:backup/vzdump-qemu-101-2026_12_06-07_00_00.vma.zst`. */
  volid: string;
  size: number;
  /** Found running or done from an earlier attempt rather than sent by this one. */
  attached: boolean;
}

export interface RestorePlanDetails {
  backup: BackupVolume;
  /** The guest config the archive holds (extractconfig). */
  config: Record<string, string>;
  /** The VMID restored to, and the node. */
  vmid: number;
  node: string;
}

export interface RestoreStepInput {
  environment: string;
  step: PlanStep;
  marker: TaskMarker;
}

export interface PrunePlanDetails {
  storage: string;
  keep: PruneOptions;
  kept: BackupVolume[];
  /** Protected backups the rules would have removed: PVE never removes them. */
  protectedKept: BackupVolume[];
}

export interface DrillTarget {
  /** The guest whose backup is drilled. */
  vmid: number;
  name: string;
  type: 'qemu' | 'lxc';
  backup: BackupVolume;
}

/** How a drill's temporary guest is proven to run: a VM's guest agent answers; a container (no agent) runs with an address. */
const DRILL_CHECK = {
  qemu: { copy: 'VM', check: 'check its guest agent answers', nameKey: 'name' },
  lxc: { copy: 'CT', check: 'check it runs with an address', nameKey: 'hostname' },
} as const;

function label(g: Pick<BackupTarget, 'type' | 'vmid'>): string {
  return `${g.type === 'qemu' ? 'VM' : 'CT'} ${g.vmid}`;
}

function selectGuests(input: Pick<BackupInput, 'vmid' | 'tags' | 'node'>, guests: GuestView[]): GuestView[] {
  const candidates = guests.filter((g) => !g.template);
  if (input.vmid !== undefined) {
    const guest = candidates.find((g) => g.vmid === input.vmid);
    if (!guest) fail(Failure.PlanRefused, `vmid: guest ${input.vmid} does not exist in this cluster`);
    return [guest];
  }
  if (input.node !== undefined) {
    const onNode = candidates.filter((g) => g.node === input.node);
    if (onNode.length === 0) fail(Failure.PlanRefused, `node: no guest runs on '${input.node}'`);
    return onNode;
  }
  let expression;
  try {
    expression = parseTagExpression(input.tags!);
  } catch (err) {
    if (err instanceof TagExpressionError) fail(Failure.PlanRefused, `tags: ${err.message}`);
    throw err;
  }
  const matching = candidates.filter((g) => matchesTags(expression, g.tags));
  if (matching.length === 0) fail(Failure.PlanRefused, `tags: no guest matches '${input.tags}'`);
  return matching;
}

/** The storage must take backups on every node whose guests go to it. */
async function checkBackupStorage(client: PveClient, storage: string, nodes: string[]): Promise<void> {
  for (const node of nodes) {
    const listed = await client.storage.list({ node, storage });
    const found = listed.find((s) => s.storage === storage);
    if (!found) fail(Failure.PlanRefused, `storage: '${storage}' is not available on ${node}`);
    if (!found.content.split(',').includes('backup')) {
      fail(
        Failure.PlanRefused,
        `storage: '${storage}' does not hold backups (its content is ${found.content}); PVE would refuse it`,
      );
    }
  }
}

/** The vzdump parameters a step sends, as the approver sees them. */
function vzdumpParams(input: BackupInput): Record<string, string | number | boolean> {
  return {
    storage: input.storage,
    mode: input.mode,
    compress: input.compress === 'none' ? '0' : input.compress,
    'notes-template': input.notesTemplate,
    protected: input.protected,
    ...(input.bwlimitMiBps ? { bwlimit: input.bwlimitMiBps * 1024 } : {}),
  };
}

const MODE_RISK = {
  snapshot: { risk: 'low', why: 'snapshot mode: guests keep running; a backup only adds an archive' },
  suspend: { risk: 'medium', why: 'suspend mode: each guest is paused while its data is copied' },
  stop: { risk: 'medium', why: 'stop mode: each running guest is shut down for its backup and started again' },
} as const;

/** The main section of a config file's text (snapshot sections and comments left out). */
export function parseConfigText(text: string): Record<string, string> {
  const config: Record<string, string> = {};
  for (const line of text.split('\n')) {
    if (line.startsWith('[')) break;
    const m = /^([a-z][\w-]*):\s?(.*)$/.exec(line);
    if (m) config[m[1]!] = m[2]!;
  }
  return config;
}

function describeAge(ctime: number, now: number): string {
  const hours = Math.max(0, Math.round((now - ctime) / 3600));
  return hours < 48 ? `${hours} h` : `${Math.round(hours / 24)} days`;
}

/** A guest task to start once: where, which task types count as it, and how its failure is named. */
interface TaskTarget {
  node: string;
  vmid: number;
  types: string[];
  what: string;
  failure: typeof Failure.BackupFailed | typeof Failure.RestoreFailed;
}

/**
 * No answer, or a bare server error: the next attempt's look at the task list tells whether
 * PVE started the task, so the attempt fails retryably. A refusal with a reason would only be
 * refused again.
 */
async function sendUnlessRefused(target: TaskTarget, send: () => Promise<string>): Promise<string> {
  try {
    return await send();
  } catch (err) {
    const message = `${target.what}: ${err instanceof Error ? err.message : String(err)}`;
    if (isTransient(err)) throw ApplicationFailure.create({ type: Failure.TaskUnanswered, message });
    fail(
      target.failure === Failure.BackupFailed ? Failure.BackupRefused : Failure.RestoreRefused,
      `PVE refused the ${message}`,
    );
  }
}

export function createBackupActivities(deps: Pick<WorkerDeps, 'pve' | 'config'>) {
  /** The newest task of one of `types` for the guest on the node since the marker: an earlier attempt's. */
  async function earlierTask(client: PveClient, target: TaskTarget, marker: TaskMarker): Promise<string | undefined> {
    const tasks = await client.tasks.list({ node: target.node, vmid: target.vmid, source: 'all', since: marker.since });
    return tasks
      .filter(
        (t) =>
          target.types.includes(t.type) &&
          t.id === String(target.vmid) &&
          t.starttime >= marker.since &&
          !marker.upids.includes(t.upid),
      )
      .sort((a, b) => b.starttime - a.starttime)[0]?.upid;
  }

  /**
   * Sends a request that starts a task — unless an earlier attempt's task exists, which is
   * followed instead — and waits for the task to end. A failed task fails for good, with its log.
   */
  async function runTaskOnce(
    client: PveClient,
    target: TaskTarget,
    marker: TaskMarker,
    send: () => Promise<string>,
  ): Promise<{ upid: string; attached: boolean }> {
    const ctx = Context.current();
    let upid =
      (ctx.info.heartbeatDetails as { upid?: string } | undefined)?.upid ?? (await earlierTask(client, target, marker));
    const attached = upid !== undefined;
    upid ??= await sendUnlessRefused(target, send);
    ctx.heartbeat({ upid });
    try {
      await waitForTask(client, upid, {
        tailLines: 30,
        signal: ctx.cancellationSignal,
        onProgress: (_status, tail) => ctx.heartbeat({ upid, log: tail.at(-1) }),
      });
    } catch (err) {
      if (err instanceof PveTaskFailedError) {
        fail(target.failure, `${target.what} failed: ${err.exitstatus}\n${err.logTail.join('\n')}`, {
          upid,
          logTail: err.logTail,
        });
      }
      throw err;
    }
    return { upid, attached };
  }

  /** The archive the task wrote: the guest's newest backup on the storage since the task began. */
  async function archiveOf(client: PveClient, step: PlanStep, startedAt: number) {
    const volumes = await client.storage.content({
      node: step.node!,
      storage: String(step.params!['storage']),
      content: 'backup',
      vmid: step.vmid!,
    });
    const newest = volumes
      .filter((v) => (v.ctime ?? 0) >= startedAt)
      .sort((a, b) => (b.ctime ?? 0) - (a.ctime ?? 0))[0];
    if (!newest)
      fail(
        Failure.BackupMissing,
        `the backup task of ${step.vmid} ended OK, but no archive of it is on ${String(step.params!['storage'])}`,
      );
    return newest;
  }

  return {
    async planBackup(input: BackupInput): Promise<PlanDraft<BackupPlanDetails>> {
      const client = await deps.pve(input.environment);
      return classified('write', async () => {
        const { guests } = inventoryFromResources(await client.cluster.resources({ type: 'vm' }));
        const selected = selectGuests(input, guests).sort((a, b) => a.node.localeCompare(b.node) || a.vmid - b.vmid);
        const nodes = [...new Set(selected.map((g) => g.node))].sort();
        await checkBackupStorage(client, input.storage, nodes);
        const params = vzdumpParams(input);
        const steps: PlanStep[] = selected.map((g) => ({
          id: `${g.vmid}/backup`,
          action: 'backup',
          vmid: g.vmid,
          name: g.name,
          node: g.node,
          description: `back up ${label(g)} '${g.name}' on ${g.node} to ${input.storage} (${input.mode}, ${input.compress})`,
          params,
        }));
        const { risk, why } = MODE_RISK[input.mode];
        const locked = selected.filter((g) => g.lock);
        return {
          summary: `back up ${selected.length} guest${selected.length === 1 ? '' : 's'} on ${nodes.join(', ')} to ${input.storage}`,
          risk,
          reasons: [why],
          steps,
          warnings: [
            ...locked.map((g) => `${label(g)} is locked (${g.lock}); PVE will fail its backup unless the lock clears`),
            ...(input.bwlimitMiBps
              ? ['bwlimit needs Sys.Modify on / (PVE); the shipped least-privilege role does not hold it']
              : []),
          ],
          nodes,
          vmids: selected.map((g) => g.vmid),
          estimatedDurationMs: selected.length * 60_000,
          details: {
            storage: input.storage,
            targets: selected.map((g) => ({ vmid: g.vmid, name: g.name, type: g.type, node: g.node })),
            maxParallelPerStorage: input.maxParallelPerStorage,
            maxParallelPerNode: input.maxParallelPerNode,
          },
        };
      });
    },

    /**
     * One guest's backup: attaches to a vzdump an earlier attempt started, or sends one, then
     * follows it to its end. A failed task fails for good, with its log.
     */
    async backupGuest(input: BackupGuestInput): Promise<BackupReport> {
      const client = await deps.pve(input.environment);
      const { step } = input;
      const p = step.params!;
      const target: TaskTarget = {
        node: step.node!,
        vmid: step.vmid!,
        types: ['vzdump'],
        what: `backup of ${step.vmid}`,
        failure: Failure.BackupFailed,
      };
      return classified('write', async () => {
        const { upid, attached } = await runTaskOnce(client, target, input.marker, () =>
          client.backup.vzdump({
            node: step.node!,
            vmid: String(step.vmid),
            storage: String(p['storage']),
            mode: p['mode'] as 'snapshot',
            compress: p['compress'] as 'zstd',
            'notes-template': String(p['notes-template']),
            protected: Boolean(p['protected']),
            ...(p['bwlimit'] !== undefined ? { bwlimit: Number(p['bwlimit']) } : {}),
          }),
        );
        const archive = await archiveOf(client, step, parseUpid(upid)?.starttime ?? 0);
        return { vmid: step.vmid!, upid, volid: archive.volid, size: archive.size, attached };
      });
    },

    /** Every backup of the environment's guests on backup storages, newest first (optionally one guest's, one storage's). */
    async listBackups(input: { environment: string; vmid?: number; storage?: string }): Promise<BackupVolume[]> {
      const client = await deps.pve(input.environment);
      return classified('write', () => listBackupVolumes(client, input));
    },

    async planRestore(input: RestoreInput): Promise<PlanDraft<RestorePlanDetails>> {
      const client = await deps.pve(input.environment);
      const env = deps.config.environments[input.environment]!;
      return classified('write', async () => {
        const parsed = parseBackupVolid(input.volume)!;
        const backup = (await listBackupVolumes(client, { storage: parsed.storage, vmid: parsed.vmid })).find(
          (b) => b.volid === input.volume,
        );
        if (!backup) fail(Failure.PlanRefused, `volume: no backup '${input.volume}' in this cluster`);
        const { guests } = inventoryFromResources(await client.cluster.resources({ type: 'vm' }));
        const original = guests.find((g) => g.vmid === backup.vmid);
        const node = original?.node ?? (await nodesSeeing(client, parsed.storage))[0];
        if (!node) fail(Failure.PlanRefused, `volume: storage '${parsed.storage}' is not available on any node`);
        const config = parseConfigText(await client.backup.extractConfig({ node, volume: backup.volid }));
        const age = describeAge(backup.ctime, Math.floor(Date.now() / 1000));
        const when = `${new Date(backup.ctime * 1000).toISOString()} (${age} ago), ${formatBytes(backup.size)}`;
        const params = {
          archive: backup.volid,
          ...(input.storage ? { storage: input.storage } : {}),
          ...(input.start ? { start: true } : {}),
        };

        if (input.target === 'new') {
          const range = env.vmid_ranges.vms;
          const taken = new Set(guests.map((g) => g.vmid));
          if (input.newVmid !== undefined && (input.newVmid < range.min || input.newVmid > range.max)) {
            fail(
              Failure.PlanRefused,
              `newVmid: ${input.newVmid} is outside this environment's VM range ${range.min}-${range.max}`,
            );
          }
          if (input.newVmid !== undefined && taken.has(input.newVmid))
            fail(Failure.PlanRefused, `newVmid: ${input.newVmid} already exists`);
          const vmid = input.newVmid ?? vmidCandidates(range, (v) => taken.has(v)).next().value;
          if (vmid === undefined)
            fail(Failure.PlanRefused, `no free VMID left in the VM range ${range.min}-${range.max}`);
          return {
            summary: `restore ${backup.volid} (${when}) as new ${backup.type === 'qemu' ? 'VM' : 'CT'} ${vmid} on ${node}`,
            risk: 'medium',
            reasons: ['creates a guest beside the original; the original is not touched'],
            steps: [restoreStep(vmid, node, params, `restore ${backup.volid} as ${vmid} on ${node}`)],
            warnings: config['net0']
              ? [
                  `the copy keeps the backup's network config (${config['net0']}); it may clash with the original if started`,
                ]
              : [],
            nodes: [node],
            vmids: [vmid],
            estimatedDurationMs: 60_000,
            details: { backup, config, vmid, node },
          };
        }

        const name = original?.name ?? config['name'] ?? config['hostname'] ?? '';
        const lost = original
          ? [
              `everything ${label(original)} '${original.name}' wrote since ${new Date(backup.ctime * 1000).toISOString()} (${age})`,
              `its current config and disks (replaced by the backup's)`,
            ]
          : [];
        if (original && original.type !== backup.type) {
          fail(
            Failure.PlanRefused,
            `volume: ${backup.vmid} is now a ${original.type === 'qemu' ? 'VM' : 'container'}; the backup is of a ${backup.type === 'qemu' ? 'VM' : 'container'}`,
          );
        }
        const stop: PlanStep[] =
          original?.status === 'running'
            ? [
                {
                  id: 'stop',
                  action: 'stop',
                  vmid: backup.vmid,
                  name,
                  node,
                  description: `stop ${label(original)} '${name}' (a running guest cannot be overwritten)`,
                },
              ]
            : [];
        return {
          summary: `restore ${backup.volid} (${when}) over ${backup.type === 'qemu' ? 'VM' : 'CT'} ${backup.vmid}${original ? ` '${original.name}' on ${node}` : ' (no longer exists)'}`,
          risk: original ? 'high' : 'medium',
          reasons: original
            ? [`overwrites ${label(original)}: lost are ${lost.join('; ')}`]
            : ['recreates a guest that no longer exists'],
          steps: [
            ...(original ? backupBefore(env.policy, 'restore-in-place', original) : []),
            ...stop,
            restoreStep(
              backup.vmid,
              node,
              { ...params, ...(original ? { force: true } : {}) },
              `restore ${backup.volid} over ${backup.vmid} on ${node}`,
            ),
          ],
          warnings: original?.lock
            ? [`${label(original)} is locked (${original.lock}); PVE will refuse until the lock clears`]
            : [],
          nodes: [node],
          vmids: [backup.vmid],
          estimatedDurationMs: 60_000,
          details: { backup, config, vmid: backup.vmid, node },
        };
      });
    },

    /** Restores the archive as planned: once, following an earlier attempt's task if there is one. */
    async restoreGuest(input: RestoreStepInput): Promise<{ vmid: number; upid: string; attached: boolean }> {
      const client = await deps.pve(input.environment);
      const { step } = input;
      const p = step.params!;
      const type = parseBackupVolid(String(p['archive']))!.type;
      const target: TaskTarget = {
        node: step.node!,
        vmid: step.vmid!,
        types: [type === 'qemu' ? 'qmrestore' : 'vzrestore'],
        what: `restore of ${step.vmid}`,
        failure: Failure.RestoreFailed,
      };
      const common = {
        node: step.node!,
        vmid: step.vmid!,
        ...(p['storage'] !== undefined ? { storage: String(p['storage']) } : {}),
        ...(p['force'] ? { force: true } : {}),
        ...(p['start'] ? { start: true } : {}),
        // A drill's copy: its own name, its NIC on the isolated bridge.
        ...(p['net0'] !== undefined ? { net0: String(p['net0']) } : {}),
      };
      const named = (key: 'name' | 'hostname') => (p[key] !== undefined ? { [key]: String(p[key]) } : {});
      return classified('write', async () => {
        const { upid, attached } = await runTaskOnce(client, target, input.marker, () =>
          type === 'qemu'
            ? client.qemu.create({ ...common, ...named('name'), archive: String(p['archive']) })
            : client.lxc.create({ ...common, ...named('hostname'), ostemplate: String(p['archive']), restore: true }),
        );
        return { vmid: step.vmid!, upid, attached };
      });
    },

    async planBackupPrune(input: BackupPruneInput): Promise<PlanDraft<PrunePlanDetails>> {
      const client = await deps.pve(input.environment);
      return classified('write', async () => {
        const keep: PruneOptions = {
          ...(input.keepLast ? { 'keep-last': input.keepLast } : {}),
          ...(input.keepHourly ? { 'keep-hourly': input.keepHourly } : {}),
          ...(input.keepDaily ? { 'keep-daily': input.keepDaily } : {}),
          ...(input.keepWeekly ? { 'keep-weekly': input.keepWeekly } : {}),
          ...(input.keepMonthly ? { 'keep-monthly': input.keepMonthly } : {}),
          ...(input.keepYearly ? { 'keep-yearly': input.keepYearly } : {}),
        };
        const backups = await listBackupVolumes(client, {
          storage: input.storage,
          ...(input.vmid !== undefined ? { vmid: input.vmid } : {}),
        });
        // A backup group is one guest's archives on one storage (and one node, for local storages).
        const groups = new Map<string, BackupVolume[]>();
        for (const b of backups)
          groups.set(`${b.type}/${b.vmid}@${b.node ?? ''}`, [
            ...(groups.get(`${b.type}/${b.vmid}@${b.node ?? ''}`) ?? []),
            b,
          ]);
        const marks = new Map<BackupVolume, string>();
        for (const group of groups.values()) {
          const marked = markBackupGroup(group, keep);
          for (const b of group) marks.set(b, marked.get(b.volid)!);
        }
        const removed = backups.filter((b) => marks.get(b) === 'remove');
        const node = (await nodesSeeing(client, input.storage))[0];
        if (!node && removed.length > 0)
          fail(Failure.PlanRefused, `storage: '${input.storage}' is not available on any node`);
        const steps: PlanStep[] = removed.map((b) => ({
          id: `remove/${b.volid}`,
          action: 'remove-backup',
          vmid: b.vmid,
          node: b.node ?? node!,
          description: `remove ${b.volid} (${new Date(b.ctime * 1000).toISOString()}, ${formatBytes(b.size)})`,
          params: { volume: b.volid, storage: input.storage },
        }));
        const rules = Object.entries(keep)
          .map(([k, v]) => `${k}=${v}`)
          .join(',');
        return {
          summary: `prune ${input.storage} (${rules}): remove ${removed.length} of ${backups.length} backups, ${formatBytes(removed.reduce((n, b) => n + b.size, 0))}`,
          risk: 'high',
          reasons: ['removed backups cannot be restored from'],
          steps,
          warnings: [],
          nodes: [...new Set(steps.map((s) => s.node!))],
          vmids: [...new Set(removed.map((b) => b.vmid))],
          estimatedDurationMs: steps.length * 2_000,
          details: {
            storage: input.storage,
            keep,
            kept: backups.filter((b) => marks.get(b) === 'keep'),
            protectedKept: backups.filter((b) => marks.get(b) === 'protected'),
          },
        };
      });
    },

    /**
     * Removes one backup as planned. Deleting is safe to repeat: a retry finds the volume gone;
     * a backup protected since the plan is left alone.
     */
    async removeBackup(input: {
      environment: string;
      step: PlanStep;
    }): Promise<{ volid: string; outcome: 'removed' | 'already-gone' }> {
      const client = await deps.pve(input.environment);
      const { node } = input.step;
      const volume = String(input.step.params!['volume']);
      const storage = String(input.step.params!['storage']);
      return classified('write', async () => {
        const present = (await client.storage.content({ node: node!, storage, content: 'backup' })).find(
          (v) => v.volid === volume,
        );
        if (!present) return { volid: volume, outcome: 'already-gone' };
        if (present.protected)
          fail(Failure.BackupProtected, `${volume} has been protected since the plan; not removing it`);
        const upid = await client.storage.deleteVolume({ node: node!, storage, volume });
        if (upid) await waitForTask(client, upid, { signal: Context.current().cancellationSignal });
        return { volid: volume, outcome: 'removed' };
      });
    },

    async planRestoreDrill(
      input: RestoreDrillInput,
    ): Promise<PlanDraft<{ targets: DrillTarget[]; maxParallel: number }>> {
      const client = await deps.pve(input.environment);
      const range = deps.config.environments[input.environment]!.vmid_ranges.vms;
      return classified('write', async () => {
        const { guests } = inventoryFromResources(await client.cluster.resources({ type: 'vm' }));
        const selected = selectGuests(input, guests);
        const taken = new Set(guests.map((g) => g.vmid));
        const free = vmidCandidates(range, (v) => taken.has(v));
        const warnings: string[] = [];
        const steps: PlanStep[] = [];
        const targets: DrillTarget[] = [];
        for (const g of selected) {
          const [latest] = await listBackupVolumes(client, { vmid: g.vmid });
          if (!latest) {
            warnings.push(`${label(g)} '${g.name}' has no backup: it cannot be proven restorable`);
            continue;
          }
          const vmid = free.next().value;
          if (vmid === undefined)
            fail(Failure.PlanRefused, `no free VMID left in the VM range ${range.min}-${range.max}`);
          const config = parseConfigText(await client.backup.extractConfig({ node: g.node, volume: latest.volid }));
          const net0 = config['net0']?.replace(/bridge=[^,]+/, `bridge=${input.bridge}`);
          const { copy, check, nameKey } = DRILL_CHECK[latest.type];
          targets.push({ vmid: g.vmid, name: g.name, type: latest.type, backup: latest });
          steps.push({
            id: `drill/${g.vmid}`,
            action: 'restore',
            vmid,
            node: g.node,
            description: `restore ${latest.volid} as temporary ${copy} ${vmid} on ${input.bridge}, start it, ${check}, destroy it`,
            params: { archive: latest.volid, start: true, [nameKey]: `drill-${g.vmid}`, ...(net0 ? { net0 } : {}) },
          });
        }
        // No backup to drill is an answer, not a refusal: a scheduled drill before the first backup completes as nothing-to-do.
        return {
          summary:
            steps.length === 0
              ? `nothing to drill: ${warnings.join('; ')}`
              : `restore drill of ${steps.length} guest${steps.length === 1 ? '' : 's'} on ${input.bridge}`,
          risk: 'low',
          reasons: ['restores temporary copies on an isolated bridge and destroys them; the originals are not touched'],
          steps,
          warnings,
          nodes: [...new Set(steps.map((s) => s.node!))],
          vmids: targets.map((t) => t.vmid),
          estimatedDurationMs: steps.length * 120_000,
          details: { targets, maxParallel: input.maxParallel },
        };
      });
    },

    /** Adds a drill's results to the environment's drill history; writing the same record again changes nothing. */
    async recordDrill(record: DrillRecord): Promise<void> {
      await createDrillStore(deps.config.backups.drill_dir).write(record);
    },

    /** Waits until the guest agent of a VM answers; fails with PVE's last word when it never does. */
    async awaitGuestAgent(input: {
      environment: string;
      node: string;
      vmid: number;
      timeoutMs: number;
    }): Promise<void> {
      const client = await deps.pve(input.environment);
      const ctx = Context.current();
      const deadline = Date.now() + input.timeoutMs;
      for (;;) {
        try {
          await client.qemu.agentNetworkInterfaces({ node: input.node, vmid: input.vmid });
          return;
        } catch (err) {
          const reason = err instanceof Error ? err.message : String(err);
          // A VM without an agent configured will never answer: no point waiting.
          if (Date.now() >= deadline || /No QEMU guest agent configured/.test(reason))
            fail(
              Failure.AgentSilent,
              `the guest agent of VM ${input.vmid} did not answer within ${Math.round(input.timeoutMs / 1000)} s: ${reason}`,
            );
          ctx.heartbeat({ waiting: reason });
          await new Promise((r) => setTimeout(r, 500));
        }
      }
    },

    /**
     * Waits until a container runs with an address: it has no guest agent, so PVE's view of
     * its interfaces (what `ip` shows inside it) is the proof it booted its network.
     */
    async awaitContainerUp(input: {
      environment: string;
      node: string;
      vmid: number;
      timeoutMs: number;
    }): Promise<void> {
      const client = await deps.pve(input.environment);
      const ctx = Context.current();
      const deadline = Date.now() + input.timeoutMs;
      for (;;) {
        let reason: string;
        try {
          const interfaces = await client.lxc.interfaces({ node: input.node, vmid: input.vmid });
          const up = interfaces.find((i) => i.name !== 'lo' && i.inet);
          if (up) return;
          reason = 'no interface but lo has an address';
        } catch (err) {
          reason = err instanceof Error ? err.message : String(err);
        }
        if (Date.now() >= deadline)
          fail(
            'ContainerSilent',
            `CT ${input.vmid} did not come up with an address within ${Math.round(input.timeoutMs / 1000)} s: ${reason}`,
          );
        ctx.heartbeat({ waiting: reason });
        await new Promise((r) => setTimeout(r, 500));
      }
    },

    /**
     * Removes a drill's temporary guest: stopped, then destroyed. Safe to repeat: a guest already
     * gone is done, one being destroyed is waited for.
     */
    async removeDrillGuest(input: { environment: string; node: string; vmid: number; name: string }): Promise<void> {
      const client = await deps.pve(input.environment);
      const ctx = Context.current();
      return classified('write', async () => {
        for (;;) {
          const guest = (await client.cluster.resources({ type: 'vm' })).find((r) => r.vmid === input.vmid);
          if (!guest) return;
          // Never destroy anything but the drill's own copy.
          if (guest.name !== input.name)
            fail(
              Failure.PlanRefused,
              `${label({ type: guest.type as 'qemu' | 'lxc', vmid: input.vmid })} is '${guest.name}', not the drill's '${input.name}': not removing it`,
            );
          const ref = { node: input.node, vmid: input.vmid };
          const api = guest.type === 'lxc' ? client.lxc : client.qemu;
          const config = await api.config(ref);
          if (config.lock === 'destroyed' || config.lock === 'create') {
            ctx.heartbeat({ waiting: `lock ${config.lock}` });
            await new Promise((r) => setTimeout(r, 500));
            continue;
          }
          if (guest.status === 'running')
            await waitForTask(client, await api.stop(ref), { signal: ctx.cancellationSignal });
          await waitForTask(client, await api.destroy({ ...ref, purge: true, 'destroy-unreferenced-disks': true }), {
            signal: ctx.cancellationSignal,
          });
        }
      });
    },
  };
}

function restoreStep(
  vmid: number,
  node: string,
  params: Record<string, string | boolean>,
  description: string,
): PlanStep {
  return { id: 'restore', action: 'restore', vmid, node, description, params };
}

/** Nodes on which a storage is available, in name order. */
async function nodesSeeing(client: PveClient, storage: string): Promise<string[]> {
  const nodes = (await client.nodes.list())
    .filter((n) => n.status === 'online')
    .map((n) => n.node)
    .sort();
  const seeing: string[] = [];
  for (const node of nodes)
    if ((await client.storage.list({ node, storage })).some((s) => s.storage === storage)) seeing.push(node);
  return seeing;
}

export type BackupActivities = ReturnType<typeof createBackupActivities>;
