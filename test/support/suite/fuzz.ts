/**
 * Random requests against the API, reproducible from a seed: every route of its OpenAPI
 * document, with bodies and parameters that start from the documented schema and are then
 * bent — fields dropped, retyped, oversized, nested deeply, prototype keys, broken JSON,
 * odd content types, odd or missing tokens, wrong methods, paths that are not routes.
 */
import { between } from './report.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  enum?: Json[];
  minimum?: number;
  maximum?: number;
  anyOf?: Schema[];
  oneOf?: Schema[];
}

interface Parameter {
  name: string;
  in: 'path' | 'query';
  required?: boolean;
  schema: Schema;
}

interface Operation {
  'x-permission': string;
  parameters?: Parameter[];
  requestBody?: { required?: boolean; content: { 'application/json': { schema: Schema } } };
}

export interface OpenApiDocument {
  paths: Record<string, Record<string, Operation>>;
}

export interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

const STRINGS = [
  '',
  ' ',
  'home',
  'pve1',
  'a'.repeat(5_000),
  '../../etc/passwd',
  '..%2F..%2Fetc',
  '%00',
  '\u0000',
  '\u202e',
  '😀',
  "' OR '1'='1",
  "home' OR PmEnvironment IS NOT NULL OR '",
  '${jndi:ldap://x}',
  '{{7*7}}',
  '<script>alert(1)</script>',
  '-1',
  '1e309',
  'NaN',
  'null',
  'true',
  '__proto__',
  'constructor',
];
const NUMBERS = [0, -1, 1, 1.5, -0, 100, 999, 1001, 2 ** 31, 2 ** 53, Number.MAX_SAFE_INTEGER + 2, 1e308, -1e308];

