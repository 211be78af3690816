/**
 * Desired state end to end, on a real Temporal dev server and the simulated cluster: a fleet
 * of 20 guests applied to empty nodes, a second plan with nothing to do, an in-place memory
 * change, a template change that needs a second person to replace the guest, a concurrent
 * edit the config digest catches, drift found by the schedule, and an invalid manifest.
 */
import { signed } from '../../testkit/approvals.js';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml, stringify } from 'yaml';
import { createActivities } from '../../activities/index.js';
import { createReconcileActivities } from '../../activities/reconcile.js';
import { createDriftStore } from '../../lib/manifest/drift-store.js';
import type { DriftReport } from '../../lib/manifest/drift.js';
import type { ReconcileDetails } from '../../lib/manifest/plan.js';
import { driftScheduleId, ensureDriftSchedule } from '../../lib/manifest/schedule.js';
import type { ReconcileInput } from '../../lib/operations/catalog.js';
import type { Scenario } from '../../sim/index.js';
import type { OperationPlan } from '../../lib/operations/plan.js';
import { approveUpdate } from '../../workflows/definitions.js';
import type { ReconcileResult } from '../../workflows/reconcile.js';
import { homelabScenario, startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { startTestWorker, type TestWorker } from '../support/temporal.js';
import { cancelWhen, stepRunning, waitForPhase } from './lifecycle-helpers.js';
import { driftApi, withDriftTokens } from '../unit/manifest-drift-app.js';

let env: SimulatedEnvironment;
let worker: TestWorker;
let dir: string;
let manifests: string;
let driftDir: string;

/** The homelab's nodes, storages, images and templates — and no other guest. */
async function emptyHomelab(): Promise<Scenario> {
  const scenario = parseYaml(await readFile(homelabScenario, 'utf8')) as Scenario & {
    guests: { template?: boolean }[];
  };
  return { ...scenario, guests: scenario.guests.filter((g) => g.template) };
}

interface GuestEntry {
  [field: string]: unknown;
}

/** 20 guests: clones of the cloud-init template, containers, installer-ISO VMs, cloud-image VMs, policy-named services. */
function fleet(): GuestEntry[] {
  const guests: GuestEntry[] = [];
  for (let i = 1; i <= 8; i++) {
    guests.push({
      name: `web-${String(i).padStart(2, '0')}`,
      tags: ['web'],
      cloud_init: { user: 'debian', ip: 'dhcp' },
      ...(i <= 3 ? { placement: { anti_affinity: 'web' } } : {}),
    });
  }
  for (let i = 1; i <= 4; i++) {
    guests.push({
      name: `ct-${i}`,
      kind: 'lxc',
      source: { ostemplate: 'local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst' },
      memory: '512M',
      disks: [{ slot: 'rootfs', size: 8, storage: 'local-lvm' }],
      network: [{ bridge: 'vmbr0', ip: 'dhcp' }],
      tags: ['cache'],
    });
  }
  for (let i = 1; i <= 2; i++) {
    guests.push({
      name: `lab-iso-${i}`,
      source: { iso: 'local:iso/debian-13.1.0-amd64-netinst.iso' },
      disks: [{ size: 16, storage: 'local-lvm' }],
      power: 'stopped',
    });
    guests.push({
      name: `lab-img-${i}`,
      source: { image: 'local:import/debian-13-genericcloud-amd64.qcow2' },
      disks: [{ size: 10, storage: 'local-lvm' }],
    });
  }
  for (const service of ['queue', 'search']) {
    guests.push({ service, vmid: service === 'queue' ? 3050 : 3051, depends_on: ['web-01'], memory: '1G' });
  }
  guests.push({
    name: 'pg-01',
    node: 'pve01',
    cores: 4,
    memory: '4G',
    disks: [{ size: 20 }],
    onboot: true,
    tags: ['db'],
  });
  guests.push({ service: 'backup', depends_on: ['pg-01'], power: 'stopped' });
  return guests;
}

async function writeManifest(guests: GuestEntry[], folder = manifests): Promise<void> {
  const manifest = {
    environment: 'home',
    claims: { tags: ['fleet'], vmids: '3000-3099' },
    defaults: {
      source: { template: 'tpl-debian-13' },
      cores: 1,
      memory: '2G',
      network: [{ bridge: 'vmbr0' }],
      power: 'running',
    },
    guests,
  };
  await writeFile(join(folder, 'fleet.yaml'), stringify(manifest));
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pm-reconcile-'));
  manifests = join(dir, 'manifests');
  driftDir = join(dir, 'drift');
  await mkdir(manifests);
  env = await startSimulatedEnvironment({ scenario: await emptyHomelab(), speed: 500 });
  worker = await startTestWorker({
    activities: { ...createActivities(env.deps), ...createReconcileActivities(env.deps, { driftDir, path: dir }) },
  });
});
afterAll(async () => {
  await worker?.client.schedule
    .getHandle(driftScheduleId('home'))
    .delete()
    .catch(() => undefined);
  await worker?.shutdown();
  await env?.stop();
  await rm(dir, { recursive: true, force: true });
});

