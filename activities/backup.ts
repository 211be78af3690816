/**
 * Backups with vzdump: which guests a request selects and the plan for them, then each
 * guest's backup sent to PVE once and followed to its end.
 *
 * "Once" as migrations do it: before sending, the node's task list since the operation's
 * marker is searched for a vzdump of the guest (an earlier attempt whose answer was lost, a
 * worker that died); if there is one it is followed instead. After sending, the UPID is
 * heartbeated, so a retry attaches to it directly.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { inventoryFromResources, type GuestView } from '../lib/inventory.js';
import { matchesTags, parseTagExpression, TagExpressionError } from '../lib/lifecycle/tag-expression.js';
import type { BackupInput } from '../lib/operations/catalog.js';
import type { PveClient } from '../lib/pve/client.js';
import { PveTaskFailedError } from '../lib/pve/errors.js';
import { waitForTask } from '../lib/pve/tasks.js';
import { parseUpid } from '../lib/pve/upid.js';
import type { PlanStep } from '../workflows/definitions.js';
import type { PlanDraft } from '../workflows/operation.js';
import type { WorkerDeps } from '../worker/deps.js';
import { withPveFailures } from './failures.js';
import type { TaskMarker } from './migration.js';
import { isTransient, read } from './transient.js';
import { refuse } from './vm.js';

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

function fail(type: string, message: string, details?: unknown): never {
  throw ApplicationFailure.create({ type, message, nonRetryable: true, ...(details ? { details: [details] } : {}) });
}

function label(g: Pick<BackupTarget, 'type' | 'vmid'>): string {
  return `${g.type === 'qemu' ? 'VM' : 'CT'} ${g.vmid}`;
}

function selectGuests(input: BackupInput, guests: GuestView[]): GuestView[] {
  const candidates = guests.filter((g) => !g.template);
  if (input.vmid !== undefined) {
    const guest = candidates.find((g) => g.vmid === input.vmid);
    if (!guest) refuse('PlanRefused', `vmid: guest ${input.vmid} does not exist in this cluster`);
    return [guest];
  }
  if (input.node !== undefined) {
    const onNode = candidates.filter((g) => g.node === input.node);
    if (onNode.length === 0) refuse('PlanRefused', `node: no guest runs on '${input.node}'`);
    return onNode;
  }
  let expression;
  try {
    expression = parseTagExpression(input.tags!);
  } catch (err) {
    if (err instanceof TagExpressionError) refuse('PlanRefused', `tags: ${err.message}`);
    throw err;
  }
  const matching = candidates.filter((g) => matchesTags(expression, g.tags));
  if (matching.length === 0) refuse('PlanRefused', `tags: no guest matches '${input.tags}'`);
  return matching;
}

/** The storage must take backups on every node whose guests go to it. */
async function checkBackupStorage(client: PveClient, storage: string, nodes: string[]): Promise<void> {
  for (const node of nodes) {
    const listed = await client.storage.list({ node, storage });
    const found = listed.find((s) => s.storage === storage);
    if (!found) refuse('PlanRefused', `storage: '${storage}' is not available on ${node}`);
    if (!found.content.split(',').includes('backup')) {
      refuse('PlanRefused', `storage: '${storage}' does not hold backups (its content is ${found.content}); PVE would refuse it`);
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

export function createBackupActivities(deps: Pick<WorkerDeps, 'pve'>) {
  async function earlierBackup(client: PveClient, input: BackupGuestInput): Promise<string | undefined> {
    const { step, marker } = input;
    const tasks = await read(() => client.tasks.list({ node: step.node!, vmid: step.vmid!, typefilter: 'vzdump', source: 'all', since: marker.since }));
    return tasks
      .filter((t) => t.type === 'vzdump' && t.id === String(step.vmid) && t.starttime >= marker.since && !marker.upids.includes(t.upid))
      .sort((a, b) => b.starttime - a.starttime)[0]?.upid;
  }

  async function sendVzdump(client: PveClient, step: PlanStep): Promise<string> {
    const p = step.params!;
    try {
      return await client.backup.vzdump({
        node: step.node!,
        vmid: String(step.vmid),
        storage: String(p['storage']),
        mode: p['mode'] as 'snapshot',
        compress: p['compress'] as 'zstd',
        'notes-template': String(p['notes-template']),
        protected: Boolean(p['protected']),
        ...(p['bwlimit'] !== undefined ? { bwlimit: Number(p['bwlimit']) } : {}),
      });
    } catch (err) {
      // No answer, or a bare server error: the next attempt's look at the task list tells
      // whether PVE started it. A refusal with a reason would only be refused again.
      if (isTransient(err)) {
        throw ApplicationFailure.create({ type: 'BackupUnanswered', message: `vzdump of ${step.vmid}: ${err instanceof Error ? err.message : String(err)}` });
      }
      fail('BackupRefused', `PVE refused to back up ${step.vmid}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }

  /** The archive the task wrote: the guest's newest backup on the storage since the task began. */
  async function archiveOf(client: PveClient, step: PlanStep, startedAt: number) {
    const volumes = await read(() =>
      client.storage.content({ node: step.node!, storage: String(step.params!['storage']), content: 'backup', vmid: step.vmid! }),
    );
    const newest = volumes.filter((v) => (v.ctime ?? 0) >= startedAt).sort((a, b) => (b.ctime ?? 0) - (a.ctime ?? 0))[0];
    if (!newest) fail('BackupMissing', `the backup task of ${step.vmid} ended OK, but no archive of it is on ${String(step.params!['storage'])}`);
    return newest;
  }

  return {
    async planBackup(input: BackupInput): Promise<PlanDraft<BackupPlanDetails>> {
      const client = await deps.pve(input.environment);
      return withPveFailures(async () => {
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
            ...(input.bwlimitMiBps ? ['bwlimit needs Sys.Modify on / (PVE); the shipped least-privilege role does not hold it'] : []),
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
      const ctx = Context.current();
      const client = await deps.pve(input.environment);
      const { step } = input;
      const resumed = (ctx.info.heartbeatDetails as { upid?: string } | undefined)?.upid;
      return withPveFailures(async () => {
        let upid = resumed ?? (await earlierBackup(client, input));
        const attached = upid !== undefined;
        upid ??= await sendVzdump(client, step);
        ctx.heartbeat({ upid });
        try {
          await waitForTask(client, upid, {
            tailLines: 30,
            signal: ctx.cancellationSignal,
            onProgress: (_status, tail) => ctx.heartbeat({ upid, log: tail.at(-1) }),
          });
        } catch (err) {
          if (err instanceof PveTaskFailedError) {
            fail('BackupFailed', `backup of ${step.vmid} failed: ${err.exitstatus}\n${err.logTail.join('\n')}`, {
              upid,
              logTail: err.logTail,
            });
          }
          throw err;
        }
        const archive = await archiveOf(client, step, parseUpid(upid)?.starttime ?? 0);
        return { vmid: step.vmid!, upid, volid: archive.volid, size: archive.size, attached };
      });
    },
  };
}

export type BackupActivities = ReturnType<typeof createBackupActivities>;
