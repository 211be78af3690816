/**
 * The backup operation on a real Temporal dev server and the simulated homelab: vzdump of a
 * guest, a tag expression or a node, bounded per storage and per node, each guest followed
 * as its own task; failures carry the task log, refusals come before anything is sent.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ScheduleHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createActivities } from '../../activities/index.js';
import { createReconcileActivities } from '../../activities/reconcile.js';
import type { BackupBefore } from '../../lib/backup/before.js';
import { createDrillStore, drillHistory, type DrillResult } from '../../lib/backup/drills.js';
import { DRILL_SCHEDULE_REQUESTER, drillScheduleId, ensureDrillSchedules } from '../../worker/drill-schedule.js';
import { DrillSchedule, type AppConfig } from '../../lib/config/schema.js';
import type { GuestChange } from '../../lib/manifest/diff/index.js';
import type { TaskRecord } from '../../sim/tasks.js';
import type { BackupGuestResult } from '../../workflows/backup.js';
import { PmOperationKind, PmRequester } from '../../workflows/search-attributes.js';
import type { PlanStep } from '../../lib/operations/plan.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { startTestWorker, type TestWorker } from '../support/temporal.js';
import { approve, failureOf, startOperation } from './lifecycle-helpers.js';

let home: SimulatedEnvironment;
let worker: TestWorker;

let drillDir: string;

beforeAll(async () => {
  home = await startSimulatedEnvironment({ speed: 400 });
  drillDir = await mkdtemp(join(tmpdir(), 'pm-drills-'));
  home.config.backups.drill_dir = drillDir;
  worker = await startTestWorker({ activities: createActivities(home.deps) });
});
afterAll(async () => {
  await worker?.shutdown();
  await home?.stop();
  await rm(drillDir, { recursive: true, force: true });
});

const vzdumpTasks = (vmids: number[]): TaskRecord[] =>
  home.sim.cluster.tasks.all().filter((t) => t.type === 'vzdump' && vmids.includes(Number(t.id)));

/** Whether any two of the tasks ran at the same time (by the simulated clock). */
function overlapping(tasks: TaskRecord[]): boolean {
  const spans = [...tasks].sort((a, b) => a.starttime - b.starttime);
  return spans.some((t, i) => i > 0 && t.starttime < spans[i - 1]!.endtime!);
}

