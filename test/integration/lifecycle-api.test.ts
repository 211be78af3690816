/**
 * Lifecycle operations through the HTTP API (Hono app -> real Temporal dev server -> worker
 * -> simulator): requests validated at the edge with the field at fault named, dry runs
 * answered with the plan, a create followed to completion; a backup followed and then listed
 * by `GET /v1/backups`.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { createApp } from '../../api/app.js';
import { tokenHash } from '../../api/auth.js';
import { createReadOnlyProxmox } from '../../api/proxmox.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { startTestWorker, testConnection, type TestWorker } from '../support/temporal.js';
import { until } from '../support/until.js';

const OPERATOR = 'tok-lifecycle-operator-4d1a';
let env: SimulatedEnvironment;
let worker: TestWorker;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  env = await startSimulatedEnvironment({
    speed: 400,
    config: {
      api: { tokens: [{ actor: 'otto', sha256: tokenHash(OPERATOR), roles: ['operator'] }] },
      approvals: { timeout: '1h', auto_approve: ['low', 'medium'] },
    },
  });
  worker = await startTestWorker({ activities: createActivities(env.deps) });
  app = createApp({
    config: env.config,
    temporal: {
      client: await testConnection(),
      taskQueue: worker.taskQueue,
      uiUrl: 'http://127.0.0.1:8233',
      namespace: inject('temporalNamespace'),
    },
    audit: env.deps.audit,
    proxmox: createReadOnlyProxmox(env.config),
    log: () => undefined,
  });
});
afterAll(async () => {
  await worker?.shutdown();
  await env?.stop();
});

async function call(method: string, path: string, body?: unknown) {
  const response = await app.request(path, {
    method,
    headers: { authorization: `Bearer ${OPERATOR}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  return { status: response.status, body: (await response.json()) as any };
}

const ended = (self: string) =>
  until(
    async () => (await call('GET', self)).body,
    (op) => op.state !== 'running',
    `${self} to end`,
    100_000,
  );

describe('lifecycle operations over HTTP', () => {
  it('answer a dry run with the plan and change nothing', async () => {
    const before = env.sim.state.guests.size;
    const { status, body } = await call('POST', '/v1/operations/vm-create', {
      environment: 'home',
      service: 'api',
      dryRun: true,
    });
    expect(status).toBe(200);
    expect(body.result.plan.steps.map((s: { id: string }) => s.id)).toEqual(['create', 'verify']);
    expect(body.result.plan.summary).toMatch(/^create VM \d+ 'auto-api-\d+' on pve0\d$/);
    expect(env.sim.state.guests.size).toBe(before);
  });

  it('create a VM, approved by policy for medium risk, and report it', async () => {
    const started = await call('POST', '/v1/operations/vm-create', {
      environment: 'home',
      service: 'api',
      tags: ['api'],
    });
    expect(started.status).toBe(202);
    const detail = await ended(started.body.links.self);
    expect(detail).toMatchObject({ state: 'completed', kind: 'vm-create', approvalState: 'auto-approved' });
    const { vmid, name } = detail.result.result;
    expect(env.sim.state.guests.get(vmid)?.name).toBe(name);
  });

  it('refuse invalid requests at the edge, naming the field', async () => {
    const lxc = await call('POST', '/v1/operations/vm-create', { environment: 'home', service: 'cache', type: 'lxc' });
    expect(lxc).toMatchObject({
      status: 400,
      body: { error: { details: [{ path: 'ostemplate', message: 'a container needs a template' }] } },
    });
    const bulk = await call('POST', '/v1/operations/bulk-action', {
      environment: 'home',
      tags: 'web & (prod',
      action: 'stop',
    });
    expect(bulk).toMatchObject({
      status: 400,
      body: { error: { details: [{ path: 'tags', message: "expected ')' at the end of 'web & (prod'" }] } },
    });
    const iso = await call('POST', '/v1/operations/iso-import', {
      environment: 'home',
      node: 'pve01',
      storage: 'local',
      url: 'https://example.org/a.iso',
      filename: 'a.iso',
      checksum: 'abc',
    });
    expect(iso.body.error.details).toEqual([{ path: 'checksum', message: 'a sha256 digest has 64 hex digits' }]);
  });
});

describe('backups over HTTP', () => {
  it('backs up a guest, auto-approved as low risk, and lists the backup for that guest', async () => {
    const started = await call('POST', '/v1/operations/backup', { environment: 'home', vmid: 1002, storage: 'shared' });
    expect(started.status).toBe(202);
    const detail = await ended(started.body.links.self);
    expect(detail).toMatchObject({ state: 'completed', kind: 'backup', approvalState: 'auto-approved' });
    const [done] = detail.result.result;

    const listed = await call('GET', '/v1/backups?environment=home&vmid=1002');
    expect(listed.status).toBe(200);
    expect(listed.body.backups).toEqual([
      expect.objectContaining({
        volid: done.volid,
        vmid: 1002,
        type: 'qemu',
        notes: 'proxy01',
        protected: false,
        size: done.size,
      }),
    ]);
    expect((await call('GET', '/v1/backups?environment=home&vmid=1001')).body.backups).toEqual([]);
  });

  it('answers a request without a selection, or with a bad volume id, with a 400 naming the field', async () => {
    const none = await call('POST', '/v1/operations/backup', { environment: 'home', storage: 'shared' });
    expect(none.status).toBe(400);
    expect(JSON.stringify(none.body)).toContain('vmid');
    const badVolume = await call('POST', '/v1/operations/restore', {
      environment: 'home',
      volume: 'shared:iso/x.iso',
      target: 'new',
    });
    expect(badVolume.status).toBe(400);
    expect(JSON.stringify(badVolume.body)).toContain('volume');
    const badQuery = await call('GET', '/v1/backups?environment=home&vmid=abc');
    expect(badQuery.status).toBe(400);
    expect(JSON.stringify(badQuery.body)).toContain('vmid');
  });
});
