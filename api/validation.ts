/**
 * Reading a request's path, query and body through zod. Every rejection names the field
 * and the reason; nothing a client sends can make these throw anything but an ApiError.
 */
import type { Context } from 'hono';
import type { z } from 'zod';
import { ApiError, zodDetails } from './errors.js';

function check<S extends z.ZodType>(schema: S, value: unknown, code: string, what: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw new ApiError(400, code, `invalid ${what}`, zodDetails(result.error));
}

export function parseParams<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  return check(schema, c.req.param(), 'invalid_path', 'path parameter');
}

/** Query parameters, each at most once. */
export function parseQuery<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  const single: Record<string, string> = {};
  const repeated: string[] = [];
  for (const [name, values] of Object.entries(c.req.queries())) {
    if (values.length > 1) repeated.push(name);
    single[name] = values[0] ?? '';
  }
  if (repeated.length > 0) {
    throw new ApiError(
      400,
      'invalid_query',
      'invalid query string',
      repeated.map((path) => ({ path, message: 'given more than once' })),
    );
  }
  return check(schema, single, 'invalid_query', 'query string');
}

/** `application/json`, optionally with `charset=utf-8`. */
function isJson(contentType: string): boolean {
  const [type, ...params] = contentType.split(';').map((p) => p.trim().toLowerCase());
  if (type !== 'application/json') return false;
  return params.every((p) => !p.startsWith('charset=') || p === 'charset=utf-8' || p === 'charset="utf-8"');
}

/**
 * The JSON body validated by `schema`. With `optional`, a request without a body is read
 * as `{}` (for endpoints whose every field is optional).
 */
export async function parseBody<S extends z.ZodType>(
  c: Context,
  schema: S,
  options: { optional?: boolean } = {},
): Promise<z.infer<S>> {
  const text = await c.req.text();
  if (text.length === 0) {
    if (options.optional) return check(schema, {}, 'invalid_body', 'request body');
    throw new ApiError(400, 'invalid_body', 'request body is empty; send a JSON object', [
      { path: '(root)', message: 'required' },
    ]);
  }
  const contentType = c.req.header('content-type');
  if (!contentType || !isJson(contentType)) {
    throw new ApiError(415, 'unsupported_media_type', 'send the body as application/json (UTF-8)', [
      { path: '(header) content-type', message: contentType ? `is ${contentType.slice(0, 100)}` : 'is missing' },
    ]);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // The parser's message quotes the body; only its position goes back.
    const position = /position (\d+)/.exec((err as Error).message)?.[1];
    throw new ApiError(400, 'malformed_json', 'request body is not valid JSON', [
      { path: '(root)', message: position ? `syntax error at character ${position}` : 'syntax error' },
    ]);
  }
  return check(schema, value, 'invalid_body', 'request body');
}
