/**
 * The API end to end: HTTP -> API -> real Temporal dev server -> worker (the real workflows
 * and activities) -> simulated PVE cluster, with the audit log shared by API and worker.
 * A destructive operation is planned, refused when its requester approves it, approved by a
 * second person, applied, and every step is in a verified audit log.
 */
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { createApp } from '../../api/app.js';
import { tokenHash } from '../../api/auth.js';
import type { ApiTimeouts } from '../../api/deps.js';
import { createReadOnlyProxmox } from '../../api/proxmox.js';
import { createAuditLog } from '../../lib/audit/log.js';
import { AppConfig } from '../../lib/config/schema.js';
import { startSimulator, type SimulatedCluster } from '../../sim/index.js';
import { buildWorkerDeps } from '../../worker/deps.js';
import { startTestWorker, testConnection, uniqueTaskQueue, type TestWorker } from '../support/temporal.js';
import { until } from '../support/until.js';

const tokens = {
  root: 'it-root-token-3f9a',
  otto: 'it-otto-token-81c2',
  anna: 'it-anna-token-5d7e',
  vera: 'it-vera-token-c04b',
};
type Actor = keyof typeof tokens;

const credentialVariable = 'PM_IT_API_HOME_TOKEN';
const vms = [1001, 1002, 1003, 1004, 1005, 1006].map((vmid) => ({ vmid, name: `web-${vmid}` }));

let sim: SimulatedCluster;
let config: AppConfig;
let worker: TestWorker;
const servers: ServerType[] = [];
const extraWorkers: TestWorker[] = [];

interface Api {
  call(method: string, path: string, actor: Actor, body?: unknown): Promise<{ status: number; body: any }>;
}