describe('the backup operation', () => {
  it('backs up one guest to the shared storage with its notes, and sends one vzdump', async () => {
    const handle = await startOperation(worker, 'backup', {
      vmid: 1004,
      storage: 'shared',
      notesTemplate: '{{guestname}} ({{vmid}})',
      protected: true,
    });
    const { plan, result } = await handle.result();
    expect(plan).toMatchObject({ risk: 'low', vmids: [1004], nodes: ['pve01'] });
    expect(plan.steps[0].params).toMatchObject({
      storage: 'shared',
      mode: 'snapshot',
      compress: 'zstd',
      protected: true,
    });
    const [done] = result as BackupGuestResult[];
    expect(done).toMatchObject({
      vmid: 1004,
      outcome: 'succeeded',
      volid: expect.stringMatching(/^shared:backup\/vzdump-qemu-1004-.*\.vma\.zst$/),
    });
    const volume = home.sim.state.volume(done!.volid!, 'pve01')!;
    expect(volume.backup).toMatchObject({ notes: 'web01 (1004)', protected: true });
    expect(vzdumpTasks([1004])).toHaveLength(1);
  });

  it('backs up guests by tag, never two at once on one storage when the limit is one', async () => {
    const handle = await startOperation(worker, 'backup', {
      tags: 'infra & dns',
      storage: 'shared',
      maxParallelPerStorage: 1,
    });
    const { plan, result } = await handle.result();
    expect(plan.vmids).toEqual([1001, 2001, 1011]);
    expect((result as BackupGuestResult[]).map((r) => r.outcome)).toEqual(['succeeded', 'succeeded', 'succeeded']);
    expect(home.sim.state.volume((result as BackupGuestResult[])[1]!.volid!, 'pve01')!.format).toBe('tar.zst');
    expect(overlapping(vzdumpTasks([1001, 2001, 1011]))).toBe(false);
  });

  it('backs up a node’s guests, one vzdump job at a time on the node', async () => {
    const handle = await startOperation(worker, 'backup', {
      node: 'pve03',
      storage: 'shared',
      maxParallelPerStorage: 4,
    });
    const { plan, result } = await handle.result();
    expect(plan.vmids).toEqual([1021, 1022, 1023, 1024, 1025, 1026]);
    expect((result as BackupGuestResult[]).every((r) => r.outcome === 'succeeded')).toBe(true);
    expect(overlapping(vzdumpTasks(plan.vmids))).toBe(false);
  });

  it('stops a running guest for a stop-mode backup and starts it again, as a medium-risk plan', async () => {
    const handle = await startOperation(worker, 'backup', { vmid: 1018, storage: 'shared', mode: 'stop' });
    const { plan } = await handle.result();
    expect(plan.risk).toBe('medium');
    const [task] = vzdumpTasks([1018]);
    expect(task!.lines).toEqual(expect.arrayContaining(['INFO: stopping virtual guest', 'INFO: restarting vm']));
    expect(home.sim.state.guests.get(1018)!.status).toBe('running');
  });

  it('refuses a storage that does not hold backups before anything is sent', async () => {
    const handle = await startOperation(worker, 'backup', { vmid: 1004, storage: 'local-lvm' });
    const failure = await failureOf(handle);
    expect(failure.type).toBe('PlanRefused');
    expect(failure.message).toMatch(/^storage: 'local-lvm' does not hold backups/);
  });

  it('reports a guest PVE could not back up with the task log, and still backs up the others', async () => {
    home.sim.state.guests.get(1012)!.update((c) => (c['lock'] = 'migrate'));
    try {
      const handle = await startOperation(worker, 'backup', { tags: 'prod & web', storage: 'shared' });
      const failure = await failureOf(handle);
      expect(failure.type).toBe('BackupIncomplete');
      const results = failure.details![0] as BackupGuestResult[];
      expect(results.map((r) => [r.vmid, r.outcome])).toEqual([
        [1004, 'succeeded'],
        [1012, 'failed'],
        [1026, 'succeeded'],
      ]);
      expect(results[1]!.error).toContain('ERROR: Backup of VM 1012 failed - VM is locked (migrate)');
    } finally {
      home.sim.state.guests.get(1012)!.update((c) => delete c['lock']);
    }
  });

  it('refuses a request naming both a guest and a node, naming the field', () => {
    expect(() => startOperation(worker, 'backup', { vmid: 1004, node: 'pve01', storage: 'shared' })).toThrow(
      /name exactly one of vmid, tags or node/,
    );
  });
});

describe('the restore operation', () => {
  async function backedUp(vmid: number): Promise<string> {
    const { result } = await (await startOperation(worker, 'backup', { vmid, storage: 'shared' })).result();
    return (result as BackupGuestResult[])[0]!.volid!;
  }

  it('restores a backup as a new VMID in the environment’s range, showing the backup and its config', async () => {
    const volume = await backedUp(1026);
    const handle = await startOperation(worker, 'restore', { volume, target: 'new' });
    const { plan, result } = await handle.result();
    expect(plan.risk).toBe('medium');
    expect(plan.summary).toMatch(
      /^restore shared:backup\/vzdump-qemu-1026-\S+ \(\S+ \(0 h ago\), [\d.]+ GiB\) as new VM 1000 on pve03$/,
    );
    expect(plan.details.config).toMatchObject({ name: 'wiki', memory: '2048' });
    expect(result).toMatchObject({ vmid: 1000, attached: false });
    const copy = home.sim.state.guests.get(1000)!;
    expect([copy.name, copy.node, copy.lock]).toEqual(['wiki', 'pve03', undefined]);
    expect(home.sim.state.guests.get(1026)!.status).toBe('running');
  });

  it('restores in place only with a second person’s approval, stopping the guest first and saying what is lost', async () => {
    const volume = await backedUp(1024);
    home.sim.state.guests.get(1024)!.update((c) => (c['memory'] = '8192'));
    const handle = await startOperation(
      worker,
      'restore',
      { volume, target: 'in-place' },
      { autoApprove: ['low', 'medium'] },
    );
    const status = await approve(handle);
    expect(status.plan!.risk).toBe('high');
    expect(status.plan!.reasons[0]).toMatch(
      /^overwrites VM 1024: lost are everything VM 1024 'homeassistant' wrote since /,
    );
    expect(status.plan!.steps.map((s) => s.id)).toEqual(['stop', 'restore']);
    await handle.result();
    const restored = home.sim.state.guests.get(1024)!;
    expect([restored.config['memory'], restored.status]).toEqual(['4096', 'stopped']);
    expect(home.sim.cluster.tasks.all().filter((t) => t.type === 'qmrestore' && t.id === '1024')).toHaveLength(1);
  });
});

