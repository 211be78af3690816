/**
 * The drift routes in an app wired the way api/app.ts wires every router (identity, permission,
 * audit, one error handler), over a given Temporal client and drift store — for the drift API
 * tests, unit (fake Temporal) and integration (the dev server).
 */
import { Hono } from 'hono';
import type { Client } from '@temporalio/client';
import { tokenHash } from '../../api/auth.js';
import type { ReadOnlyProxmox, Services } from '../../api/deps.js';
import { createErrorHandler } from '../../api/errors.js';
import { createGuard } from '../../api/guard.js';
import type { ApiEnv } from '../../api/route.js';
import { driftRoutes } from '../../api/routes/drift.js';
import type { AuditLog } from '../../lib/audit/log.js';
import type { AppConfig } from '../../lib/config/schema.js';
import type { DriftStore } from '../../lib/manifest/drift-store.js';

/** Bearer tokens of the actors the tests use. */
export const driftTokens = {
  viewer: 'drift-viewer-token-1a2b',
  operator: 'drift-operator-token-3c4d',
  approver: 'drift-approver-token-5e6f',
  other: 'drift-other-env-token-7a8b',
} as const;

export function withDriftTokens(config: AppConfig): AppConfig {
  return {
    ...config,
    api: {
      ...config.api,
      tokens: [
        { actor: 'vera', sha256: tokenHash(driftTokens.viewer), roles: ['viewer'] },
        { actor: 'alice', sha256: tokenHash(driftTokens.operator), roles: ['operator'] },
        { actor: 'bob', sha256: tokenHash(driftTokens.approver), roles: ['approver'] },
        { actor: 'olga', sha256: tokenHash(driftTokens.other), roles: ['operator'], environments: ['elsewhere'] },
      ],
    },
  };
}

export interface DriftApi {
  call(
    method: 'GET' | 'POST',
    path: string,
    actor: keyof typeof driftTokens,
    body?: unknown,
  ): Promise<{ status: number; body: any }>;
}

export function driftApi(options: {
  config: AppConfig;
  client: Client;
  taskQueue: string;
  store: DriftStore;
  audit: AuditLog;
  now?: () => Date;
}): DriftApi {
  const s: Services = {
    config: options.config,
    temporal: {
      client: options.client,
      taskQueue: options.taskQueue,
      uiUrl: 'http://127.0.0.1:8233',
      namespace: 'default',
    },
    audit: options.audit,
    proxmox: {} as ReadOnlyProxmox,
    now: options.now ?? (() => new Date()),
    timeouts: { updateMs: 5_000, queryMs: 3_000, dryRunMs: 30_000, readinessMs: 3_000 },
    log: () => {},
  };
  const app = new Hono<ApiEnv>();
  const guard = createGuard(s);
  for (const route of driftRoutes(s, options.store))
    app.on(route.method, route.path.replace(/\{(\w+)\}/g, ':$1'), guard(route));
  app.onError(
    createErrorHandler(
      () => {},
      () => 'test',
    ),
  );
  return {
    async call(method, path, actor, body) {
      const response = await app.request(path, {
        method,
        headers: {
          authorization: `Bearer ${driftTokens[actor]}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      return { status: response.status, body: await response.json() };
    },
  };
}
