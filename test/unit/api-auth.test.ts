/**
 * Who may do what: every endpoint, called by every kind of caller, answers as the role and
 * environment scope of the token say — and every refusal is audited without the token.
 */
import { describe, expect, it } from 'vitest';
import type { Permission } from '../../api/auth.js';
import { operationPath, testApi, tokens, validBodies, type TestApi, type TokenName } from './api-fakes.js';

type Caller = 'none' | 'bad-token' | TokenName;

const callers: Caller[] = ['none', 'bad-token', 'viewer', 'operator', 'approver', 'admin', 'homeAdmin', 'agent'];

const permissionsOf: Record<TokenName, Permission[]> = {
  viewer: ['read'],
  operator: ['read', 'start', 'cancel'],
  approver: ['read', 'decide'],
  admin: ['read', 'start', 'cancel', 'decide'],
  homeAdmin: ['read', 'start', 'cancel', 'decide'],
  agent: ['read', 'start'],
};
const scopeOf: Partial<Record<TokenName, string[]>> = { homeAdmin: ['home'] };

const homeOp = 'vm-action/home/1001/delete/20251122T040000Z';
const cloudOp = 'vm-action/cloud/1001/delete/20251122T040000Z';

interface Endpoint {
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  access: 'public' | Permission;
  /** The environment the request touches, if any. */
  environment?: string;
  success: number;
}

const endpoints: Endpoint[] = [
  { method: 'GET', path: '/healthz', access: 'public', success: 200 },
  { method: 'GET', path: '/readyz', access: 'public', success: 200 },
  { method: 'GET', path: '/openapi.json', access: 'public', success: 200 },
  { method: 'GET', path: '/docs', access: 'public', success: 200 },
  { method: 'GET', path: '/v1/environments', access: 'read', success: 200 },
  { method: 'GET', path: '/v1/inventory?environment=home', access: 'read', environment: 'home', success: 200 },
  { method: 'GET', path: '/v1/inventory?environment=cloud', access: 'read', environment: 'cloud', success: 200 },
  ...['home', 'cloud'].flatMap((environment) =>
    Object.entries(validBodies).map(([kind, body]) => ({
      method: 'POST' as const,
      path: `/v1/operations/${kind}`,
      body: { ...body, environment },
      access: 'start' as const,
      environment,
      success: 202,
    })),
  ),
  { method: 'GET', path: '/v1/operations', access: 'read', success: 200 },
  { method: 'GET', path: '/v1/operations?environment=cloud', access: 'read', environment: 'cloud', success: 200 },
  ...[
    [homeOp, 'home'],
    [cloudOp, 'cloud'],
  ].flatMap(([id, environment]) => [
    { method: 'GET' as const, path: operationPath(id!), access: 'read' as const, environment, success: 200 },
    {
      method: 'POST' as const,
      path: operationPath(id!, '/approve'),
      body: { planVersion: 1 },
      access: 'decide' as const,
      environment,
      success: 200,
    },
    {
      method: 'POST' as const,
      path: operationPath(id!, '/reject'),
      body: { planVersion: 1, reason: 'not now' },
      access: 'decide' as const,
      environment,
      success: 200,
    },
    {
      method: 'POST' as const,
      path: operationPath(id!, '/cancel'),
      access: 'cancel' as const,
      environment,
      success: 202,
    },
  ]),
  { method: 'GET', path: '/v1/audit', access: 'read', success: 200 },
  { method: 'GET', path: '/v1/audit?environment=cloud', access: 'read', environment: 'cloud', success: 200 },
  { method: 'GET', path: '/v1/audit/verify', access: 'read', success: 200 },
];

function expectedStatus(endpoint: Endpoint, caller: Caller): number {
  if (endpoint.access === 'public') return endpoint.success;
  if (caller === 'none' || caller === 'bad-token') return 401;
  if (!permissionsOf[caller].includes(endpoint.access)) return 403;
  const scope = scopeOf[caller];
  if (endpoint.environment && scope && !scope.includes(endpoint.environment)) return 403;
  return endpoint.success;
}

function apiWithOperations(): TestApi {
  const api = testApi();
  for (const [id, environment] of [
    [homeOp, 'home'],
    [cloudOp, 'cloud'],
  ] as const) {
    api.temporal.seed({
      workflowId: id,
      environment,
      requester: 'someone-else',
      query: () => ({
        phase: 'awaiting-approval',
        requester: 'someone-else',
        environment,
        dryRun: false,
        approvalState: 'pending',
        steps: [],
        ignoredApprovals: [],
      }),
      update: (name, request) => ({
        decision: name === 'approve' ? 'approved' : 'rejected',
        by: request.by,
        at: 'now',
        planVersion: 1,
      }),
    });
  }
  return api;
}

function call(api: TestApi, endpoint: Endpoint, caller: Caller) {
  const token = caller === 'none' ? undefined : caller === 'bad-token' ? 'not-a-configured-token' : caller;
  return api.call(endpoint.method, endpoint.path, { token, body: endpoint.body });
}

