/**
 * How the API drives operations, against a fake Temporal client: what it starts and with
 * which inputs, how approvals are answered (at once, or by signal when no worker answers),
 * what it lists and shows, what it audits, and how it fails. The same flows run against the
 * real Temporal dev server in test/integration/api-operations.test.ts.
 */
import { ServiceError, WorkflowNotFoundError } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { PmApprovalState, PmEnvironment, PmOperationKind, PmRequester } from '../../workflows/search-attributes.js';
import { signDecision } from '../../lib/approvals/signature.js';
import {
  fakeProxmox,
  operationPath,
  refusal,
  signingKey,
  testApi,
  testConfig,
  updateTimeout,
  validBodies,
  workflowFailure,
} from './api-fakes.js';

const deleteRequest = { environment: 'home', vmid: 1001, name: 'web-1', action: 'delete' };
const expectedId = 'vm-action/home/1001/delete/20251122T042713.579Z';

describe('starting an operation', () => {
  it('starts the catalog workflow with the validated body, the caller and the approval policy', async () => {
    const api = testApi();
    const response = await api.call('POST', '/v1/operations/vm-action', { token: 'operator', body: deleteRequest });
    expect(response.status).toBe(202);
    const body = await response.json();
    expect(body).toEqual({
      id: expectedId,
      runId: expect.any(String),
      kind: 'vm-action',
      state: 'running',
      links: {
        self: `/v1/operations/${encodeURIComponent(expectedId)}`,
        temporalUi: `http://ui.test/namespaces/default/workflows/${encodeURIComponent(expectedId)}`,
      },
    });
    expect(response.headers.get('location')).toBe(body.links.self);

    const workflow = api.temporal.workflows.get(expectedId)!;
    expect(workflow.type).toBe('vmAction');
    expect(workflow.args).toEqual([
      {
        ...deleteRequest,
        dryRun: false,
        shutdownTimeoutSeconds: 120,
        forceStopAfterTimeout: false,
        meta: {
          requester: 'otto',
          environment: 'home',
          dryRun: false,
          approvalTimeoutMs: 24 * 3_600_000,
          autoApprove: ['low'],
        },
      },
    ]);
    expect(workflow.startOptions).toMatchObject({ taskQueue: 'test', workflowId: expectedId });
    expect(workflow.attributes).toEqual(
      expect.arrayContaining([
        { key: PmOperationKind, value: 'vm-action' },
        { key: PmEnvironment, value: 'home' },
        { key: PmRequester, value: 'otto' },
        { key: PmApprovalState, value: 'planning' },
      ]),
    );
  });

  it('records the request in the audit log', async () => {
    const api = testApi();
    await api.call('POST', '/v1/operations/vm-action', { token: 'operator', body: deleteRequest });
    const [record] = await api.audit.read();
    expect(record).toMatchObject({
      actor: 'otto',
      action: 'api.operation.start',
      result: 'started',
      operationId: expectedId,
      kind: 'vm-action',
      environment: 'home',
      detail: { status: 202, method: 'POST', request: { ...deleteRequest, dryRun: false } },
    });
  });

  it('answers an identical request in the same millisecond with 409, and audits it', async () => {
    const api = testApi();
    await api.call('POST', '/v1/operations/vm-action', { token: 'operator', body: deleteRequest });
    const again = await api.call('POST', '/v1/operations/vm-action', { token: 'operator', body: deleteRequest });
    expect(again.status).toBe(409);
    expect((await again.json()).error.code).toBe('already_started');
    expect((await api.audit.read()).map((r) => r.result)).toEqual(['started', 'already_started']);
  });

  it('with dryRun, waits for the plan and returns it', async () => {
    const api = testApi();
    const plan = {
      version: 1,
      summary: 'delete VM 1001 (web-1)',
      risk: 'high',
      reasons: ['deleting destroys the guest'],
      steps: [],
      warnings: [],
      nodes: ['pve1'],
      vmids: [1001],
      estimatedDurationMs: 10_000,
    };
    api.temporal.onStart = (w) => {
      w.result = { outcome: 'dry-run', plan };
    };
    const response = await api.call('POST', '/v1/operations/vm-action', {
      token: 'operator',
      body: { ...deleteRequest, dryRun: true },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      id: expectedId,
      state: 'completed',
      result: { outcome: 'dry-run', plan },
      planText:
        'Plan v1 · risk high · about 10 s\ndelete VM 1001 (web-1)\n\nWhy this risk:\n  - deleting destroys the guest\n\nSteps: none (nothing to do)',
    });
    expect((await api.audit.read())[0]).toMatchObject({ result: 'dry-run' });
  });

  it('with dryRun, answers 422 when the plan cannot be made', async () => {
    const api = testApi();
    api.temporal.onStart = (w) => {
      w.failure = workflowFailure("VM 1001 is named 'db-1', not 'web-1': refusing to act on it");
    };
    const response = await api.call('POST', '/v1/operations/vm-action', {
      token: 'operator',
      body: { ...deleteRequest, dryRun: true },
    });
    expect(response.status).toBe(422);
    expect((await response.json()).error).toEqual({
      code: 'plan_failed',
      message: "the plan could not be made: VM 1001 is named 'db-1', not 'web-1': refusing to act on it",
    });
  });

  it('with dryRun, answers 422 with the reasons when the workflow completed with a refused plan', async () => {
    const api = testApi();
    api.temporal.onStart = (w) => {
      w.result = {
        outcome: 'refused',
        plan: {
          version: 1,
          summary: "refused: VM 1001 is named 'db-1'",
          risk: 'low',
          reasons: ["VM 1001 is named 'db-1', not 'web-1'"],
          steps: [],
        },
      };
    };
    const response = await api.call('POST', '/v1/operations/vm-action', {
      token: 'operator',
      body: { ...deleteRequest, dryRun: true },
    });
    expect(response.status).toBe(422);
    expect((await response.json()).error).toEqual({
      code: 'plan_failed',
      message: "the plan could not be made: VM 1001 is named 'db-1', not 'web-1'",
    });
  });

  it('answers 503 when Temporal is unreachable', async () => {
    const api = testApi();
    api.temporal.startError = new ServiceError('Failed to start Workflow', {
      cause: Object.assign(new Error('14 UNAVAILABLE: No connection established'), {
        code: 14,
        details: 'x',
        metadata: {},
      }),
    });
    const response = await api.call('POST', '/v1/operations/vm-action', { token: 'operator', body: deleteRequest });
    expect(response.status).toBe(503);
    expect((await response.json()).error.code).toBe('temporal_unavailable');
  });

  it('answers anything unexpected with a generic 500 and a correlation id, logging it without secrets', async () => {
    const api = testApi();
    api.temporal.startError = new Error(
      'boom: header was PVEAPIToken=root@pam!ci=0b5c2a9e-1111-2222-3333-444455556666',
    );
    const response = await api.call('POST', '/v1/operations/vm-action', { token: 'operator', body: deleteRequest });
    expect(response.status).toBe(500);
    const { error } = await response.json();
    expect(error).toEqual({
      code: 'internal',
      message: expect.stringMatching(/correlation id/),
      correlationId: expect.stringMatching(/^req_/),
    });
    expect(response.headers.get('x-request-id')).toBe(error.correlationId);
    expect(api.logs).toHaveLength(1);
    expect(api.logs[0]).toContain(error.correlationId);
    expect(api.logs[0]).not.toContain('0b5c2a9e');
    expect(api.logs[0]).not.toMatch(/\n\s+at /);
  });
});