let seq = 0;
function start(overrides: Partial<ReconcileInput> = {}): Promise<WorkflowHandle> {
  const dryRun = overrides.dryRun ?? false;
  const input: ReconcileInput = {
    environment: 'home',
    dryRun,
    manifests,
    maxParallel: 6,
    meta: { requester: 'alice', environment: 'home', dryRun, approvalTimeoutMs: 120_000, autoApprove: ['low'] },
    ...overrides,
  };
  return worker.client.workflow.start('reconcile', {
    taskQueue: worker.taskQueue,
    workflowId: `test/reconcile/${Date.now()}-${seq++}`,
    args: [input],
  });
}

async function plan(): Promise<OperationPlan<ReconcileDetails>> {
  const handle = await start({ dryRun: true });
  const result = (await handle.result()) as { outcome: string; plan: OperationPlan<ReconcileDetails> };
  expect(result.outcome).toBe('dry-run');
  return result.plan;
}

/** Starts a reconcile, has bob approve the plan alice requested, and returns the result. */
async function applyApproved(): Promise<{ plan: OperationPlan<ReconcileDetails>; result: ReconcileResult }> {
  const handle = await start();
  const status = await waitForPhase(handle, 'awaiting-approval');
  await handle.executeUpdate(approveUpdate, {
    args: [signed(handle.workflowId, 'approved', { by: 'bob', planVersion: status.plan!.version })],
  });
  const outcome = (await handle.result()) as {
    outcome: string;
    plan: OperationPlan<ReconcileDetails>;
    result: ReconcileResult;
  };
  expect(outcome.outcome).toBe('completed');
  return { plan: outcome.plan, result: outcome.result };
}

const guestNamed = (name: string) => [...env.sim.state.guests.values()].find((g) => g.name === name);