export function createFuzzer(next: () => number, document: OpenApiDocument, tokens: string[]) {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(next() * list.length)]!;
  const chance = (p: number) => next() < p;

  function valueFor(schema: Schema | undefined, depth = 0): Json {
    if (!schema) return pick(STRINGS);
    if (schema.enum && chance(0.8)) return pick(schema.enum);
    const variants = schema.anyOf ?? schema.oneOf;
    if (variants?.length) return valueFor(pick(variants), depth);
    const type = Array.isArray(schema.type) ? pick(schema.type) : schema.type;
    switch (type) {
      case 'integer':
      case 'number':
        return chance(0.6) && schema.minimum !== undefined
          ? between(next, schema.minimum, Math.min(schema.maximum ?? schema.minimum + 1_000, schema.minimum + 1_000))
          : pick(NUMBERS);
      case 'boolean':
        return chance(0.5);
      case 'array':
        return Array.from({ length: between(next, 0, 3) }, () => valueFor(schema.items, depth + 1));
      case 'object':
        return objectFor(schema, depth + 1);
      default:
        return pick(STRINGS);
    }
  }

  function objectFor(schema: Schema, depth: number): { [key: string]: Json } {
    const out: { [key: string]: Json } = {};
    if (depth > 4) return out;
    for (const [key, property] of Object.entries(schema.properties ?? {})) {
      if (schema.required?.includes(key) || chance(0.5)) out[key] = valueFor(property, depth);
    }
    return out;
  }

  /** Bends a value the schema would accept into one it might not. */
  function mutate(value: { [key: string]: Json }): Json {
    const keys = Object.keys(value);
    switch (between(next, 0, 9)) {
      case 0:
        if (keys.length) delete value[pick(keys)];
        return value;
      case 1:
        if (keys.length) value[pick(keys)] = pick<Json>([null, [], {}, pick(STRINGS), pick(NUMBERS), true]);
        return value;
      case 2:
        value[pick(['extra', 'x-actor-id', 'requester', 'meta', 'by', 'approvedBy'])] = pick<Json>([
          'mallory',
          { requester: 'mallory' },
          1,
        ]);
        return value;
      case 3: {
        let deep: Json = value;
        for (let i = 0; i < 200; i++) deep = { nested: deep };
        return deep;
      }
      case 4:
        return JSON.parse(
          '{"__proto__": {"polluted": true}, "constructor": {"prototype": {"polluted": true}}}',
        ) as Json;
      case 5:
        return pick<Json>([null, [], 'string', 42, [value]]);
      default:
        return value;
    }
  }

  function bodyFor(operation: Operation | undefined): string | undefined {
    const schema = operation?.requestBody?.content['application/json'].schema;
    if (!schema && chance(0.7)) return undefined;
    const base = schema ? objectFor(schema, 0) : {};
    const text = JSON.stringify(chance(0.75) ? mutate(base) : base);
    switch (between(next, 0, 11)) {
      case 0:
        return text.slice(0, Math.max(1, Math.floor(text.length / 2)));
      case 1:
        return `\ufeff${text}`;
      case 2:
        return pick(['', 'null', '{', '[]', '{"a":1,}', 'NaN', '{"a": 1e309}', '\u0000', 'x'.repeat(10_000)]);
      case 3:
        return `{"pad":"${'y'.repeat(between(next, 4_000, 200_000))}"}`;
      default:
        return text;
    }
  }

  function pathFor(template: string, operation: Operation | undefined): string {
    let path = template.replace(/\{(\w+)\}/g, (_, name: string) => {
      const parameter = operation?.parameters?.find((p) => p.in === 'path' && p.name === name);
      const value = chance(0.5) && parameter ? String(valueFor(parameter.schema)) : pick(STRINGS);
      return chance(0.8) ? encodeURIComponent(value) : value.replace(/[\s#?]/g, '');
    });
    const query = new URLSearchParams();
    for (const parameter of operation?.parameters?.filter((p) => p.in === 'query') ?? []) {
      if (parameter.required || chance(0.4)) query.append(parameter.name, String(valueFor(parameter.schema)));
    }
    if (chance(0.2)) query.append(pick(['environment', 'limit', 'x', '__proto__', 'state']), pick(STRINGS));
    if (chance(0.05)) path = `${path}/${pick(['..', 'x', '%2e%2e', ''])}`;
    const search = query.toString();
    return search ? `${path}?${search}` : path;
  }

  const routes = Object.entries(document.paths).flatMap(([path, operations]) =>
    Object.entries(operations).map(([method, operation]) => ({ path, method: method.toUpperCase(), operation })),
  );

  return function request(): FuzzRequest {
    const route = chance(0.95)
      ? pick(routes)
      : { path: pick(['/v1/nowhere', '/v1', '/', '/v1/operations/%ZZ', '/.env']), method: 'GET', operation: undefined };
    const method = chance(0.9) ? route.method : pick(['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD']);
    const headers: Record<string, string> = {};
    const token = chance(0.85) ? pick(tokens) : pick(['', 'not-a-token', 'a'.repeat(4_000), '\u00e9', 'x y']);
    if (chance(0.9))
      headers.authorization = pick([
        `Bearer ${token}`,
        `bearer ${token}`,
        token,
        `Basic ${token}`,
        `Bearer  ${token} `,
      ]);
    if (chance(0.8))
      headers['content-type'] = pick([
        'application/json',
        'application/json; charset=utf-8',
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        '',
      ]);
    if (chance(0.1)) headers['x-actor-id'] = 'admin';
    const body = method === 'GET' || method === 'HEAD' ? undefined : bodyFor(route.operation);
    return { method, path: pathFor(route.path, route.operation), headers, ...(body !== undefined ? { body } : {}) };
  };
}

/** What every answer must be, whatever was sent: a 2xx-4xx, JSON errors naming a code, no stack frames. */
export function problemsWith(method: string, status: number, contentType: string | null, text: string): string[] {
  const problems: string[] = [];
  if (status >= 500) problems.push(`status ${status}`);
  // A HEAD answer has headers only.
  if (method === 'HEAD') return problems;
  if (status >= 400) {
    // Successful answers may echo what was sent (the audit log does); errors must not carry internals.
    if (/\bat (async )?\S+ \(.+:\d+:\d+\)|node_modules|file:\/\//.test(text))
      problems.push('stack frame or file path in the answer');
    if (!contentType?.startsWith('application/json')) problems.push(`error answered as ${contentType}`);
    else {
      try {
        const code = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
        if (typeof code !== 'string') problems.push('error without error.code');
      } catch {
        problems.push('error body is not JSON');
      }
    }
  }
  return problems;
}