describe('policy backup_before', () => {
  /** The worker reads the policy when it plans, so the test sets it on the environment's configuration for its cases. */
  async function withBackupBefore<T>(kinds: BackupBefore[], fn: () => Promise<T>): Promise<T> {
    const policy = home.config.environments['home']!.policy;
    Object.assign(policy, { backup_before: kinds, backup_storage: 'shared' });
    try {
      return await fn();
    } finally {
      Object.assign(policy, { backup_before: [], backup_storage: undefined });
    }
  }

  it('puts a protected backup at the head of a delete plan, and deletes only after it succeeded', async () => {
    await withBackupBefore(['delete'], async () => {
      const handle = await startOperation(worker, 'vm-action', { vmid: 1017, name: 'ci-runner', action: 'delete' });
      const status = await approve(handle);
      expect(status.plan!.steps[0]).toMatchObject({
        id: 'backup',
        action: 'backup',
        params: { storage: 'shared', protected: true },
      });
      expect(status.plan!.steps.at(-1)!.action).toBe('destroy');
      await handle.result();
    });
    expect(home.sim.state.guests.has(1017)).toBe(false);
    const [archive] = [...home.sim.state.pool('shared', 'pve02')!.volumes.values()].filter(
      (v) => v.content === 'backup' && v.vmid === 1017,
    );
    expect(archive!.backup).toMatchObject({ protected: true, notes: 'ci-runner before delete' });
    const [vzdump] = vzdumpTasks([1017]);
    const destroy = home.sim.cluster.tasks.all().find((t) => t.type === 'qmdestroy' && t.id === '1017')!;
    expect(destroy.starttime).toBeGreaterThanOrEqual(vzdump!.endtime!);
  });

  it('keeps the guest when its backup fails', async () => {
    home.sim.faults.failTask({ type: 'vzdump', vmid: 1007, times: 1, message: 'job errors' });
    const failure = await withBackupBefore(['delete'], async () => {
      const handle = await startOperation(worker, 'vm-action', { vmid: 1007, name: 'installer', action: 'delete' });
      await approve(handle);
      return failureOf(handle);
    });
    expect(failure.type).toBe('BackupFailed');
    expect(home.sim.state.guests.has(1007)).toBe(true);
    expect(home.sim.cluster.tasks.all().some((t) => t.type === 'qmdestroy' && t.id === '1007')).toBe(false);
  });

  /** The protected archives the policy's backups left of a guest. */
  const protectedArchives = (vmid: number) =>
    [...home.sim.state.pool('shared', 'pve01')!.volumes.values()].filter(
      (v) => v.content === 'backup' && v.vmid === vmid && v.backup?.protected,
    );

  /** Whether the guest's destroy task started only after its vzdump ended. */
  function destroyedAfterBackup(vmid: number, destroyType = 'qmdestroy'): boolean {
    const [backup] = vzdumpTasks([vmid]);
    const destroy = home.sim.cluster.tasks.all().find((t) => t.type === destroyType && t.id === String(vmid));
    return backup !== undefined && destroy !== undefined && destroy.starttime >= backup.endtime!;
  }

  it('backs up each guest of a bulk delete before destroying it, as a step of its own the approver sees', async () => {
    const handle = await withBackupBefore(['delete'], async () => {
      const started = await startOperation(worker, 'bulk-action', { tags: 'home', action: 'delete' });
      const status = await approve(started);
      expect(status.plan!.steps[0]).toMatchObject({
        id: '1024/backup',
        action: 'backup',
        params: { storage: 'shared', protected: true },
      });
      expect(status.plan!.steps[0]!.description).toContain('before it is deleted (policy backup_before: delete)');
      expect(status.plan!.steps.at(-1)).toMatchObject({ id: '1024/destroy' });
      return started;
    });
    await handle.result();
    expect(home.sim.state.guests.has(1024)).toBe(false);
    expect(protectedArchives(1024)).toHaveLength(1);
    expect(destroyedAfterBackup(1024)).toBe(true);
  });

  it('backs up the guest a restore in place overwrites, before stopping it', async () => {
    const { result } = await (await startOperation(worker, 'backup', { vmid: 1018, storage: 'shared' })).result();
    const volume = (result as BackupGuestResult[])[0]!.volid!;
    const { plan } = await withBackupBefore(['restore-in-place'], async () =>
      (await startOperation(worker, 'restore', { volume, target: 'in-place', dryRun: true })).result(),
    );
    expect(plan.steps.map((s: PlanStep) => s.action)).toEqual(['backup', 'stop', 'restore']);
    expect(plan.steps[0].params).toMatchObject({ 'notes-template': '{{guestname}} before restore', protected: true });
  });

  describe('reconcile', () => {
    let dir: string;
    let reconciler: TestWorker;
    beforeAll(async () => {
      // Relative to the working directory, as the API takes a manifest folder.
      await mkdir('data', { recursive: true });
      dir = await mkdtemp(join('data', 'test-backup-before-'));
      reconciler = await startTestWorker({
        activities: { ...createActivities(home.deps), ...createReconcileActivities(home.deps, { path: dir }) },
      });
    });
    afterAll(async () => {
      await reconciler?.shutdown();
      await rm(dir, { recursive: true, force: true });
    });

    /** A manifest claiming the guests tagged `media` (1006 'media'), listing `guests`. */
    async function reconcileMedia(guests: unknown[], dryRun: boolean) {
      const folder = await mkdtemp(join(dir, 'manifests-'));
      await writeFile(
        join(folder, 'media.yaml'),
        stringify({ environment: 'home', claims: { tags: ['media'] }, guests }),
      );
      return startOperation(reconciler, 'reconcile', { manifests: folder, dryRun }, { autoApprove: ['low'] });
    }

    it('backs up a guest the manifest replaces before the replacement destroys it', async () => {
      const asContainer = {
        name: 'media',
        kind: 'lxc',
        source: { ostemplate: 'local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst' },
        memory: '512M',
        disks: [{ slot: 'rootfs', size: 8, storage: 'local-lvm' }],
        network: [{ bridge: 'vmbr0', ip: 'dhcp' }],
        tags: ['media'],
      };
      const { plan } = await withBackupBefore(['reconcile-replace'], async () =>
        (await reconcileMedia([asContainer], true)).result(),
      );
      expect(plan.risk).toBe('high');
      const [change] = plan.details.changes as GuestChange[];
      expect(change).toMatchObject({ action: 'replace', vmid: 1006 });
      expect(change!.steps[0]).toMatchObject({
        action: 'backup',
        vmid: 1006,
        params: { storage: 'shared', protected: true, 'notes-template': '{{guestname}} before replace' },
      });
      expect(change!.steps.findIndex((s) => s.action === 'destroy')).toBeGreaterThan(0);
    });

    it('backs up a guest the manifest no longer lists, then deletes it', async () => {
      const handle = await withBackupBefore(['reconcile-delete'], async () => {
        const started = await reconcileMedia([], false);
        const status = await approve(started);
        expect(status.plan!.steps.map((s) => s.action)).toEqual(['backup', 'destroy']);
        return started;
      });
      await handle.result();
      expect(home.sim.state.guests.has(1006)).toBe(false);
      expect(protectedArchives(1006)).toHaveLength(1);
      expect(destroyedAfterBackup(1006)).toBe(true);
    });
  });
});

