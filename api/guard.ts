/**
 * What stands around every route: who is calling (bearer token), whether their roles allow
 * the route, and — for state-changing routes — the audit record of what happened. Refusals
 * (401, 403) are recorded too, as `anonymous` or the actor, never with the token.
 */
import { can, createAuthenticator, type Authentication } from './auth.js';
import type { Services } from './deps.js';
import { ApiError, classify, redact } from './errors.js';
import { createRefusalAggregator } from './refusals.js';
import { noteAudit, type ApiContext, type Route } from './route.js';
import { OperationIdParams } from './schemas.js';

const challenge = 'Bearer realm="proxmox-manager"';

function unauthenticated(auth: Extract<Authentication, { ok: false }>): ApiError {
  return new ApiError(
    401,
    'unauthenticated',
    auth.reason === 'missing' ? 'send Authorization: Bearer <token>' : 'the bearer token is not valid',
    undefined,
    { 'WWW-Authenticate': auth.reason === 'missing' ? challenge : `${challenge}, error="invalid_token"` },
  );
}

export function createGuard(s: Services): (route: Route) => (c: ApiContext) => Promise<Response> {
  const authenticate = createAuthenticator(s.config.api.tokens);

  const refusals = createRefusalAggregator((entry) => s.audit.append(entry), s.now);

  /** The audit record of this request; `result` is what happened. */
  const entryFor = (c: ApiContext, action: string, actor: string, result: string, status: number, err?: ApiError) => {
    const note = c.get('auditNote') ?? {};
    return {
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
    };
  };
  const record = (...args: Parameters<typeof entryFor>) => s.audit.append(entryFor(...args));

  /**
   * Failing to record a refusal must not turn it into a 500: it is logged instead. Anonymous
   * refusals go through the aggregator, so a flood of them cannot flood the log.
   */
  const recordRefusal = async (c: ApiContext, route: Route, actor: string, err: ApiError) => {
    const entry = entryFor(c, route.audit ?? 'api.access', actor, err.code, err.status, err);
    await (actor === 'anonymous' ? refusals.refuse(entry) : s.audit.append(entry))?.catch((e: Error) =>
      s.log(`[api] ${c.get('requestId')} could not record a refused ${route.audit ?? 'request'}: ${redact(e.message)}`),
    );
  };

  return (route) => async (c) => {
    // Every record about an operation names it, refusals included.
    const target = OperationIdParams.safeParse(c.req.param());
    if (target.success) noteAudit(c, { operationId: target.data.id });

    if (route.access !== 'public') {
      const auth = authenticate(c.req.header('authorization'));
      if (!auth.ok) {
        const err = unauthenticated(auth);
        await recordRefusal(c, route, 'anonymous', err);
        throw err;
      }
      c.set('identity', auth.identity);
      if (!can(auth.identity, route.access)) {
        const { actor, roles } = auth.identity;
        const err = new ApiError(403, 'forbidden', `${actor} (${roles.join(', ')}) may not ${route.access} here`);
        await recordRefusal(c, route, actor, err);
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
        await recordRefusal(c, route, actor, known);
      }
      throw err;
    }

    if (route.audit) {
      try {
        await record(c, route.audit, actor, c.get('auditNote')?.result ?? 'ok', response.status);
      } catch (e) {
        s.log(`[api] ${c.get('requestId')} could not record ${route.audit}: ${redact((e as Error).message)}`);
        const operationId = c.get('auditNote')?.operationId;
        throw new ApiError(
          500,
          'audit_failed',
          `the request was carried out (${route.audit}${operationId ? ` ${operationId}` : ''}) ` +
            'but could not be written to the audit log; tell an administrator',
        );
      }
    }
    return response;
  };
}
