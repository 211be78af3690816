/**
 * The access rules of every route the app serves — derived from the app itself, so a route
 * added tomorrow is covered without anyone remembering to list it. (test/unit/api-auth.test.ts
 * is the hand-written matrix with environment scopes and audit records; this one proves it has
 * no blind spot.)
 *
 *   - every registered route is documented in /openapi.json, except the known catch-alls;
 *   - what each route demands follows one policy: reads are `read`, changes are never `read`,
 *     only the probes and the documents are public;
 *   - every caller gets exactly what its roles allow: no token or a bad one 401, a role without
 *     the permission 403, a role with it never 401/403.
 */
import { describe, expect, it } from 'vitest';
import type { Permission } from '../../api/auth.js';
import { testApi, tokens, type TokenName } from './api-fakes.js';
import type { OpenApiDocument } from '../support/suite/fuzz.js';
import { record } from '../support/suite/report.js';

const PUBLIC = ['GET /healthz', 'GET /readyz', 'GET /openapi.json', 'GET /docs'];
/** Registered but not documented: the catch-all that answers unknown operation kinds with 404. */
const HIDDEN = ['POST /v1/operations/:kind'];

const roles: Record<Exclude<TokenName, 'homeAdmin'>, Permission[]> = {
  viewer: ['read'],
  operator: ['read', 'start', 'cancel'],
  approver: ['read', 'decide'],
  admin: ['read', 'start', 'cancel', 'decide'],
  agent: ['read', 'start'],
};

/** The permission a route must demand, from its method and path alone. */
function policy(method: string, path: string): string {
  if (PUBLIC.includes(`${method} ${path}`)) return 'public';
  if (method === 'GET') return 'read';
  if (path === '/v1/operations/{id}/cancel') return 'cancel';
  // Steering a running operation (approve, reject, a halted maintenance, a node's go-ahead) is a decision.
  if (path.startsWith('/v1/operations/{id}/')) return 'decide';
  return 'start';
}

const api = testApi();
const document = (await (await api.call('GET', '/openapi.json')).json()) as OpenApiDocument;
const documented = Object.entries(document.paths).flatMap(([path, operations]) =>
  Object.entries(operations).map(([method, op]) => ({
    method: method.toUpperCase(),
    path,
    permission: op['x-permission'],
  })),
);

/** A concrete path for a documented template. */
function concrete(path: string): string {
  const url = path
    .replace('{id}', encodeURIComponent('vm-action/home/1001/delete/20251122T040000Z'))
    .replace('{name}', 'debian-13-cloudinit')
    .replace('{storage}', 'local')
    .replace('{node}', 'pve1')
    .replace(/\{\w+\}/g, 'x');
  return path.includes('inventory') || path.includes('storage') || path.includes('health')
    ? `${url}?environment=home`
    : url;
}

describe('every route', () => {
  it('is documented, or a known catch-all', () => {
    const registered = [
      ...new Set(api.app.routes.filter((r) => r.method !== 'ALL').map((r) => `${r.method} ${r.path}`)),
    ];
    const documentedKeys = documented.map((r) => `${r.method} ${r.path.replace(/\{(\w+)\}/g, ':$1')}`);
    expect(registered.filter((r) => !documentedKeys.includes(r) && !HIDDEN.includes(r))).toEqual([]);
    record({
      section: 'security',
      name: 'API routes under the access matrix',
      value: documented.length,
      unit: 'routes',
      note: `every documented route × 6 callers (no token, bad token, viewer, operator, approver, admin)`,
    });
  });

  it.each(documented.map((r) => [`${r.method} ${r.path}`, r] as const))(
    '%s demands what the policy says',
    (_, route) => {
      expect(route.permission).toBe(policy(route.method, route.path));
    },
  );
});

describe('every caller on every route', () => {
  for (const route of documented) {
    describe(`${route.method} ${route.path}`, () => {
      const call = (token?: string) =>
        api.call(route.method, concrete(route.path), {
          ...(token ? { token } : {}),
          ...(route.method === 'POST' ? { body: {} } : {}),
        });

      it('no token / a bad token', async () => {
        for (const token of [undefined, 'not-a-configured-token']) {
          const status = (await call(token)).status;
          if (route.permission === 'public') expect(status).not.toBe(401);
          else expect(status).toBe(401);
        }
      });

      it.each(Object.entries(roles))('%s', async (name, permissions) => {
        const response = await call(tokens[name as TokenName]);
        if (route.permission === 'public' || permissions.includes(route.permission as Permission)) {
          expect([401, 403]).not.toContain(response.status);
        } else {
          expect(response.status).toBe(403);
        }
        // Past the guard, an upstream that cannot answer is a 502/503 naming it (the fakes have no Proxmox client for some routes).
        if (response.status >= 500)
          expect(await response.json()).toMatchObject({
            error: { code: expect.stringMatching(/^(proxmox|temporal)_unavailable$/) },
          });
      });
    });
  }
});