describe('the backup-prune operation', () => {
  it('removes what keep-last does not keep, after a second person approves, and never a protected backup', async () => {
    for (const protect of [true, false, false, false]) {
      await (await startOperation(worker, 'backup', { vmid: 1014, storage: 'shared', protected: protect })).result();
    }
    const archives = () =>
      [...home.sim.state.pool('shared', 'pve02')!.volumes.values()]
        .filter((v) => v.content === 'backup' && v.vmid === 1014)
        .sort((a, b) => a.ctime - b.ctime);
    const [oldest, ...rest] = archives();
    expect(rest).toHaveLength(3);

    const handle = await startOperation(worker, 'backup-prune', { storage: 'shared', vmid: 1014, keepLast: 1 });
    const status = await approve(handle);
    expect(status.plan!.risk).toBe('high');
    expect(status.plan!.details).toMatchObject({ protectedKept: [expect.objectContaining({ volid: oldest!.volid })] });
    expect(status.plan!.steps.map((s) => s.params!['volume']).sort()).toEqual(
      rest
        .slice(0, 2)
        .map((v) => v.volid)
        .sort(),
    );
    await handle.result();

    expect(archives().map((v) => v.volid)).toEqual([oldest!.volid, rest[2]!.volid]);
  });

  it('answers a request without a keep option with a 400-style refusal naming keepLast', () => {
    expect(() => startOperation(worker, 'backup-prune', { storage: 'shared' })).toThrow(/keepLast/);
  });
});

