/**
 * Plan -> approve -> apply, end to end on a real Temporal dev server and the simulated
 * cluster, through the vmAction workflow.
 */
import { signed } from '../../testkit/approvals.js';
import { WorkflowFailedError, WorkflowUpdateFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import type { VmActionInput } from '../../lib/operations/catalog.js';
import type { OperationMeta } from '../../lib/operations/plan.js';
import { approveSignal, approveUpdate, rejectUpdate, statusQuery } from '../../workflows/definitions.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { startTestWorker, type TestWorker } from '../support/temporal.js';
import { waitForPhase } from './lifecycle-helpers.js';

let env: SimulatedEnvironment;
let worker: TestWorker;

beforeAll(async () => {
  env = await startSimulatedEnvironment({ speed: 200 });
  worker = await startTestWorker({ activities: createActivities(env.deps) });
});
afterAll(async () => {
  await worker?.shutdown();
  await env?.stop();
});

const meta = (overrides: Partial<OperationMeta> = {}): OperationMeta => ({
  requester: 'alice',
  environment: 'home',
  dryRun: false,
  approvalTimeoutMs: 60_000,
  autoApprove: ['low'],
  ...overrides,
});

let seq = 0;
function start(
  input: Omit<VmActionInput, 'meta' | 'environment' | 'dryRun' | 'shutdownTimeoutSeconds' | 'forceStopAfterTimeout'> & {
    meta?: OperationMeta;
    dryRun?: boolean;
  },
) {
  const body: VmActionInput = {
    environment: 'home',
    dryRun: input.dryRun ?? false,
    shutdownTimeoutSeconds: 60,
    forceStopAfterTimeout: false,
    ...input,
    meta: input.meta ?? meta({ dryRun: input.dryRun ?? false }),
  };
  return worker.client.workflow.start('vmAction', {
    taskQueue: worker.taskQueue,
    workflowId: `test/vm-action/${body.vmid}/${body.action}/${Date.now()}-${seq++}`,
    args: [body],
  });
}

describe('a high-risk operation (delete a VM)', () => {
  it('waits for a second person, refuses self-approval, then deletes exactly that VM', async () => {
    const handle = await start({ vmid: 1017, name: 'ci-runner', action: 'delete' });
    const waiting = await waitForPhase(handle, 'awaiting-approval');
    expect(waiting.plan).toMatchObject({ risk: 'high', vmids: [1017], nodes: ['pve02'] });
    expect(waiting.plan!.steps.map((s) => s.action)).toEqual(['destroy']);
    expect(env.sim.state.guests.has(1017)).toBe(true);

    await expect(
      handle.executeUpdate(approveUpdate, {
        args: [signed(handle.workflowId, 'approved', { by: 'alice', planVersion: 1 })],
      }),
    ).rejects.toThrow(WorkflowUpdateFailedError);
    await expect(
      handle.executeUpdate(approveUpdate, {
        args: [signed(handle.workflowId, 'approved', { by: 'bob', planVersion: 2 })],
      }),
    ).rejects.toThrow(WorkflowUpdateFailedError);
    const decision = await handle.executeUpdate(approveUpdate, {
      args: [signed(handle.workflowId, 'approved', { by: 'bob', planVersion: 1 })],
    });
    expect(decision).toMatchObject({ decision: 'approved', by: 'bob' });

    const result = await handle.result();
    expect(result.outcome).toBe('completed');
    expect(env.sim.state.guests.has(1017)).toBe(false);

    const audit = await env.deps.audit.read({ operationId: handle.workflowId });
    expect(audit.map((r) => r.action)).toEqual(['operation.approved', 'operation.completed']);
    expect(audit[0]!.actor).toBe('bob');
    expect(await env.deps.audit.verify()).toMatchObject({ ok: true });
  });

  it('ignores a replayed or stale approval signal and records why', async () => {
    const handle = await start({ vmid: 1025, name: 'scratch', action: 'delete' });
    await waitForPhase(handle, 'awaiting-approval');
    await handle.signal(approveSignal, signed(handle.workflowId, 'approved', { by: 'alice', planVersion: 1 }));
    await handle.signal(approveSignal, signed(handle.workflowId, 'approved', { by: 'bob', planVersion: 7 }));
    const status = await handle.query(statusQuery);
    expect(status.phase).toBe('awaiting-approval');
    expect(status.ignoredApprovals.map((a) => a.by)).toEqual(['alice', 'bob']);

    await handle.executeUpdate(rejectUpdate, {
      args: [signed(handle.workflowId, 'rejected', { by: 'bob', planVersion: 1, reason: 'still in use' })],
    });
    const result = await handle.result();
    expect(result).toMatchObject({ outcome: 'rejected', approval: { by: 'bob', reason: 'still in use' } });
    expect(env.sim.state.guests.has(1025)).toBe(true);
  });

  it('ends as rejected, having changed nothing, when nobody decides in time', async () => {
    const handle = await start({
      vmid: 1025,
      name: 'scratch',
      action: 'delete',
      meta: meta({ approvalTimeoutMs: 1_000 }),
    });
    const result = await handle.result();
    expect(result).toMatchObject({ outcome: 'rejected', approval: { by: 'system' } });
    expect(env.sim.state.guests.has(1025)).toBe(true);
  });
});

describe('identity checks', () => {
  it('refuses to plan when the name does not belong to the vmid', async () => {
    const handle = await start({ vmid: 1004, name: 'web02', action: 'stop' });
    const failure = await handle.result().catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect(String((failure as WorkflowFailedError).cause?.message)).toMatch(/VM 1004 is named 'web01', not 'web02'/);
    expect(env.sim.state.guests.get(1004)?.status).toBe('running');
  });
});

describe('low-risk operations and dry runs', () => {
  it('auto-approves a low-risk start by policy', async () => {
    const handle = await start({ vmid: 1007, name: 'installer', action: 'start' });
    const result = await handle.result();
    expect(result).toMatchObject({ outcome: 'completed', approval: { by: 'policy' } });
    expect(env.sim.state.guests.get(1007)?.status).toBe('running');
  });

  it('returns the plan of a dry run and changes nothing', async () => {
    const handle = await start({
      vmid: 1005,
      name: 'gitlab',
      action: 'rollback',
      snapshot: 'before-upgrade',
      dryRun: true,
    });
    const result = await handle.result();
    expect(result.outcome).toBe('dry-run');
    expect(result.plan.steps.map((s: { action: string }) => s.action)).toEqual(['snapshot', 'rollback']);
    expect(result.plan.risk).toBe('high');
    expect(env.sim.counters.tasks('qmsnapshot', 1005)).toBe(0);
  });
});
