/**
 * The HTTP API: small routers (health, environments, inventory, operations, audit, docs)
 * in one Hono app, with one guard for identity, permissions and auditing, and one error
 * handler.
 *
 *   const app = createApp({ config, temporal: { client, taskQueue, uiUrl, namespace }, audit, proxmox });
 *   serve({ fetch: app.fetch, port: config.api.port });
 */
import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { methodNotAllowed } from 'hono/method-not-allowed';
import { can, createAuthenticator, type Authentication } from './auth.js';
import type { ApiDeps, Services } from './deps.js';
import { ApiError, classify, createErrorHandler, errorResponse, methodNotAllowedResponse, notFound, redact } from './errors.js';
import { openApiDocument, type OpenApiDocument } from './openapi.js';
import type { ApiContext, ApiEnv, Route } from './route.js';
import { auditRoutes } from './routes/audit.js';
import { docsRoutes } from './routes/docs.js';
import { environmentRoutes } from './routes/environments.js';
import { healthRoutes } from './routes/health.js';
import { inventoryRoutes } from './routes/inventory.js';
import { operationRoutes } from './routes/operations.js';

const defaultTimeouts = { updateMs: 5_000, queryMs: 3_000, dryRunMs: 30_000, readinessMs: 3_000 };

const challenge = 'Bearer realm="proxmox-manager"';

export function createApp(deps: ApiDeps): Hono<ApiEnv> {
  const s: Services = {
    ...deps,
    now: deps.now ?? (() => new Date()),
    timeouts: { ...defaultTimeouts, ...deps.timeouts },
    log: deps.log ?? ((line) => console.error(line)),
  };
  const authenticate = createAuthenticator(s.config.api.tokens);

  let document: OpenApiDocument | undefined;
  const routes: Route[] = [
    ...healthRoutes(s),
    ...environmentRoutes(s),
    ...inventoryRoutes(s),
    ...operationRoutes(s),
    ...auditRoutes(s),
    ...docsRoutes(() => (document ??= openApiDocument(routes))),
  ];

  /** Appends the audit record of this request; `result` is what happened. */
  const record = (c: ApiContext, action: string, actor: string, result: string, status: number, err?: ApiError) => {
    const note = c.get('auditNote') ?? {};
    return s.audit.append({
      actor,
      action,
      result,
      ...(note.operationId ? { operationId: note.operationId } : {}),
      ...(note.kind ? { kind: note.kind } : {}),
      ...(note.environment ? { environment: note.environment } : {}),
      detail: {
        requestId: c.get('requestId'),
        method: c.req.method,
        path: c.req.path,
        status,
        ...note.detail,
        ...(err ? { message: err.message } : {}),
        ...(err?.details ? { problems: err.details } : {}),
      },
    });
  };

  /** Denials are recorded, but failing to record one must not turn a 401/403 into a 500. */
  const recordDenial = async (c: ApiContext, actor: string, result: string, err: ApiError) => {
    await record(c, 'api.access', actor, result, err.status, err).catch((e: Error) =>
      s.log(`[api] ${c.get('requestId')} could not record a denied request: ${redact(e.message)}`),
    );
  };

  const unauthenticated = (auth: Extract<Authentication, { ok: false }>) =>
    new ApiError(
      401,
      'unauthenticated',
      auth.reason === 'missing' ? 'send Authorization: Bearer <token>' : 'the bearer token is not valid',
      undefined,
      { 'WWW-Authenticate': auth.reason === 'missing' ? challenge : `${challenge}, error="invalid_token"` },
    );

  /** Identity, permission, then the handler; state-changing routes record what happened. */
  const guard = (route: Route) => async (c: ApiContext) => {
    if (route.access !== 'public') {
      const auth = authenticate(c.req.header('authorization'));
      if (!auth.ok) {
        const err = unauthenticated(auth);
        await recordDenial(c, 'anonymous', 'unauthenticated', err);
        throw err;
      }
      c.set('identity', auth.identity);
      if (!can(auth.identity, route.access)) {
        const err = new ApiError(403, 'forbidden', `${auth.identity.actor} (${auth.identity.roles.join(', ')}) may not ${route.access} here`);
        await recordDenial(c, auth.identity.actor, 'forbidden', err);
        throw err;
      }
    }
    const actor = route.access === 'public' ? 'anonymous' : c.get('identity').actor;
    let response: Response;
    try {
      response = await route.handler(c);
    } catch (err) {
      const known = classify(err);
      if (route.audit) {
        await record(c, route.audit, actor, known?.code ?? 'error', known?.status ?? 500, known).catch((e: Error) =>
          s.log(`[api] ${c.get('requestId')} could not record a failed ${route.audit}: ${redact(e.message)}`),
        );
      } else if (known?.status === 403) {
        await recordDenial(c, actor, 'forbidden', known);
      }
      throw err;
    }
    if (route.audit) {
      try {
        await record(c, route.audit, actor, c.get('auditNote')?.result ?? 'ok', response.status);
      } catch (e) {
        s.log(`[api] ${c.get('requestId')} could not record ${route.audit}: ${redact((e as Error).message)}`);
        throw new ApiError(
          500,
          'audit_failed',
          `the request was carried out (${route.audit}${c.get('auditNote')?.operationId ? ` ${c.get('auditNote').operationId}` : ''}) ` +
            'but could not be written to the audit log; tell an administrator',
        );
      }
    }
    return response;
  };

  const app = new Hono<ApiEnv>();
  app.use('*', async (c, next) => {
    c.set('requestId', `req_${randomBytes(6).toString('hex')}`);
    await next();
    c.header('X-Request-Id', c.get('requestId'));
    c.header('X-Content-Type-Options', 'nosniff');
    c.header('Cache-Control', 'no-store');
  });
  app.use('*', methodNotAllowed({ app, onMethodNotAllowed: methodNotAllowedResponse }));
  app.use(
    '*',
    bodyLimit({
      maxSize: s.config.api.max_body_bytes,
      onError: (c) =>
        errorResponse(c, new ApiError(413, 'payload_too_large', `request body exceeds ${s.config.api.max_body_bytes} bytes`)),
    }),
  );
  for (const route of routes) {
    app.on(route.method, route.path.replace(/\{(\w+)\}/g, ':$1'), guard(route));
  }
  app.notFound(notFound);
  app.onError(createErrorHandler(s.log, (c) => c.get('requestId') ?? 'unknown'));
  return app;
}