describe('the restore-drill operation', () => {
  const drillCopies = () => [...home.sim.state.guests.values()].filter((g) => g.name.startsWith('drill-'));

  it('proves the latest backup restorable on an isolated bridge, then destroys the copy', async () => {
    await (await startOperation(worker, 'backup', { vmid: 1002, storage: 'shared' })).result();
    const handle = await startOperation(worker, 'restore-drill', { vmid: 1002, bridge: 'vmbr99' });
    const { plan, result } = await handle.result();
    expect(plan.risk).toBe('low');
    expect(plan.steps[0].params).toMatchObject({
      start: true,
      name: 'drill-1002',
      net0: expect.stringContaining('bridge=vmbr99'),
    });
    const [drill] = result as DrillResult[];
    expect(drill).toMatchObject({ vmid: 1002, outcome: 'proven', volid: expect.stringMatching(/vzdump-qemu-1002-/) });
    expect(drill!.seconds).toBeGreaterThan(0);
    expect(drillCopies()).toEqual([]);
    expect(home.sim.state.guests.get(1002)!.status).toBe('running');
  });

  it('fails the drill of a VM whose guest agent never answers, naming why, and still destroys the copy', async () => {
    await (await startOperation(worker, 'backup', { vmid: 1025, storage: 'shared' })).result();
    const handle = await startOperation(worker, 'restore-drill', { vmid: 1025 });
    const failure = await failureOf(handle);
    expect(failure.type).toBe('DrillFailed');
    const [drill] = failure.details![0] as DrillResult[];
    expect(drill).toMatchObject({
      vmid: 1025,
      outcome: 'failed',
      error: expect.stringContaining('No QEMU guest agent configured'),
    });
    expect(drillCopies()).toEqual([]);
  });

  it('proves a container’s backup by restoring it (ostemplate + restore) and seeing it run with an address', async () => {
    await (await startOperation(worker, 'backup', { vmid: 2002, storage: 'shared' })).result();
    const { plan, result } = await (await startOperation(worker, 'restore-drill', { vmid: 2002 })).result();
    expect(plan.steps[0].params).toMatchObject({
      hostname: 'drill-2002',
      net0: expect.stringContaining('bridge=vmbr99'),
    });
    expect(plan.steps[0].description).toContain('check it runs with an address');
    expect(result as DrillResult[]).toEqual([expect.objectContaining({ vmid: 2002, type: 'lxc', outcome: 'proven' })]);
    const restore = home.sim.cluster.tasks.all().filter((t) => t.type === 'vzrestore');
    expect(restore).toHaveLength(1);
    expect(home.sim.cluster.tasks.all().filter((t) => t.type === 'vzdestroy' && t.id === restore[0]!.id)).toHaveLength(
      1,
    );
    expect(drillCopies()).toEqual([]);
  });

  it('keeps a failed drill as a finding until a later drill proves the guest restorable, and shows when each guest was last proven', async () => {
    const history = async () => drillHistory(await createDrillStore(drillDir).list('home'));
    const open = (await history()).findings.filter((f) => f.state === 'open');
    expect(open).toEqual([
      expect.objectContaining({
        vmid: 1025,
        name: 'scratch',
        volid: expect.stringMatching(/vzdump-qemu-1025-/),
        reason: expect.stringContaining('No QEMU guest agent configured'),
      }),
    ]);

    home.sim.state.guests.get(1025)!.update((c) => (c['agent'] = '1'));
    const { result } = await (await startOperation(worker, 'backup', { vmid: 1025, storage: 'shared' })).result();
    const volid = (result as BackupGuestResult[])[0]!.volid;
    const drill = await startOperation(worker, 'restore-drill', { vmid: 1025 });
    await drill.result();

    const after = await history();
    expect(after.findings).toEqual([
      expect.objectContaining({ vmid: 1025, state: 'resolved', resolvedBy: drill.workflowId }),
    ]);
    const proven = new Map(after.guests.map((g) => [g.vmid, g]));
    expect(proven.get(1025)!.lastProven).toMatchObject({ volid, operationId: drill.workflowId });
    expect(proven.get(1002)!.lastProven!.seconds).toBeGreaterThan(0);
    expect(proven.get(2002)).toMatchObject({ type: 'lxc', lastDrill: { outcome: 'proven' } });
  });
});