describe('steering a halted rolling maintenance', () => {
  it('sends resume, skip-node or abort-and-return to the workflow as the caller, naming the node', async () => {
    const api = testApi();
    const calls: unknown[] = [];
    api.temporal.seed({
      workflowId: expectedId,
      environment: 'home',
      requester: 'otto',
      update: (name, request) => {
        calls.push({ name, request });
        return { ...request, action: name, at: '2025-11-22T04:30:00Z', halt: 1 };
      },
    });
    const response = await api.call('POST', operationPath(expectedId, '/maintenance/skip-node'), {
      token: 'approver',
      body: { node: 'pve02', reason: 'disk replaced later' },
    });
    expect(response.status).toBe(200);
    expect(calls).toEqual([
      { name: 'skip-node', request: { by: 'anna', node: 'pve02', reason: 'disk replaced later' } },
    ]);
    expect((await api.audit.read())[0]).toMatchObject({
      actor: 'anna',
      action: 'api.operation.maintenance',
      detail: { action: 'skip-node', node: 'pve02' },
    });
  });

  it('refuses an unknown action and a node that is not a node name, naming the field', async () => {
    const api = testApi();
    api.temporal.seed({ workflowId: expectedId, environment: 'home', requester: 'otto' });
    const unknown = await api.call('POST', operationPath(expectedId, '/maintenance/reboot-everything'), {
      token: 'approver',
      body: { node: 'pve02' },
    });
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(await unknown.json())).toContain('action');
    const badNode = await api.call('POST', operationPath(expectedId, '/maintenance/resume'), {
      token: 'approver',
      body: { node: '../pve02' },
    });
    expect(badNode.status).toBe(400);
    expect(JSON.stringify(await badNode.json())).toContain('node');
  });

  it('lets only approvers decide', async () => {
    const api = testApi();
    api.temporal.seed({ workflowId: expectedId, environment: 'home', requester: 'otto' });
    const response = await api.call('POST', operationPath(expectedId, '/maintenance/resume'), {
      token: 'operator',
      body: { node: 'pve02' },
    });
    expect(response.status).toBe(403);
  });
});