describe('a fleet of 20 guests', () => {
  it('is applied to empty nodes, after approval, and then plans zero changes', async () => {
    await writeManifest(fleet());
    const first = await plan();
    expect(first.details!.counts).toEqual({ create: 20, update: 0, replace: 0, delete: 0 });
    expect(first.risk).toBe('medium');
    expect(first.details!.text).toContain('Plan: 20 to add, 0 to change, 0 to replace, 0 to destroy');
    // Dependencies are waves: web-01 before the services, pg-01 before backup.
    const wave = (key: string) => first.details!.changes.find((c) => c.key === key)!.wave;
    expect(wave('queue#3050')).toBeGreaterThan(wave('web-01'));
    expect(wave('backup')).toBeGreaterThan(wave('pg-01'));

    const { result } = await applyApproved();
    expect(result).toMatchObject({ outcome: 'applied', changed: 20, failed: 0, skipped: 0, remaining: { changes: 0 } });

    const created = [...env.sim.state.guests.values()].filter((g) => !g.template);
    expect(created).toHaveLength(20);
    expect(created.every((g) => g.vmid >= 3000 && g.vmid <= 3099)).toBe(true);
    expect(guestNamed('auto-queue-3050')?.status).toBe('running');
    expect(guestNamed('lab-iso-1')?.status).toBe('stopped');
    expect(guestNamed('pg-01')).toMatchObject({ node: 'pve01' });
    expect(guestNamed('pg-01')!.config['scsi0']).toMatch(/size=20G/);
    const webNodes = ['web-01', 'web-02', 'web-03'].map((n) => guestNamed(n)!.node);
    expect(new Set(webNodes).size).toBe(3);
    expect(guestNamed('ct-1')!.config['tags']).toBe('cache;fleet');

    const second = await plan();
    expect(second.details!.changes).toEqual([]);
    expect(second.steps).toEqual([]);
    expect(second.details!.text).toContain('No changes. The 20 guests of the manifest match the cluster.');
  });

  it('changes memory in place: same guest, a safety snapshot, the exact parameters with the config digest', async () => {
    const before = guestNamed('web-04')!;
    await writeManifest(fleet().map((g) => (g['name'] === 'web-04' ? { ...g, memory: '3G' } : g)));
    const next = await plan();
    expect(next.details!.changes.map((c) => [c.key, c.action])).toEqual([['web-04', 'update']]);
    const change = next.details!.changes[0]!;
    expect(change.fields).toEqual([{ field: 'memory', from: '2048 MiB', to: '3072 MiB', restart: true }]);
    expect(change.steps.map((s) => s.action)).toEqual(['snapshot', 'config', 'reboot']);
    expect(change.steps[1]!.params).toEqual({ memory: '3072', digest: before.digest });

    const { result } = await applyApproved();
    expect(result).toMatchObject({ outcome: 'applied', changed: 1 });
    const after = guestNamed('web-04')!;
    expect(after.vmid).toBe(before.vmid);
    expect(after.config['memory']).toBe('3072');
    expect([...after.snapshots.keys()].some((s) => s.startsWith('pm_pre_reconcile_'))).toBe(true);
  });

  it('plans a template change as a replacement, which only a second person can approve', async () => {
    const old = guestNamed('web-05')!;
    await writeManifest(
      fleet().map((g) => {
        if (g['name'] === 'web-04') return { ...g, memory: '3G' };
        if (g['name'] === 'web-05') return { ...g, source: { template: 'tpl-talos-1-11' } };
        return g;
      }),
    );
    const handle = await start();
    const status = await waitForPhase(handle, 'awaiting-approval');
    const replan = status.plan as OperationPlan<ReconcileDetails>;
    expect(replan.risk).toBe('high');
    const change = replan.details!.changes.find((c) => c.key === 'web-05')!;
    expect(change).toMatchObject({ action: 'replace', vmid: old.vmid, risk: 'high' });
    expect(change.fields[0]).toEqual({
      field: 'source',
      from: 'template:tpl-debian-13',
      to: 'template:tpl-talos-1-11',
      replaces: true,
    });
    expect(replan.details!.text).toContain('-/+ guest "web-05" must be replaced');
    expect(replan.details!.text).toContain('# forces replacement');

    await expect(
      handle.executeUpdate(approveUpdate, {
        args: [signed(handle.workflowId, 'approved', { by: 'alice', planVersion: 1 })],
      }),
    ).rejects.toThrow();
    await handle.executeUpdate(approveUpdate, {
      args: [signed(handle.workflowId, 'approved', { by: 'bob', planVersion: 1 })],
    });
    const outcome = (await handle.result()) as { result: ReconcileResult };
    expect(outcome.result).toMatchObject({ outcome: 'applied', changed: 1 });
    expect(env.sim.state.guests.has(old.vmid)).toBe(false);
    const replacement = guestNamed('web-05')!;
    expect(replacement.vmid).not.toBe(old.vmid);
    expect(replacement.config['description']).toContain('proxmox-manager source: template:tpl-talos-1-11');
  });

  it('never overwrites a guest changed after the plan was made: its config step refuses', async () => {
    await writeManifest(
      fleet().map((g) => {
        if (g['name'] === 'web-04') return { ...g, memory: '3G' };
        if (g['name'] === 'web-05') return { ...g, source: { template: 'tpl-talos-1-11' } };
        if (g['name'] === 'web-06') return { ...g, memory: '1G' };
        return g;
      }),
    );
    const handle = await start();
    await waitForPhase(handle, 'awaiting-approval');
    // Someone edits web-06 in PVE while the plan waits for approval.
    guestNamed('web-06')!.update((c) => (c['memory'] = '6144'));
    await handle.executeUpdate(approveUpdate, {
      args: [signed(handle.workflowId, 'approved', { by: 'bob', planVersion: 1 })],
    });
    const outcome = (await handle.result()) as { result: ReconcileResult };
    expect(outcome.result.outcome).toBe('incomplete');
    expect(outcome.result.guests).toEqual([
      expect.objectContaining({
        key: 'web-06',
        state: 'failed',
        failedStep: 'web-06/config',
        error: expect.stringMatching(/changed since the plan was made/),
      }),
    ]);
    expect(guestNamed('web-06')!.config['memory']).toBe('6144');
  });
});