describe('restore drills on a schedule', () => {
  /** The test environment's configuration with `backups.drill_schedule` set (or not). */
  const configured = (drills?: Record<string, unknown>): AppConfig => ({
    ...home.config,
    environments: {
      home: {
        ...home.config.environments['home']!,
        backups: drills ? { drill_schedule: DrillSchedule.parse(drills) } : {},
      },
    },
  });

  async function firstScheduledRun(handle: ScheduleHandle): Promise<string> {
    for (;;) {
      const [run] = (await handle.describe()).info.recentActions;
      if (run) return run.action.workflow.workflowId;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  it('starts the configured drill as a restore-drill operation, and removes the schedule once drills are turned off', async () => {
    await (await startOperation(worker, 'backup', { vmid: 1011, storage: 'shared' })).result();
    const options = { taskQueue: worker.taskQueue };
    const created = await ensureDrillSchedules(worker.client, configured({ every: '1h', vmid: 1011 }), options);
    expect(created).toEqual([{ environment: 'home', scheduleId: drillScheduleId('home'), state: 'created' }]);
    const schedule = worker.client.schedule.getHandle(drillScheduleId('home'));
    try {
      const again = await ensureDrillSchedules(worker.client, configured({ every: '30m', vmid: 1011 }), options);
      expect(again[0]!.state).toBe('updated');
      await schedule.trigger();
      const drill = worker.client.workflow.getHandle(await firstScheduledRun(schedule));
      const { outcome, result } = await drill.result();
      expect(outcome).toBe('completed');
      expect(result as DrillResult[]).toEqual([expect.objectContaining({ vmid: 1011, outcome: 'proven' })]);
      const { typedSearchAttributes } = await drill.describe();
      expect([typedSearchAttributes.get(PmOperationKind), typedSearchAttributes.get(PmRequester)]).toEqual([
        'restore-drill',
        DRILL_SCHEDULE_REQUESTER,
      ]);
      const proven = drillHistory(await createDrillStore(drillDir).list('home')).guests.find((g) => g.vmid === 1011);
      expect(proven!.lastProven!.operationId).toBe(drill.workflowId);
    } finally {
      const off = await ensureDrillSchedules(worker.client, configured(), options);
      expect(off).toEqual([{ environment: 'home', scheduleId: drillScheduleId('home'), state: 'deleted' }]);
    }
  });
});
