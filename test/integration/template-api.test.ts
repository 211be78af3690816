/**
 * Templates from the API, end to end: HTTP -> API -> Temporal dev server -> worker -> the
 * simulated homelab. The runbooks are listed, a build is requested, approved by a second
 * person, and the template shows up in the inventory with the cluster's conventions.
 */
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { createApp } from '../../api/app.js';
import { tokenHash } from '../../api/auth.js';
import { createReadOnlyProxmox } from '../../api/proxmox.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { startTestWorker, testConnection, type TestWorker } from '../support/temporal.js';
import { homelabWithShippedRole } from './runbook-helpers.js';

const tokens = { olga: 'it-olga-token-7e21', bert: 'it-bert-token-04ac' };
type Actor = keyof typeof tokens;

let env: SimulatedEnvironment;
let worker: TestWorker;
let server: ServerType;
let base: string;

beforeAll(async () => {
  env = await startSimulatedEnvironment({
    scenario: homelabWithShippedRole(),
    speed: 400,
    config: {
      api: {
        tokens: [
          { actor: 'olga', sha256: tokenHash(tokens.olga), roles: ['operator'] },
          { actor: 'bert', sha256: tokenHash(tokens.bert), roles: ['approver'] },
        ],
      },
      approvals: { timeout: '1h', auto_approve: ['low'] },
    },
  });
  worker = await startTestWorker({ activities: createActivities(env.deps) });
  const app = createApp({
    config: env.config,
    temporal: {
      client: await testConnection(),
      taskQueue: worker.taskQueue,
      uiUrl: 'http://127.0.0.1:8233',
      namespace: inject('temporalNamespace'),
    },
    audit: env.deps.audit,
    proxmox: createReadOnlyProxmox(env.config),
  });
  server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.close();
  await worker?.shutdown();
  await env?.stop();
});

async function call(
  method: string,
  path: string,
  actor: Actor,
  body?: unknown,
): Promise<{ status: number; body: any }> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${tokens[actor]}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: response.status, body: await response.json() };
}

async function until(path: string, done: (op: any) => boolean, what: string): Promise<any> {
  const deadline = Date.now() + 60_000;
  let last: any;
  while (Date.now() < deadline) {
    last = (await call('GET', path, 'olga')).body;
    if (done(last)) return last;
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
}

describe('templates through the API', () => {
  it('lists the runbooks, marking the template runbooks', async () => {
    const { status, body } = await call('GET', '/v1/runbooks', 'olga');
    expect(status).toBe(200);
    expect(body.runbooks.map((r: { name: string; template: boolean }) => [r.name, r.template])).toEqual([
      ['alpine-pxe-gold', true],
      ['debian-13-cloudinit', true],
      ['talos-nocloud', true],
      ['ubuntu-2404-cloudinit', true],
    ]);
    const talos = await call('GET', '/v1/runbooks/talos-nocloud', 'olga');
    expect(talos.body.parameters.find((p: { name: string }) => p.name === 'cpu')).toMatchObject({
      type: 'enum',
      convention: 'defaults.cpu',
    });
    expect(talos.body.markdown).toMatch(/^---\nname: talos-nocloud\n/);
    expect((await call('GET', '/v1/runbooks/no-such-runbook', 'olga')).status).toBe(404);
    expect((await call('GET', '/v1/runbooks/Bad_Name', 'olga')).body.error).toMatchObject({
      code: 'invalid_path',
      details: [{ path: 'name' }],
    });
  });

  it('builds a template once a second person approves, and the inventory shows it with the conventions', async () => {
    const started = await call('POST', '/v1/operations/template-build', 'olga', {
      environment: 'home',
      runbook: 'alpine-pxe-gold',
      parameters: { node: 'pve02' },
    });
    expect(started.status).toBe(202);
    const self: string = started.body.links.self;
    const waiting = await until(self, (op) => op.status?.phase === 'awaiting-approval', 'the plan');
    expect(waiting).toMatchObject({ nodes: ['pve02'], status: { plan: { risk: 'medium' } } });

    const approved = await call('POST', `${self}/approve`, 'bert', { planVersion: waiting.status.plan.version });
    expect(approved.status).toBe(200);
    const done = await until(self, (op) => op.state !== 'running', 'the build');
    expect(done.state).toBe('completed');
    const vmid: number = done.result.result.template.vmid;

    const inventory = await call('GET', '/v1/inventory?environment=home&state=all', 'olga');
    const template = inventory.body.guests.find((g: { vmid: number }) => g.vmid === vmid);
    expect(template).toMatchObject({ name: 'alpine-pxe-gold', node: 'pve02', template: true });
    expect(template.tags).toEqual(expect.arrayContaining(['template', 'pxe', 'alpine']));
    expect(env.sim.state.guests.get(vmid)!.config).toMatchObject({
      bios: 'ovmf',
      machine: 'q35',
      scsihw: 'virtio-scsi-single',
      agent: '1',
    });
  });

  it('answers a bad request naming the field', async () => {
    const { status, body } = await call('POST', '/v1/operations/template-build', 'olga', {
      environment: 'home',
      runbook: 'alpine-pxe-gold',
      parameters: { Node: 'pve02' },
    });
    expect(status).toBe(400);
    expect(body.error.details).toEqual([
      { path: 'parameters.Node', message: 'parameter names are lowercase identifiers' },
    ]);
  });
});