describe('deciding on a plan', () => {
  const seed = (
    api: ReturnType<typeof testApi>,
    update?: (name: string, r: { by: string; planVersion: number; reason?: string }) => unknown,
  ) =>
    api.temporal.seed({
      workflowId: expectedId,
      environment: 'home',
      requester: 'otto',
      ...(update ? { update } : {}),
    });

  it('approves through the workflow update, as the caller', async () => {
    const api = testApi();
    const calls: unknown[] = [];
    seed(api, (name, request) => {
      calls.push({ name, request });
      return { decision: 'approved', by: request.by, at: '2025-11-22T04:30:00Z', planVersion: request.planVersion };
    });
    const response = await api.call('POST', operationPath(expectedId, '/approve'), {
      token: 'approver',
      body: { planVersion: 1, reason: 'checked' },
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      id: expectedId,
      state: 'decided',
      decision: { decision: 'approved', by: 'anna', at: '2025-11-22T04:30:00Z', planVersion: 1 },
    });
    // Signed for the workflow's check, with the key only the API and the worker hold.
    const at = '2025-11-22T04:27:13.579Z';
    const fields = {
      operationId: expectedId,
      decision: 'approved' as const,
      by: 'anna',
      planVersion: 1,
      at,
      reason: 'checked',
    };
    const signature = signDecision(signingKey, fields);
    expect(calls).toEqual([
      { name: 'approve', request: { by: 'anna', planVersion: 1, reason: 'checked', at, signature } },
    ]);
    expect((await api.audit.read())[0]).toMatchObject({
      actor: 'anna',
      action: 'api.operation.approve',
      result: 'approved',
      operationId: expectedId,
      environment: 'home',
      detail: { planVersion: 1, reason: 'checked' },
    });
  });

  it('answers 503 when it cannot sign the decision, without asking the workflow', async () => {
    const config = testConfig();
    config.approvals.signing_key = { env: 'PM_TEST_UNSET_SIGNING_KEY' };
    const api = testApi({ config });
    const calls: unknown[] = [];
    seed(api, (name) => calls.push(name));
    const response = await api.call('POST', operationPath(expectedId, '/approve'), {
      token: 'approver',
      body: { planVersion: 1 },
    });
    expect(response.status).toBe(503);
    expect((await response.json()).error).toEqual({
      code: 'signing_key_unavailable',
      message:
        'decisions cannot be signed: approvals.signing_key (environment variable PM_TEST_UNSET_SIGNING_KEY) is not available',
    });
    expect(calls).toEqual([]);
  });

  it("answers the workflow's refusal at once with 409 and its reason", async () => {
    const api = testApi();
    seed(api, () => {
      throw refusal('a high-risk operation cannot be approved by the actor who requested it');
    });
    const response = await api.call('POST', operationPath(expectedId, '/approve'), {
      token: 'admin',
      body: { planVersion: 1 },
    });
    expect(response.status).toBe(409);
    expect((await response.json()).error).toEqual({
      code: 'refused',
      message: 'a high-risk operation cannot be approved by the actor who requested it',
    });
    expect((await api.audit.read())[0]).toMatchObject({
      result: 'refused',
      detail: { message: expect.stringMatching(/high-risk/) },
    });
  });

  it('falls back to a signal when no worker answers the update, and says so', async () => {
    const api = testApi();
    const workflow = seed(api, () => {
      throw updateTimeout();
    });
    const response = await api.call('POST', operationPath(expectedId, '/reject'), {
      token: 'approver',
      body: { planVersion: 2, reason: 'wrong VM' },
    });
    expect(response.status).toBe(202);
    expect(await response.json()).toMatchObject({ id: expectedId, state: 'accepted' });
    const at = '2025-11-22T04:27:13.579Z';
    const signature = signDecision(signingKey, {
      operationId: expectedId,
      decision: 'rejected',
      by: 'anna',
      planVersion: 2,
      at,
      reason: 'wrong VM',
    });
    expect(workflow.signals).toEqual([
      { name: 'reject-signal', args: [{ by: 'anna', planVersion: 2, reason: 'wrong VM', at, signature }] },
    ]);
    expect((await api.audit.read())[0]).toMatchObject({ action: 'api.operation.reject', result: 'signalled' });
  });

  it('refuses to decide on an operation that has ended, without asking the workflow', async () => {
    const api = testApi();
    const workflow = seed(api, () => {
      throw new Error('must not be called');
    });
    workflow.status = 'COMPLETED';
    const response = await api.call('POST', operationPath(expectedId, '/approve'), {
      token: 'approver',
      body: { planVersion: 1 },
    });
    expect(response.status).toBe(409);
    expect((await response.json()).error.code).toBe('not_running');
  });

  it('answers 409 when the operation ends between the API looking at it and the update reaching it', async () => {
    const api = testApi();
    seed(api, () => {
      throw new WorkflowNotFoundError('workflow execution already completed', expectedId, undefined);
    });
    const response = await api.call('POST', operationPath(expectedId, '/approve'), {
      token: 'approver',
      body: { planVersion: 1 },
    });
    expect(response.status).toBe(409);
    expect((await response.json()).error.code).toBe('not_running');
  });

  it('answers 404 for an operation that does not exist, and for a workflow that is not an operation', async () => {
    const api = testApi();
    api.temporal.workflows.set('someone-elses-workflow', {
      ...api.temporal.seed({ workflowId: 'tmp', environment: 'home' }),
      workflowId: 'someone-elses-workflow',
      attributes: [],
    });
    for (const id of ['vm-action/home/9/delete/x', 'someone-elses-workflow']) {
      const response = await api.call('POST', operationPath(id, '/approve'), {
        token: 'approver',
        body: { planVersion: 1 },
      });
      expect(response.status).toBe(404);
    }
  });
});

