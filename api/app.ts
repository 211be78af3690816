/**
 * The HTTP API: small routers (health, environments, inventory, operations, audit, docs)
 * in one Hono app, every route behind one guard (identity, permission, audit) and one error
 * handler.
 *
 *   const app = createApp({ config, temporal: { client, taskQueue, uiUrl, namespace }, audit, proxmox });
 *   serve({ fetch: app.fetch, port: config.api.port });
 */
import { randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { methodNotAllowed } from 'hono/method-not-allowed';
import type { ApiDeps, Services } from './deps.js';
import { discordRoutes } from './discord/interactions.js';
import { ApiError, createErrorHandler, errorResponse, methodNotAllowedResponse, notFound } from './errors.js';
import { createGuard } from './guard.js';
import { openApiDocument, type OpenApiDocument } from './openapi.js';
import type { ApiEnv, Route } from './route.js';
import { auditRoutes } from './routes/audit.js';
import { docsRoutes } from './routes/docs.js';
import { environmentRoutes } from './routes/environments.js';
import { healthRoutes } from './routes/health.js';
import { inventoryRoutes } from './routes/inventory.js';
import { operationRoutes } from './routes/operations/index.js';
import { nodeHealthRoutes } from './routes/health-nodes.js';
import { runbookRoutes } from './routes/runbooks.js';
import { storageRoutes } from './routes/storage.js';
import { driftRoutes } from './routes/drift.js';
import { drillRoutes } from './routes/drills.js';

const defaultTimeouts = { updateMs: 5_000, queryMs: 3_000, dryRunMs: 30_000, readinessMs: 3_000 };

export function createApp(deps: ApiDeps): Hono<ApiEnv> {
  const s: Services = {
    ...deps,
    now: deps.now ?? (() => new Date()),
    timeouts: { ...defaultTimeouts, ...deps.timeouts },
    log: deps.log ?? ((line) => console.error(line)),
  };
  let document: OpenApiDocument | undefined;
  const routes: Route[] = [
    ...healthRoutes(s),
    ...environmentRoutes(s),
    ...inventoryRoutes(s),
    ...nodeHealthRoutes(s, s.proxmox.client),
    ...storageRoutes(s, s.proxmox.client),
    ...operationRoutes(s),
    ...runbookRoutes(s),
    ...driftRoutes(s),
    ...drillRoutes(s),
    ...auditRoutes(s),
    ...docsRoutes(() => (document ??= openApiDocument(routes, { environments: Object.keys(s.config.environments) }))),
  ];

  const app = new Hono<ApiEnv>();
  app.use('*', async (c, next) => {
    c.set('requestId', `req_${randomBytes(6).toString('hex')}`);
    await next();
    c.header('X-Request-Id', c.get('requestId'));
    c.header('X-Content-Type-Options', 'nosniff');
    // Unless the route states its own (the inventory's ETag-revalidated snapshot).
    if (!c.res.headers.has('Cache-Control')) c.header('Cache-Control', 'no-store');
  });
  app.use(
    '*',
    methodNotAllowed({
      app,
      onMethodNotAllowed: (c, methods) => methodNotAllowedResponse(c, documentedMethods(routes, c.req.path) ?? methods),
    }),
  );
  app.use(
    '*',
    bodyLimit({
      maxSize: s.config.api.max_body_bytes,
      onError: (c) =>
        errorResponse(
          c,
          new ApiError(413, 'payload_too_large', `request body exceeds ${s.config.api.max_body_bytes} bytes`),
        ),
    }),
  );
  const guard = createGuard(s);
  for (const route of routes) {
    app.on(route.method, route.path.replace(/\{(\w+)\}/g, ':$1'), guard(route));
  }
  if (s.config.discord) {
    app.route(
      '/v1/discord',
      discordRoutes({
        config: s.config.discord,
        apiFetch: async (request) => app.fetch(request),
        now: s.now,
        log: s.log,
      }),
    );
  }
  app.notFound(notFound);
  app.onError(createErrorHandler(s.log, (c) => c.get('requestId') ?? 'unknown'));
  return app;
}

/**
 * The methods the OpenAPI document lists for a path, for a 405's `Allow`: those of its literal
 * route when it has one (`/v1/operations/vm-action` is a kind, not an operation id), else those
 * of the templates it matches. Undefined when the document lists none.
 */
function documentedMethods(routes: readonly Route[], path: string): string[] | undefined {
  const documented = routes.filter((r) => !r.hidden);
  const literal = documented.filter((r) => r.path === path);
  const matching =
    literal.length > 0
      ? literal
      : documented.filter((r) => new RegExp(`^${r.path.replace(/\{\w+\}/g, '[^/]+')}$`).test(path));
  const methods = [...new Set(matching.flatMap((r) => (r.method === 'GET' ? ['GET', 'HEAD'] : [r.method])))];
  return methods.length > 0 ? methods : undefined;
}