describe('drift', () => {
  it('is found by the schedule — what differs and since when — and kept until it is closed', async () => {
    await writeManifest(
      fleet().map((g) => {
        if (g['name'] === 'web-04') return { ...g, memory: '3G' };
        if (g['name'] === 'web-05') return { ...g, source: { template: 'tpl-talos-1-11' } };
        return g;
      }),
    );
    // web-06 was left at 6144 MiB by the previous test; the manifest now says 2G again.
    const schedules = await ensureDriftSchedule(worker.client, env.config, {
      taskQueue: worker.taskQueue,
      manifests,
      environments: ['home'],
    });
    expect(schedules).toEqual([{ environment: 'home', scheduleId: 'drift/home', created: true }]);
    const again = await ensureDriftSchedule(worker.client, env.config, {
      taskQueue: worker.taskQueue,
      manifests,
      environments: ['home'],
    });
    expect(again[0]!.created).toBe(false);

    const first = await runSchedule();
    expect(first.state).toBe('drifted');
    expect(first.items).toEqual([
      expect.objectContaining({
        key: 'web-06',
        action: 'update',
        fields: [
          expect.objectContaining({
            field: 'memory',
            expected: '2048 MiB',
            actual: '6144 MiB',
            since: first.checkedAt,
          }),
        ],
      }),
    ]);

    // Changes behind the manifest's back: a container's cores edited, a VM created in the claimed range.
    guestNamed('ct-2')!.update((c) => (c['cores'] = '3'));
    const client = await env.deps.pve('home');
    await client.qemu.create({ node: 'pve03', vmid: 3099, name: 'stray', memory: '512', cores: 1 });
    const second = await runSchedule();
    const web06 = second.items.find((i) => i.key === 'web-06')!;
    expect(web06.since).toBe(first.checkedAt);
    expect(second.items.find((i) => i.key === 'ct-2')).toMatchObject({
      fields: [{ field: 'cores', expected: '1', actual: '3', since: second.checkedAt }],
    });
    expect(second.items.find((i) => i.key === 'stray')).toMatchObject({ action: 'delete', vmid: 3099, risk: 'high' });
    expect(JSON.parse(await readFile(join(driftDir, 'home.json'), 'utf8'))).toMatchObject({
      checkedAt: second.checkedAt,
      state: 'drifted',
    });
  });

  it('is listed by the API and closed through a reconcile operation that needs approval', async () => {
    const api = driftApi({
      config: withDriftTokens(env.config),
      client: worker.client,
      taskQueue: worker.taskQueue,
      store: createDriftStore(driftDir),
      audit: env.deps.audit,
    });
    const listed = await api.call('GET', '/v1/drift', 'viewer');
    expect(listed.status).toBe(200);
    expect(listed.body.reports.map((r: DriftReport) => [r.id, r.state, r.items.map((i) => i.key).sort()])).toEqual([
      ['home', 'drifted', ['ct-2', 'stray', 'web-06']],
    ]);

    const started = await api.call('POST', '/v1/drift/home/apply', 'operator');
    expect(started.status).toBe(202);
    const handle = worker.client.workflow.getHandle(started.body.id);
    const status = await waitForPhase(handle, 'awaiting-approval');
    expect(status.plan!.risk).toBe('high');
    expect(
      (status.plan as OperationPlan<ReconcileDetails>).details!.changes.map((c) => [c.key, c.action]).sort(),
    ).toEqual([
      ['ct-2', 'update'],
      ['stray', 'delete'],
      ['web-06', 'update'],
    ]);
    await handle.executeUpdate(approveUpdate, {
      args: [signed(handle.workflowId, 'approved', { by: 'bob', planVersion: 1 })],
    });
    const outcome = (await handle.result()) as { result: ReconcileResult };
    expect(outcome.result).toMatchObject({ outcome: 'applied', changed: 3, fromDrift: { reportId: 'home' } });
    expect(env.sim.state.guests.has(3099)).toBe(false);
    expect(guestNamed('web-06')!.config['memory']).toBe('2048');

    const after = await runSchedule();
    expect(after).toMatchObject({ state: 'in-sync', items: [], lastInSyncAt: after.checkedAt });
    const refused = await api.call('POST', '/v1/drift/home/apply', 'operator');
    expect(refused).toMatchObject({ status: 409, body: { error: { code: 'no_drift' } } });
  });
});