describe('cancelling', () => {
  it('requests cancellation of a running operation', async () => {
    const api = testApi();
    const workflow = api.temporal.seed({ workflowId: expectedId, environment: 'home' });
    const response = await api.call('POST', operationPath(expectedId, '/cancel'), {
      token: 'operator',
      body: { reason: 'maintenance moved' },
    });
    expect(response.status).toBe(202);
    expect(workflow.cancelRequested).toBe(true);
    expect((await api.audit.read())[0]).toMatchObject({
      action: 'api.operation.cancel',
      result: 'cancel-requested',
      detail: { reason: 'maintenance moved' },
    });
  });

  it('refuses to cancel an operation that has ended', async () => {
    const api = testApi();
    const workflow = api.temporal.seed({ workflowId: expectedId, environment: 'home', status: 'FAILED' });
    const response = await api.call('POST', operationPath(expectedId, '/cancel'), { token: 'operator' });
    expect(response.status).toBe(409);
    expect(workflow.cancelRequested).toBe(false);
  });
});

describe('reading operations', () => {
  const published = {
    phase: 'awaiting-approval',
    approvalState: 'pending',
    plan: { version: 1, summary: 'delete VM 1001 (web-1)', risk: 'high', stepCount: 1 },
    progress: { pending: 1, running: 0, succeeded: 0, failed: 0, skipped: 0 },
  };
  const plan = {
    version: 1,
    summary: 'delete VM 1001 (web-1)',
    risk: 'high' as const,
    reasons: ['destroys VM 1001'],
    steps: [{ id: 'destroy', action: 'destroy', vmid: 1001, description: 'destroy VM 1001' }],
    warnings: [],
    nodes: ['pve1'],
    vmids: [1001],
    estimatedDurationMs: 1000,
  };
  const queried = {
    phase: 'awaiting-approval' as const,
    requester: 'otto',
    environment: 'home',
    dryRun: false,
    approvalState: 'pending' as const,
    steps: [],
    ignoredApprovals: [],
  };

  it('lists through a visibility query built from the filters', async () => {
    const api = testApi();
    api.temporal.seed({ workflowId: 'a', environment: 'home' });
    api.temporal.seed({ workflowId: 'b', environment: 'home' });
    api.temporal.seed({ workflowId: 'c', environment: 'home' });
    const response = await api.call(
      'GET',
      '/v1/operations?kind=vm-action&environment=home&node=pve1&state=pending&requester=otto&risk=high&vmid=1001&pageSize=2',
      {
        token: 'viewer',
      },
    );
    expect(response.status).toBe(200);
    expect(api.temporal.listQueries).toEqual([
      "PmOperationKind IS NOT NULL AND PmOperationKind = 'vm-action' AND PmEnvironment = 'home' AND PmNodes = 'pve1' AND " +
        "PmRequester = 'otto' AND PmRisk = 'high' AND PmVmids = '1001' AND PmApprovalState = 'pending'",
    ]);
    expect((await response.json()).operations.map((o: { id: string }) => o.id)).toEqual(['a', 'b']);
  });

  it('pages with nextPageToken until the last page, which has none', async () => {
    const api = testApi();
    for (const id of ['a', 'b', 'c']) api.temporal.seed({ workflowId: id, environment: 'home' });
    const first = await (await api.call('GET', '/v1/operations?pageSize=2', { token: 'viewer' })).json();
    expect(first.operations.map((o: { id: string }) => o.id)).toEqual(['a', 'b']);
    const second = await (
      await api.call('GET', `/v1/operations?pageSize=2&pageToken=${first.nextPageToken}`, { token: 'viewer' })
    ).json();
    expect(second).toEqual({ operations: [expect.objectContaining({ id: 'c' })] });
  });

  it('answers a page token Temporal refuses with 400 naming pageToken', async () => {
    const response = await testApi().call('GET', '/v1/operations?pageToken=bm90LWEtcGFnZQ', { token: 'viewer' });
    expect(response.status).toBe(400);
    expect((await response.json()).error.details).toEqual([
      { path: 'pageToken', message: 'must be the nextPageToken of a previous page' },
    ]);
  });

  it('lists each operation with the status it published, without asking its workflow', async () => {
    const api = testApi();
    api.temporal.seed({
      workflowId: 'a',
      environment: 'home',
      memo: { status: published },
      query: () => {
        throw new Error('the list must not query');
      },
    });
    const { operations } = await (await api.call('GET', '/v1/operations', { token: 'viewer' })).json();
    expect(operations).toEqual([expect.objectContaining({ id: 'a', approvalState: 'pending', status: published })]);
  });

  it('filters by execution state with visibility’s spelling', async () => {
    const api = testApi();
    await api.call('GET', '/v1/operations?state=cancelled', { token: 'viewer' });
    await api.call('GET', '/v1/operations?state=timed-out', { token: 'viewer' });
    expect(api.temporal.listQueries).toEqual([
      "PmOperationKind IS NOT NULL AND ExecutionStatus = 'Canceled'",
      "PmOperationKind IS NOT NULL AND ExecutionStatus = 'TimedOut'",
    ]);
  });

  it('shows a running operation as its workflow published it, with no worker to ask', async () => {
    const api = testApi();
    api.temporal.seed({
      workflowId: expectedId,
      environment: 'home',
      memo: { summary: 'delete VM 1001 (web-1)', status: published },
    });
    const response = await api.call('GET', operationPath(expectedId), { token: 'viewer' });
    expect(response.status).toBe(200);
    const body = await response.json();
    expect(body).toMatchObject({
      id: expectedId,
      kind: 'vm-action',
      environment: 'home',
      requester: 'otto',
      state: 'running',
      summary: 'delete VM 1001 (web-1)',
      approvalState: 'pending',
      status: published,
    });
    expect(body).not.toHaveProperty('plan');
    expect(body).not.toHaveProperty('planUnavailable');
  });

  it('adds the whole plan from the status query on include=plan', async () => {
    const api = testApi();
    api.temporal.seed({
      workflowId: expectedId,
      environment: 'home',
      memo: { status: published },
      query: () => ({ ...queried, plan, steps: [{ id: 'destroy', state: 'pending' }] }),
    });
    const body = await (await api.call('GET', `${operationPath(expectedId)}?include=plan`, { token: 'viewer' })).json();
    expect(body).toMatchObject({
      status: published,
      plan,
      steps: [{ id: 'destroy', state: 'pending' }],
      planText: expect.stringContaining('destroy VM 1001'),
    });
  });

  it('says why the plan is missing when the status query fails, and still answers the rest', async () => {
    const api = testApi();
    api.temporal.seed({ workflowId: expectedId, environment: 'home', memo: { status: published } });
    const body = await (await api.call('GET', `${operationPath(expectedId)}?include=plan`, { token: 'viewer' })).json();
    expect(body).toMatchObject({ status: published, planUnavailable: expect.stringMatching(/status query failed/) });
    expect(body).not.toHaveProperty('plan');
  });

  it('shows the result of a completed operation and the failure of a failed one', async () => {
    const api = testApi();
    api.temporal.seed({
      workflowId: 'done',
      environment: 'home',
      status: 'COMPLETED',
      result: { outcome: 'completed' },
    });
    api.temporal.seed({
      workflowId: 'broken',
      environment: 'home',
      status: 'FAILED',
      failure: workflowFailure('VM 1001 is locked (backup)'),
    });
    expect(await (await api.call('GET', operationPath('done'), { token: 'viewer' })).json()).toMatchObject({
      state: 'completed',
      result: { outcome: 'completed' },
    });
    expect(await (await api.call('GET', operationPath('broken'), { token: 'viewer' })).json()).toMatchObject({
      state: 'failed',
      failure: { type: 'ApplicationFailure', message: 'VM 1001 is locked (backup)' },
    });
  });
});

