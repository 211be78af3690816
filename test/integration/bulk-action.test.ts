/**
 * Bulk actions by tag expression on a real Temporal dev server and the simulator: every
 * matching guest planned from its own pre-flight summary, worked through with bounded
 * parallelism, each with its own outcome.
 */
import { signed } from '../../testkit/approvals.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import type { BulkGuestResult } from '../../workflows/bulk-action.js';
import { bulkActionOperation } from '../../lib/operations/catalog.js';
import { rejectUpdate } from '../../workflows/definitions.js';
import { PmApprovalState } from '../../workflows/search-attributes.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { startTestWorker, type TestWorker } from '../support/temporal.js';
import { bulkScenario } from '../../testkit/bulk-scenario.js';
import { cancelWhen, failureOf, startOperation, stepRunning, waitForPhase } from './lifecycle-helpers.js';

let home: SimulatedEnvironment;
let worker: TestWorker;

beforeAll(async () => {
  home = await startSimulatedEnvironment({ speed: 400 });
  worker = await startTestWorker({ activities: createActivities(home.deps) });
});
afterAll(async () => {
  await worker?.shutdown();
  await home?.stop();
});

const guest = (vmid: number) => home.sim.state.guests.get(vmid)!;

describe('a bulk action by tag expression', () => {
  it('snapshots every guest matching `prod & web`, and nothing else', async () => {
    const handle = await startOperation(worker, 'bulk-action', {
      tags: 'prod & web',
      action: 'snapshot',
      snapshot: 'pre_release',
    });
    const result = await handle.result();
    expect(result.plan.vmids).toEqual([1004, 1012, 1026]);
    expect(result.result.map((r: BulkGuestResult) => [r.vmid, r.outcome])).toEqual([
      [1004, 'succeeded'],
      [1012, 'succeeded'],
      [1026, 'succeeded'],
    ]);
    for (const vmid of [1004, 1012, 1026]) expect(guest(vmid).snapshots.has('pre_release')).toBe(true);
    expect(guest(1003).snapshots.has('pre_release')).toBe(false);
  });

  it('carries on when one guest fails, and reports every guest’s outcome', async () => {
    home.sim.faults.failTask({ type: 'qmshutdown', vmid: 1011, times: 1, message: 'VM quit/powerdown failed' });
    const handle = await startOperation(worker, 'bulk-action', {
      tags: 'dns | monitoring',
      action: 'shutdown',
      types: ['qemu'],
      maxParallel: 2,
    });
    const failure = await failureOf(handle);
    expect(failure.type).toBe('BulkActionIncomplete');
    expect(failure.message).toMatch(/^shutdown failed for 1 of 3 guests: 1011 \(.*VM quit\/powerdown failed/);
    const results = failure.details![0] as BulkGuestResult[];
    expect(results.map((r) => [r.vmid, r.outcome])).toEqual([
      [1001, 'succeeded'],
      [1011, 'failed'],
      [1018, 'succeeded'],
    ]);
    expect(results[1]!.error).toMatch(/VM quit\/powerdown failed/);
    expect([guest(1001).status, guest(1011).status, guest(1018).status]).toEqual(['stopped', 'running', 'stopped']);
  });

  it('needs a second person to delete, and deletes nothing when rejected', async () => {
    const handle = await startOperation(worker, 'bulk-action', { tags: 'lab', action: 'delete' });
    const status = await waitForPhase(handle, 'awaiting-approval');
    expect(status.plan).toMatchObject({ risk: 'high', vmids: [1007, 1025] });
    const targets = (status.plan!.details as { targets: { preflight: string }[] }).targets;
    expect(targets[0]!.preflight).toMatch(/^VM 1007 'installer' on pve01: stopped, tags: lab$/);
    await handle.executeUpdate(rejectUpdate, {
      args: [signed(handle.workflowId, 'rejected', { by: 'bob', planVersion: 1, reason: 'lab still in use' })],
    });
    expect((await handle.result()).outcome).toBe('rejected');
    expect(home.sim.state.guests.has(1007) && home.sim.state.guests.has(1025)).toBe(true);
  });

  it('completes with nothing to do when every matching guest is skipped, saying why', async () => {
    const handle = await startOperation(worker, 'bulk-action', { tags: 'lab', action: 'reboot' });
    const result = await handle.result();
    expect(result).toMatchObject({ outcome: 'nothing-to-do', plan: { steps: [] }, result: [] });
    expect(result.plan.summary).toBe(
      "nothing to do: every guest matching 'lab' is skipped (1007: VM 1007 is not running, so it cannot be rebooted; 1025: VM 1025 is not running, so it cannot be rebooted)",
    );
    expect((await handle.describe()).typedSearchAttributes.get(PmApprovalState)).toBe('not-required');
  });

  it('refuses an expression nothing matches, and one that does not parse, naming the field', async () => {
    expect(
      await failureOf(await startOperation(worker, 'bulk-action', { tags: 'nosuchtag', action: 'stop' })),
    ).toMatchObject({
      type: 'PlanRefused',
      message: "tags: no qemu or lxc guest matches 'nosuchtag'",
    });
    const invalid = bulkActionOperation.body.safeParse({ environment: 'home', tags: 'web &', action: 'stop' });
    expect(invalid.success).toBe(false);
    expect(invalid.error!.issues[0]).toMatchObject({ path: ['tags'], message: "expected a tag at the end of 'web &'" });
  });
});

describe('a bulk action over 200 VMs', () => {
  let big: SimulatedEnvironment;
  let bigWorker: TestWorker;

  beforeAll(async () => {
    big = await startSimulatedEnvironment({ scenario: bulkScenario(200), speed: 1000 });
    bigWorker = await startTestWorker({ activities: createActivities(big.deps) });
  });
  afterAll(async () => {
    await bigWorker?.shutdown();
    await big?.stop();
  });

  it('shuts every one down, never more than maxParallel at once', async () => {
    let peak = 0;
    const sampler = setInterval(() => {
      const running = big.sim.cluster.tasks
        .all()
        .filter((t) => t.status === 'running' && t.type === 'qmshutdown').length;
      peak = Math.max(peak, running);
    }, 2);
    try {
      const handle = await startOperation(bigWorker, 'bulk-action', {
        tags: 'bulk',
        action: 'shutdown',
        maxParallel: 8,
      });
      const result = await handle.result();
      expect(result.result).toHaveLength(200);
      expect(result.result.every((r: BulkGuestResult) => r.outcome === 'succeeded')).toBe(true);
    } finally {
      clearInterval(sampler);
    }
    expect([...big.sim.state.guests.values()].filter((g) => g.status === 'running')).toEqual([]);
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(8);
  });

  it('when cancelled, starts no further guest, lets the snapshots under way finish, and says which guests were not touched', async () => {
    const handle = await startOperation(bigWorker, 'bulk-action', {
      tags: 'bulk',
      action: 'snapshot',
      snapshot: 'before_cancel',
      maxParallel: 4,
    });
    const { status, runningAtCancel, approvalState } = await cancelWhen(handle, stepRunning());

    expect(status.phase).toBe('cancelled');
    expect(approvalState).toBe('auto-approved');
    expect(status.steps.filter((s) => s.state === 'running' || s.state === 'failed')).toEqual([]);
    const report = status.cancelled!;
    expect(report.done).toEqual(expect.arrayContaining(runningAtCancel));
    expect(report.notStarted.length).toBeGreaterThan(0);
    expect(report.done.length + report.notStarted.length).toBe(200);
    const snapshotted = (id: string) =>
      big.sim.state.guests.get(Number(id.split('/')[0]))!.snapshots.has('before_cancel');
    expect(report.done.filter((id) => !snapshotted(id))).toEqual([]);
    expect(report.notStarted.filter(snapshotted)).toEqual([]);
    expect(big.sim.cluster.tasks.all().filter((t) => t.status === 'running')).toEqual([]);
  });
});