describe('access matrix', () => {
  for (const endpoint of endpoints) {
    describe(`${endpoint.method} ${decodeURIComponent(endpoint.path)}`, () => {
      for (const caller of callers) {
        const expected = expectedStatus(endpoint, caller);
        it(`${caller} -> ${expected}`, async () => {
          const api = apiWithOperations();
          const response = await call(api, endpoint, caller);
          expect(response.status, await response.clone().text()).toBe(expected);
          if (expected === 401) {
            expect(response.headers.get('www-authenticate')).toMatch(/^Bearer /);
          }
          if (expected === 401 || expected === 403) {
            const body = (await response.json()) as { error: { code: string } };
            expect(body.error.code).toBe(expected === 401 ? 'unauthenticated' : 'forbidden');
            const denials = (await api.audit.read()).filter((r) => r.result === body.error.code);
            expect(denials).toHaveLength(1);
            expect(denials[0]).toMatchObject({
              action: endpoint.method === 'POST' ? expect.stringMatching(/^api\.operation\./) : 'api.access',
              actor: caller === 'none' || caller === 'bad-token' ? 'anonymous' : expect.any(String),
              result: expected === 401 ? 'unauthenticated' : 'forbidden',
              detail: { status: expected, method: endpoint.method },
            });
          }
        });
      }
    });
  }
});

describe('identity', () => {
  it('comes from the token, never from X-Actor-ID', async () => {
    const api = testApi();
    const response = await api.call('POST', '/v1/operations/vm-action', {
      token: 'operator',
      body: validBodies['vm-action'],
      headers: { 'x-actor-id': 'anna' },
    });
    expect(response.status).toBe(202);
    const [workflow] = api.temporal.workflows.values();
    expect(workflow!.args[0]).toMatchObject({ meta: { requester: 'otto' } });
    const [record] = await api.audit.read({ action: 'api.operation.start' });
    expect(record!.actor).toBe('otto');
  });

  it('is not granted by X-Actor-ID alone', async () => {
    const api = testApi();
    const response = await api.call('GET', '/v1/environments', { headers: { 'x-actor-id': 'root' } });
    expect(response.status).toBe(401);
  });

  it.each([
    ['Basic dXNlcjpwYXNz', 'another scheme'],
    ['Bearer', 'no token'],
    [`Bearer ${tokens.admin} extra`, 'two tokens'],
    [`Bearer ${tokens.admin}x`, 'a token with one character more'],
    [`Bearer ${tokens.admin.slice(0, -1)}`, 'a token with one character less'],
    [`Token ${tokens.admin}`, 'the right token under the wrong scheme'],
  ])('refuses %s (%s) with 401', async (authorization) => {
    const api = testApi();
    const response = await api.call('GET', '/v1/environments', { headers: { authorization } });
    expect(response.status).toBe(401);
    expect(response.headers.get('www-authenticate')).toBe('Bearer realm="proxmox-manager", error="invalid_token"');
  });

  it('accepts the scheme name in any case', async () => {
    const api = testApi();
    const response = await api.call('GET', '/v1/environments', {
      headers: { authorization: `bearer ${tokens.viewer}` },
    });
    expect(response.status).toBe(200);
  });

  it('shows a scoped token only its environments, in lists too', async () => {
    const api = apiWithOperations();
    const environments = (await (await api.call('GET', '/v1/environments', { token: 'homeAdmin' })).json()) as {
      environments: { name: string }[];
    };
    expect(environments.environments.map((e) => e.name)).toEqual(['home']);
    await api.call('GET', '/v1/operations', { token: 'homeAdmin' });
    expect(api.temporal.listQueries.at(-1)).toContain("PmEnvironment IN ('home')");
  });
});

describe('refused requests without a valid token', () => {
  it('are recorded in full ten a minute, the rest counted in one summary when the minute is over', async () => {
    let clock = new Date('2025-11-22T04:27:13.579Z');
    const api = testApi({ now: () => clock });
    for (let i = 0; i < 200; i++) {
      const response = await api.call('GET', i % 2 ? '/v1/inventory?environment=home' : '/v1/operations', {
        token: i % 3 ? 'not-a-token' : undefined,
      });
      expect(response.status).toBe(401);
    }
    expect(await api.audit.read()).toHaveLength(10);

    clock = new Date(clock.getTime() + 60_000);
    await api.call('GET', '/v1/operations');
    const records = await api.audit.read();
    expect(records).toHaveLength(12);
    expect(records[10]).toMatchObject({
      actor: 'anonymous',
      action: 'api.access',
      result: 'unauthenticated-summary',
      detail: { refused: 190, paths: { '/v1/operations': 95, '/v1/inventory': 95 } },
    });
    expect(records[11]).toMatchObject({ result: 'unauthenticated', detail: { path: '/v1/operations', status: 401 } });
  });
});