describe('inventory', () => {
  const guests = async (query: string) => {
    const response = await testApi().call('GET', `/v1/inventory?environment=home${query}`, { token: 'viewer' });
    expect(response.status).toBe(200);
    return ((await response.json()).guests as { vmid: number }[]).map((g) => g.vmid);
  };

  it('filters guests by state, type, tag and node', async () => {
    expect(await guests('')).toEqual([1001, 1002, 2001]);
    expect(await guests('&state=running')).toEqual([1001, 2001]);
    expect(await guests('&type=lxc')).toEqual([2001]);
    expect(await guests('&tag=web')).toEqual([1001, 2001]);
    expect(await guests('&node=pve2')).toEqual([1002]);
  });

  /** An API whose Proxmox counts its reads, on a clock the test moves. */
  const counted = () => {
    const clock = { now: Date.parse('2025-11-22T04:27:13.579Z') };
    const proxmox = fakeProxmox();
    let reads = 0;
    const api = testApi({
      now: () => new Date(clock.now),
      proxmox: { ...proxmox, inventory: (environment) => (reads++, proxmox.inventory(environment)) },
    });
    const get = (query = '', headers: Record<string, string> = {}) =>
      api.call('GET', `/v1/inventory?environment=home${query}`, { token: 'viewer', headers });
    return { clock, get, reads: () => reads };
  };

  it('answers concurrent requests, and every request within 2 s, from one read of PVE', async () => {
    const { clock, get, reads } = counted();
    const answers = await Promise.all([get(), get(), get('&type=lxc'), get('&state=running')]);
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    clock.now += 2_000;
    expect((await get()).headers.get('age')).toBe('2');
    expect(reads()).toBe(1);
    clock.now += 1;
    await get();
    expect(reads()).toBe(2);
  });

  it('reads PVE again on fresh=true or Cache-Control: no-cache', async () => {
    const { get, reads } = counted();
    await get();
    await get('&fresh=true');
    await get('', { 'cache-control': 'no-cache' });
    expect(reads()).toBe(3);
  });

  it('answers 304 to an If-None-Match naming the current ETag, and 200 with the body to an old one', async () => {
    const { get } = counted();
    const first = await get();
    const etag = first.headers.get('etag')!;
    expect(first.headers.get('cache-control')).toBe('private, no-cache');
    const unchanged = await get('', { 'if-none-match': etag });
    expect(unchanged.status).toBe(304);
    expect(await unchanged.text()).toBe('');
    const filtered = await get('&type=lxc', { 'if-none-match': etag });
    expect(filtered.status).toBe(200);
    expect(filtered.headers.get('etag')).not.toBe(etag);
  });

  it('answers 502 when the Proxmox API fails, without credentials in the message', async () => {
    const api = testApi({
      proxmox: {
        ...fakeProxmox(),
        inventory: async () => {
          throw new Error('connect ECONNREFUSED (sent PVEAPIToken=root@pam!x=0b5c2a9e-1111-2222-3333-444455556666)');
        },
        ping: async () => [],
      },
    });
    const response = await api.call('GET', '/v1/inventory?environment=home', { token: 'viewer' });
    expect(response.status).toBe(502);
    const text = await response.text();
    expect(text).toContain('ECONNREFUSED');
    expect(text).not.toContain('0b5c2a9e');
  });
});

