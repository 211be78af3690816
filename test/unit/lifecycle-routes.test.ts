/**
 * The read-only node health and storage routes, served by the API's guard and error handler
 * against a running simulator.
 */
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenHash } from '../../api/auth.js';
import type { Services } from '../../api/deps.js';
import { createErrorHandler } from '../../api/errors.js';
import { createGuard } from '../../api/guard.js';
import { createReadOnlyProxmox } from '../../api/proxmox.js';
import type { ApiEnv } from '../../api/route.js';
import { nodeHealthRoutes } from '../../api/routes/health-nodes.js';
import { storageRoutes } from '../../api/routes/storage.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';

const VIEWER = 'tok-viewer-lifecycle-1c9e';
let env: SimulatedEnvironment;
let app: Hono<ApiEnv>;

beforeAll(async () => {
  env = await startSimulatedEnvironment({
    speed: 100,
    config: { api: { tokens: [{ actor: 'vera', sha256: tokenHash(VIEWER), roles: ['viewer'] }] } },
    scenario: {
      nodes: [{ name: 'pve1', memory: '16G', cores: 8 }, { name: 'pve2' }, { name: 'pve3' }],
      storages: [
        { id: 'local', type: 'dir', path: '/var/lib/vz', content: ['iso', 'vztmpl'], size: '100G', used: '95G' },
        { id: 'shared', type: 'nfs', content: ['images', 'iso'], size: '4T', used: '1T' },
      ],
      content: [{ volid: 'local:iso/alpine-3.22.iso', node: 'pve2', size: '60M' }],
      guests: [
        {
          vmid: 1001,
          name: 'big',
          node: 'pve1',
          memory: '14G',
          mem_usage: 1,
          disks: [{ storage: 'shared', size: '16G' }],
        },
      ],
      tokens: [{ id: 'automation@pve!pm', secret: 'routes-0123456789', acl: [{ path: '/', roles: ['PVEAuditor'] }] }],
      faults: { offline_nodes: ['pve3'] },
    },
  });
  const s = {
    config: env.config,
    audit: env.deps.audit,
    proxmox: createReadOnlyProxmox(env.config),
    now: () => new Date(),
    log: () => undefined,
  } as unknown as Services;
  const guard = createGuard(s);
  app = new Hono<ApiEnv>();
  app.use('*', async (c, next) => {
    c.set('requestId', 'req_test');
    await next();
  });
  for (const route of [...nodeHealthRoutes(s, env.deps.pve), ...storageRoutes(s, env.deps.pve)]) {
    app.on(route.method, route.path.replace(/\{(\w+)\}/g, ':$1'), guard(route));
  }
  app.onError(
    createErrorHandler(
      () => undefined,
      () => 'req_test',
    ),
  );
});
afterAll(() => env?.stop());

async function get(path: string, token: string | null = VIEWER) {
  const response = await app.request(path, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: response.status, body: (await response.json()) as any };
}

describe('GET /v1/nodes/health', () => {
  it('says which nodes are struggling and why', async () => {
    const { status, body } = await get('/v1/nodes/health?environment=home');
    expect(status).toBe(200);
    expect(body.struggling).toEqual(['pve1', 'pve2', 'pve3']);
    const byNode = Object.fromEntries(body.nodes.map((n: any) => [n.node, n]));
    expect(byNode.pve1.issues.map((i: any) => i.kind)).toEqual(['memory', 'headroom', 'storage']);
    expect(byNode.pve2.issues).toEqual([
      { kind: 'storage', storage: 'local', detail: 'storage local at 95% (threshold 90%)' },
    ]);
    expect(byNode.pve3).toMatchObject({ status: 'offline' });
    expect(body.thresholds).toEqual({ cpu: 0.8, memory: 0.8, memoryHeadroom: 0.2, storage: 0.9 });
  });

  it('names the field at fault and asks for a token', async () => {
    expect(await get('/v1/nodes/health?environment=nowhere')).toMatchObject({
      status: 400,
      body: { error: { code: 'unknown_environment' } },
    });
    expect(await get('/v1/nodes/health?environment=home&struggling=maybe')).toMatchObject({
      status: 400,
      body: { error: { details: [{ path: 'struggling' }] } },
    });
    expect((await get('/v1/nodes/health?environment=home', null)).status).toBe(401);
  });
});

describe('GET /v1/storage', () => {
  it('lists a shared storage once with the nodes that see it, and local ones per node', async () => {
    const { body } = await get('/v1/storage?environment=home');
    const shared = body.storages.filter((s: any) => s.storage === 'shared');
    expect(shared).toEqual([
      expect.objectContaining({
        shared: true,
        nodes: ['pve1', 'pve2', 'pve3'],
        content: ['images', 'iso'],
        totalBytes: 4 * 1024 ** 4,
        usedBytes: 1024 ** 4 + 16 * 1024 ** 3,
      }),
    ]);
    expect(body.storages.filter((s: any) => s.storage === 'local').map((s: any) => s.nodes)).toEqual([
      ['pve1'],
      ['pve2'],
      ['pve3'],
    ]);
  });

  it('lists the volumes of one storage on one node, and 404s one that is not there', async () => {
    const { body } = await get('/v1/storage/local/content?environment=home&node=pve2&content=iso');
    expect(body.volumes).toEqual([
      expect.objectContaining({ volid: 'local:iso/alpine-3.22.iso', content: 'iso', sizeBytes: 60 * 1024 ** 2 }),
    ]);
    expect((await get('/v1/storage/nosuch/content?environment=home&node=pve2')).status).toBe(404);
  });

  it('404s a node that is not in the cluster (PVE answers its hostname lookup with a 500)', async () => {
    const { status, body } = await get('/v1/storage/local/content?environment=home&node=pve9');
    expect(status).toBe(404);
    expect(body.error.message).toMatch(/hostname lookup 'pve9' failed/);
  });
});