describe('an invalid manifest', () => {
  it('is refused with every problem as path: reason', async () => {
    const broken = join(dir, 'broken');
    await mkdir(broken);
    await writeFile(
      join(broken, 'fleet.yaml'),
      stringify({
        environment: 'home',
        guests: [{ name: 'x', memory: 'lots' }, { name: 'y', kind: 'lxc', cloud_init: {} }, { service: 'Bad_Name' }],
      }),
    );
    const handle = await start({ manifests: broken });
    const failure = await handle.result().catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    const message = String((failure as WorkflowFailedError).cause?.message);
    expect(message).toContain("fleet.yaml:guests.0.memory: 'lots' is not a memory size");
    expect(message).toContain(
      'fleet.yaml:guests.1.cloud_init: containers take their addresses from network[].ip, not cloud-init',
    );
    expect(message).toContain('fleet.yaml:guests.2.service: must be a service name');

    // Drift detection records it instead of failing: the API then shows why drift is unknown.
    const report = (await worker.client.workflow.execute('detectDrift', {
      taskQueue: worker.taskQueue,
      workflowId: `test/drift-invalid/${Date.now()}`,
      args: [{ environment: 'home', manifests: broken }],
    })) as DriftReport;
    expect(report).toMatchObject({
      state: 'invalid',
      problems: expect.arrayContaining([expect.stringMatching(/^fleet\.yaml:guests\.0\.memory: /)]),
    });
  });
});

/** Triggers the drift schedule and returns the report of the run it started. */
async function runSchedule(): Promise<DriftReport> {
  const schedule = worker.client.schedule.getHandle(driftScheduleId('home'));
  const seen = new Set((await schedule.describe()).info.recentActions.map((a) => a.action.workflow.workflowId));
  // A scheduled run's workflow id ends in the second it starts: two triggers in one second would collide.
  await new Promise((r) => setTimeout(r, 1010 - (Date.now() % 1000)));
  await schedule.trigger();
  for (let i = 0; i < 300; i++) {
    const started = (await schedule.describe()).info.recentActions.find((a) => !seen.has(a.action.workflow.workflowId));
    if (started)
      return (await worker.client.workflow.getHandle(started.action.workflow.workflowId).result()) as DriftReport;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('the drift schedule did not start a run');
}

describe('a cancelled reconcile', () => {
  it('starts no further guest, finishes the one under way, and says which changes were not made', async () => {
    const batch = join(dir, 'batch');
    await mkdir(batch);
    const containers = Array.from({ length: 8 }, (_, i) => ({
      name: `batch-${i + 1}`,
      kind: 'lxc',
      source: { ostemplate: 'local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst' },
      memory: '512M',
      disks: [{ slot: 'rootfs', size: 8, storage: 'local-lvm' }],
      network: [{ bridge: 'vmbr0', ip: 'dhcp' }],
    }));
    await writeFile(
      join(batch, 'batch.yaml'),
      stringify({ environment: 'home', claims: { tags: ['batch'], vmids: '3100-3199' }, guests: containers }),
    );
    // Every API call a little slower, so the cancel finds a guest being created.
    env.sim.faults.setApi({ latencyMs: 100 });
    try {
      const handle = await start({ manifests: batch, maxParallel: 1 });
      const planned = await waitForPhase(handle, 'awaiting-approval');
      await handle.executeUpdate(approveUpdate, {
        args: [signed(handle.workflowId, 'approved', { by: 'bob', planVersion: planned.plan!.version })],
      });
      const { status, runningAtCancel, approvalState } = await cancelWhen(handle, stepRunning());

      expect(status.phase).toBe('cancelled');
      expect(approvalState).toBe('approved');
      expect(runningAtCancel).toHaveLength(1);
      expect(status.steps.filter((s) => s.state === 'running' || s.state === 'failed')).toEqual([]);
      const report = status.cancelled!;
      expect(report.done).toEqual(expect.arrayContaining(runningAtCancel));
      // Each change's steps ran in order up to the cancel: a guest exists exactly when its creation ran.
      const changes = (planned.plan!.details as ReconcileDetails).changes;
      for (const c of changes) {
        const ran = c.steps.map((s) => report.done.includes(s.id));
        expect(ran).toEqual([...ran].sort((a, b) => Number(b) - Number(a)));
        expect([c.key, guestNamed(c.key) !== undefined]).toEqual([c.key, ran[0]]);
      }
      expect(changes.filter((c) => c.steps.every((s) => report.notStarted.includes(s.id))).length).toBeGreaterThan(0);
      expect(env.sim.cluster.tasks.all().filter((t) => t.status === 'running')).toEqual([]);
    } finally {
      env.sim.faults.setApi({ latencyMs: 0 });
    }
  });
});
