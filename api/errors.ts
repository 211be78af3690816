/**
 * The one error shape and the one error handler. Every failure leaves the API as
 *
 *   { "error": { "code": "invalid_body", "message": "...", "details": [{ "path": "vmid", "message": "..." }] } }
 *
 * Bad input is always a 4xx naming the field; anything unexpected is a 500 with a generic
 * message and a correlation id, logged on the server without stack traces.
 */
import { isGrpcServiceError, WorkflowExecutionAlreadyStartedError, WorkflowNotFoundError } from '@temporalio/client';
import type { Context, ErrorHandler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import type { z } from 'zod';

export interface ErrorDetail {
  path: string;
  message: string;
}

export interface ErrorBody {
  error: { code: string; message: string; details?: ErrorDetail[]; correlationId?: string };
}

export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly details?: ErrorDetail[],
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** `a.b.0.c`, or `(root)` for the value as a whole. */
function formatPath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(root)' : path.map(String).join('.');
}

/** One detail per offending field; unknown keys get one detail each, named by their own path. */
export function zodDetails(error: z.ZodError): ErrorDetail[] {
  return error.issues.flatMap((issue) =>
    issue.code === 'unrecognized_keys'
      ? issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: 'unknown field' }))
      : [{ path: formatPath(issue.path), message: issue.message }],
  );
}

/**
 * Error messages that reach a log line pass through here: whatever an upstream library
 * put in them, credentials in the shapes we handle do not come out.
 */
export function redact(text: string): string {
  return text
    .replace(/PVEAPIToken=[^\s'"]+/g, 'PVEAPIToken=[redacted]')
    .replace(/\bBearer\s+[^\s'"]+/gi, 'Bearer [redacted]')
    .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, '[redacted-uuid]');
}

const temporalUnavailableCodes = new Set([14 /* UNAVAILABLE */, 4 /* DEADLINE_EXCEEDED */]);

function isTemporalUnavailable(err: unknown): boolean {
  const cause = (err as { cause?: unknown }).cause;
  return [err, cause].some((e) => isGrpcServiceError(e) && temporalUnavailableCodes.has(e.code));
}

/** Maps what routes and libraries throw to a status and body; undefined when unexpected. */
export function classify(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (err instanceof HTTPException)
    return new ApiError(err.status as ContentfulStatusCode, 'http_error', err.message || 'request failed');
  if (err instanceof WorkflowNotFoundError) return new ApiError(404, 'not_found', 'no such operation');
  if (err instanceof WorkflowExecutionAlreadyStartedError) {
    return new ApiError(
      409,
      'already_started',
      'an operation with this id is already running (one rolling maintenance per cluster, or an identical request); see GET /v1/operations',
    );
  }
  if (isTemporalUnavailable(err))
    return new ApiError(503, 'temporal_unavailable', 'Temporal is not reachable; try again shortly');
  return undefined;
}

export function errorBody(err: ApiError, correlationId?: string): ErrorBody {
  return {
    error: {
      code: err.code,
      message: err.message,
      ...(err.details?.length ? { details: err.details } : {}),
      ...(correlationId ? { correlationId } : {}),
    },
  };
}

export function errorResponse(c: Context, err: ApiError): Response {
  return c.json(errorBody(err), err.status, err.headers);
}

/** The app's `onError`: known failures answered as such, the rest as a logged 500. */
export function createErrorHandler(log: (line: string) => void, requestId: (c: Context) => string): ErrorHandler {
  return (err, c) => {
    const known = classify(err);
    if (known) return errorResponse(c, known);
    const id = requestId(c);
    const name = err instanceof Error ? err.name : typeof err;
    const message = err instanceof Error ? err.message : String(err);
    log(`[api] ${id} ${c.req.method} ${c.req.path} failed: ${name}: ${redact(message)}`);
    return c.json(
      errorBody(new ApiError(500, 'internal', 'internal error; quote the correlation id when reporting it'), id),
      500,
    );
  };
}

export const notFound: NotFoundHandler = (c) =>
  errorResponse(c, new ApiError(404, 'not_found', `no route for ${c.req.method} ${c.req.path}`));

export function methodNotAllowedResponse(c: Context, allowed: string[]): Response {
  return errorResponse(
    c,
    new ApiError(
      405,
      'method_not_allowed',
      `${c.req.method} is not allowed here; use ${allowed.join(', ')}`,
      undefined,
      {
        Allow: allowed.join(', '),
      },
    ),
  );
}