describe('health', () => {
  it('reports each node, and is not ready without Temporal', async () => {
    const api = testApi();
    const ready = await (await api.call('GET', '/readyz')).json();
    expect(ready.environments.home).toEqual({
      status: 'degraded',
      nodes: [
        { node: 'pve1', status: 'ok' },
        { node: 'pve2', status: 'unauthorized' },
      ],
    });
    api.temporal.reachable = false;
    const response = await api.call('GET', '/readyz');
    expect(response.status).toBe(503);
    expect((await response.json()).temporal.status).toBe('unreachable');
  });

  it('is not ready when an environment has no usable node', async () => {
    const api = testApi({
      proxmox: {
        ...fakeProxmox(),
        inventory: async () => ({ nodes: [], guests: [] }),
        ping: async (env) =>
          env === 'home' ? [{ node: 'pve1', status: 'unreachable' }] : [{ node: 'c1', status: 'ok' }],
      },
    });
    const response = await api.call('GET', '/readyz');
    expect(response.status).toBe(503);
    expect((await response.json()).environments.home.status).toBe('unavailable');
  });
});

describe('audit endpoints', () => {
  it('shows a scoped token only the records of its environments', async () => {
    const api = testApi();
    await api.audit.append({ actor: 'otto', action: 'api.operation.start', result: 'started', environment: 'home' });
    await api.audit.append({ actor: 'otto', action: 'api.operation.start', result: 'started', environment: 'cloud' });
    const all = await (await api.call('GET', '/v1/audit?action=api.operation.*', { token: 'viewer' })).json();
    const scoped = await (await api.call('GET', '/v1/audit?action=api.operation.*', { token: 'homeAdmin' })).json();
    expect(all.records.map((r: { environment: string }) => r.environment)).toEqual(['home', 'cloud']);
    expect(scoped.records.map((r: { environment: string }) => r.environment)).toEqual(['home']);
  });

  it('verifies the chain', async () => {
    const api = testApi();
    await api.call('POST', '/v1/operations/vm-action', { token: 'operator', body: validBodies['vm-action'] });
    expect(await (await api.call('GET', '/v1/audit/verify', { token: 'viewer' })).json()).toEqual({
      ok: true,
      records: 1,
    });
  });
});