/** The API over real HTTP, on a free loopback port. */
async function startApi(options: {
  taskQueue: string;
  config?: AppConfig;
  timeouts?: Partial<ApiTimeouts>;
}): Promise<Api> {
  const cfg = options.config ?? config;
  const app = createApp({
    config: cfg,
    temporal: {
      client: await testConnection(),
      taskQueue: options.taskQueue,
      uiUrl: 'http://127.0.0.1:8233',
      namespace: inject('temporalNamespace'),
    },
    audit: createAuditLog(cfg.audit.path),
    proxmox: createReadOnlyProxmox(cfg),
    ...(options.timeouts ? { timeouts: options.timeouts } : {}),
  });
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  servers.push(server);
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    async call(method, path, actor, body) {
      const response = await fetch(`${base}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${tokens[actor]}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      return { status: response.status, body: await response.json() };
    },
  };
}

const operation = (api: Api, self: string, query = '') =>
  api.call('GET', `${self}${query}`, 'vera').then((r) => r.body);
const awaitingApproval = (api: Api, self: string) =>
  until(
    () => operation(api, self),
    (op) => op.status?.phase === 'awaiting-approval',
    'a plan awaiting approval',
  );
const ended = (api: Api, self: string) =>
  until(
    () => operation(api, self),
    (op) => op.state !== 'running',
    'the operation to end',
  );
const vmExists = (vmid: number) => sim.state.guests.has(vmid);

const deleteRequest = (vmid: number, extra: Record<string, unknown> = {}) => ({
  environment: 'home',
  vmid,
  name: `web-${vmid}`,
  action: 'delete',
  ...extra,
});

beforeAll(async () => {
  sim = await startSimulator({
    speed: 20,
    authFailureDelayMs: 0,
    scenario: {
      name: 'api-integration',
      cluster_name: 'home',
      nodes: [{ name: 'pve1' }, { name: 'pve2' }],
      storages: [{ id: 'local-lvm', type: 'lvmthin', content: ['images', 'rootdir'], size: '2T' }],
      guests: vms.map(({ vmid, name }) => ({
        vmid,
        name,
        node: 'pve1',
        status: 'stopped' as const,
        disks: [{ storage: 'local-lvm', size: '8G' }],
      })),
      tokens: [
        { id: 'automation@pve!pm', secret: 'sim-secret-for-api-tests', acl: [{ path: '/', roles: ['Administrator'] }] },
      ],
    },
  });
  const token = sim.tokens[0]!;
  process.env[credentialVariable] = `${token.tokenId}=${token.secret}`;
  config = AppConfig.parse({
    temporal: { address: inject('temporalAddress'), namespace: inject('temporalNamespace') },
    api: {
      tokens: [
        { actor: 'root', sha256: tokenHash(tokens.root), roles: ['admin'] },
        { actor: 'otto', sha256: tokenHash(tokens.otto), roles: ['operator'] },
        { actor: 'anna', sha256: tokenHash(tokens.anna), roles: ['approver'] },
        { actor: 'vera', sha256: tokenHash(tokens.vera), roles: ['viewer'] },
      ],
    },
    approvals: { timeout: '24h', auto_approve: ['low'] },
    audit: { path: join(mkdtempSync(join(tmpdir(), 'pm-api-it-')), 'audit.log') },
    environments: {
      home: {
        cluster: {
          name: 'home',
          nodes: sim.nodes.map((n) => ({
            name: n.name,
            host: n.host,
            port: n.port,
            tls_fingerprint: n.tlsFingerprint,
          })),
        },
        credentials: { token: { env: credentialVariable } },
      },
    },
  });
  worker = await startTestWorker({ activities: createActivities(buildWorkerDeps(config)) });
});

afterAll(async () => {
  for (const server of servers) server.close();
  await Promise.all([worker?.shutdown(), ...extraWorkers.map((w) => w.shutdown())]);
  await sim?.stop();
  delete process.env[credentialVariable];
});

describe('API against Temporal and the simulated cluster', () => {
  it('is ready, with every node answering the configured token', async () => {
    const api = await startApi({ taskQueue: worker.taskQueue });
    const response = await fetch(`http://127.0.0.1:${(servers.at(-1)!.address() as AddressInfo).port}/readyz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({
      status: 'ready',
      temporal: { status: 'ok' },
      environments: {
        home: {
          status: 'ok',
          nodes: [
            { node: 'pve1', status: 'ok' },
            { node: 'pve2', status: 'ok' },
          ],
        },
      },
    });
    const inventory = await api.call('GET', '/v1/inventory?environment=home', 'vera');
    expect(inventory.body.guests.map((g: { vmid: number }) => g.vmid)).toEqual(vms.map((v) => v.vmid));
  });

  it('deletes a VM only after a second person approves the plan, and audits every step', async () => {
    const api = await startApi({ taskQueue: worker.taskQueue });
    const started = await api.call('POST', '/v1/operations/vm-action', 'root', deleteRequest(1001));
    expect(started.status).toBe(202);
    const { id, links } = started.body;

    const waiting = await awaitingApproval(api, links.self);
    // Phase, approval state and plan as the workflow published them together: never a plan still 'planning'.
    expect(waiting).toMatchObject({
      requester: 'root',
      approvalState: 'pending',
      vmids: [1001],
      status: { approvalState: 'pending', plan: { risk: 'high', stepCount: 1 } },
    });
    const planVersion: number = waiting.status.plan.version;
    expect(vmExists(1001)).toBe(true);

    const byOperator = await api.call('POST', `${links.self}/approve`, 'otto', { planVersion });
    expect(byOperator.status).toBe(403);

    const selfApproval = await api.call('POST', `${links.self}/approve`, 'root', { planVersion });
    expect(selfApproval.status).toBe(409);
    expect(selfApproval.body.error).toEqual({
      code: 'refused',
      message: 'a high-risk operation cannot be approved by the actor who requested it',
    });

    const stale = await api.call('POST', `${links.self}/approve`, 'anna', { planVersion: planVersion + 1 });
    expect(stale.status).toBe(409);
    expect(stale.body.error.message).toMatch(/plan version/);
    expect(vmExists(1001)).toBe(true);

    const approved = await api.call('POST', `${links.self}/approve`, 'anna', { planVersion });
    expect(approved.status).toBe(200);
    expect(approved.body).toMatchObject({
      id,
      state: 'decided',
      decision: { decision: 'approved', by: 'anna', planVersion },
    });

    const done = await ended(api, links.self);
    expect(done).toMatchObject({
      state: 'completed',
      approvalState: 'approved',
      result: { outcome: 'completed', approval: { by: 'anna' } },
    });
    expect(vmExists(1001)).toBe(false);

    const again = await api.call('POST', `${links.self}/approve`, 'anna', { planVersion });
    expect(again.status).toBe(409);

    const audit = await api.call('GET', `/v1/audit?operationId=${encodeURIComponent(id)}`, 'vera');
    const trail: string[] = audit.body.records.map(
      (r: { actor: string; action: string; result: string }) => `${r.actor} ${r.action} ${r.result}`,
    );
    expect(trail.slice(0, 4)).toEqual([
      'root api.operation.start started',
      'otto api.operation.approve forbidden',
      'root api.operation.approve refused',
      'anna api.operation.approve refused',
    ]);
    // The API's record of the approval and the workflow's race each other; both are there.
    expect(trail.slice(4, 7).sort()).toEqual([
      'anna api.operation.approve approved',
      'anna operation.approved approved',
      'root operation.completed completed',
    ]);
    expect(trail.slice(7)).toEqual(['anna api.operation.approve not_running']);
    expect((await api.call('GET', '/v1/audit/verify', 'vera')).body).toEqual({ ok: true, records: expect.any(Number) });
    await expect(createAuditLog(config.audit.path).verify()).resolves.toMatchObject({ ok: true });
  });

  it('rejects a plan with a reason, and leaves the VM alone', async () => {
    const api = await startApi({ taskQueue: worker.taskQueue });
    const { body } = await api.call('POST', '/v1/operations/vm-action', 'otto', deleteRequest(1002));
    const waiting = await awaitingApproval(api, body.links.self);
    const planVersion: number = waiting.status.plan.version;

    const withoutReason = await api.call('POST', `${body.links.self}/reject`, 'anna', { planVersion });
    expect(withoutReason.status).toBe(400);
    expect(withoutReason.body.error.details).toEqual([{ path: 'reason', message: expect.any(String) }]);

    const rejected = await api.call('POST', `${body.links.self}/reject`, 'anna', {
      planVersion,
      reason: 'that VM still serves traffic',
    });
    expect(rejected.status).toBe(200);
    const done = await ended(api, body.links.self);
    expect(done).toMatchObject({
      state: 'completed',
      approvalState: 'rejected',
      result: {
        outcome: 'rejected',
        approval: { decision: 'rejected', by: 'anna', reason: 'that VM still serves traffic' },
      },
    });
    expect(vmExists(1002)).toBe(true);
  });

  it('rejects a plan nobody decides on before the approval timeout', async () => {
    const api = await startApi({
      taskQueue: worker.taskQueue,
      config: { ...config, approvals: { ...config.approvals, timeout: '3s', auto_approve: [] } },
    });
    const { body } = await api.call('POST', '/v1/operations/vm-action', 'otto', deleteRequest(1003));
    const done = await ended(api, body.links.self);
    expect(done).toMatchObject({
      approvalState: 'expired',
      result: { outcome: 'rejected', approval: { by: 'system', reason: 'no decision within 3 s' } },
    });
    expect(vmExists(1003)).toBe(true);
  });

  it('answers a dry run with the plan and changes nothing', async () => {
    const api = await startApi({ taskQueue: worker.taskQueue });
    const response = await api.call('POST', '/v1/operations/vm-action', 'otto', deleteRequest(1004, { dryRun: true }));
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({
      state: 'completed',
      result: {
        outcome: 'dry-run',
        plan: {
          version: 1,
          risk: 'high',
          vmids: [1004],
          steps: expect.arrayContaining([expect.objectContaining({ vmid: 1004 })]),
        },
      },
    });
    expect(vmExists(1004)).toBe(true);
  });

  it('answers a refused dry run with why, and lists it as completed rather than failed', async () => {
    const api = await startApi({ taskQueue: worker.taskQueue });
    const response = await api.call('POST', '/v1/operations/vm-action', 'otto', {
      ...deleteRequest(1004, { dryRun: true }),
      name: 'not-web-1004',
    });
    expect(response.status).toBe(422);
    expect(response.body.error.message).toMatch(/^the plan could not be made: .*not-web-1004/);

    const refused = await until(
      () => api.call('GET', '/v1/operations?environment=home&kind=vm-action&state=dry-run&pageSize=500', 'vera'),
      (r) => r.body.operations?.some((o: { summary?: string }) => o.summary?.includes('not-web-1004')),
      'the refused dry run in the list',
      15_000,
    );
    const entry = refused.body.operations.find((o: { summary?: string }) => o.summary?.includes('not-web-1004'));
    expect(entry).toMatchObject({
      state: 'completed',
      approvalState: 'dry-run',
      summary: expect.stringMatching(/^refused: /),
    });
    const failed = await api.call('GET', '/v1/operations?environment=home&state=failed&pageSize=500', 'vera');
    expect(failed.body.operations.map((o: { id: string }) => o.id)).not.toContain(entry.id);
  });

  it('lists a waiting operation by its search attributes, and cancels it', async () => {
    const api = await startApi({ taskQueue: worker.taskQueue });
    const { body } = await api.call('POST', '/v1/operations/vm-action', 'otto', deleteRequest(1005));
    await awaitingApproval(api, body.links.self);
    const listed = await until(
      () => api.call('GET', '/v1/operations?environment=home&state=pending&requester=otto&vmid=1005', 'vera'),
      (r) => r.body.operations?.some((o: { id: string }) => o.id === body.id),
      'the operation in the visibility list',
      15_000,
    );
    expect(listed.body.operations.find((o: { id: string }) => o.id === body.id)).toMatchObject({
      kind: 'vm-action',
      risk: 'high',
      vmids: [1005],
    });

    const cancel = await api.call('POST', `${body.links.self}/cancel`, 'otto', { reason: 'maintenance moved' });
    expect(cancel.status).toBe(202);
    const done = await ended(api, body.links.self);
    // Cancelled before anyone decided: nothing ran, and the approval is not left pending.
    expect(done).toMatchObject({
      state: 'cancelled',
      approvalState: 'cancelled',
      result: { outcome: 'cancelled', done: [], failed: [] },
    });
    const { plan } = await operation(api, body.links.self, '?include=plan');
    expect(done.result.notStarted).toEqual(plan.steps.map((s: { id: string }) => s.id));
    expect(vmExists(1005)).toBe(true);
    const cancelled = await until(
      () => api.call('GET', '/v1/operations?environment=home&state=cancelled&vmid=1005', 'vera'),
      (r) => r.body.operations?.some((o: { id: string }) => o.id === body.id),
      'the cancelled operation in the list',
      15_000,
    );
    expect(cancelled.body.operations.find((o: { id: string }) => o.id === body.id)).toMatchObject({
      approvalState: 'cancelled',
    });
  });

  it('accepts an approval while no worker runs, and the workflow applies it once one does', async () => {
    const taskQueue = uniqueTaskQueue('api-signal');
    const activities = createActivities(buildWorkerDeps(config));
    const first = await startTestWorker({ taskQueue, activities });
    const api = await startApi({ taskQueue, timeouts: { updateMs: 1_500, queryMs: 1_500 } });
    const { body } = await api.call('POST', '/v1/operations/vm-action', 'root', deleteRequest(1006));
    const planVersion: number = (await awaitingApproval(api, body.links.self)).status.plan.version;
    await first.shutdown();

    const accepted = await api.call('POST', `${body.links.self}/approve`, 'anna', { planVersion });
    expect(accepted.status).toBe(202);
    expect(accepted.body).toMatchObject({
      state: 'accepted',
      message: expect.stringMatching(/will validate it when one runs/),
    });
    // No worker has seen the signal: the published status still awaits a decision, and only the plan needs a worker.
    expect(await operation(api, body.links.self)).toMatchObject({
      state: 'running',
      approvalState: 'pending',
      status: { phase: 'awaiting-approval' },
    });
    expect(await operation(api, body.links.self, '?include=plan')).toMatchObject({
      status: { phase: 'awaiting-approval', plan: { version: planVersion } },
      planUnavailable: expect.stringMatching(/no worker answered the status query within 1500 ms/),
    });
    expect(vmExists(1006)).toBe(true);

    extraWorkers.push(await startTestWorker({ taskQueue, activities }));
    const done = await ended(api, body.links.self);
    expect(done).toMatchObject({ state: 'completed', result: { outcome: 'completed', approval: { by: 'anna' } } });
    expect(vmExists(1006)).toBe(false);
  });
});
