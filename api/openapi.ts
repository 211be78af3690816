/**
 * The OpenAPI 3.1 document, generated from the routes themselves: their zod schemas (via
 * `z.toJSONSchema`), access rules and responses. Nothing is written by hand, so the
 * document cannot drift from what the API accepts. Also rendered as a plain HTML page.
 */
import { z } from 'zod';
import { describeRequestSchema } from '../lib/operations/request-docs.js';
import type { Route } from './route.js';
import { ErrorResponse } from './schemas.js';

type JsonSchema = Record<string, unknown>;

export interface OpenApiDocument {
  openapi: '3.1.0';
  info: { title: string; version: string; description: string };
  paths: Record<string, Record<string, OpenApiOperation>>;
  components: { schemas: Record<string, JsonSchema>; securitySchemes: Record<string, unknown> };
}

interface OpenApiParameter {
  name: string;
  in: 'path' | 'query';
  required: boolean;
  description?: string;
  schema: JsonSchema;
}

interface OpenApiOperation {
  operationId: string;
  tags: string[];
  summary: string;
  description?: string;
  security: Record<string, string[]>[];
  'x-permission': string;
  parameters?: OpenApiParameter[];
  requestBody?: { required: boolean; content: { 'application/json': { schema: JsonSchema } } };
  responses: Record<string, { description: string; content?: { 'application/json': { schema: JsonSchema } } }>;
}

/** Moves `$defs` (schemas with a `.meta({ id })`) into components and points refs there. */
function hoist(schema: JsonSchema, components: Record<string, JsonSchema>): JsonSchema {
  const rewrite = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(rewrite);
    if (value === null || typeof value !== 'object') return value;
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      if (key === '$schema' || key === '$defs') continue;
      out[key] = key === '$ref' && typeof v === 'string' ? v.replace('#/$defs/', '#/components/schemas/') : rewrite(v);
    }
    return out;
  };
  const defs = (schema.$defs ?? {}) as Record<string, JsonSchema>;
  for (const [id, def] of Object.entries(defs)) components[id] = rewrite(def) as JsonSchema;
  return rewrite(schema) as JsonSchema;
}

function jsonSchema(schema: z.ZodType, io: 'input' | 'output', components: Record<string, JsonSchema>): JsonSchema {
  return hoist(
    z.toJSONSchema(schema, { target: 'draft-2020-12', io, unrepresentable: 'any' }) as JsonSchema,
    components,
  );
}

/** Operation requests get each field's meaning and an example (lib/operations/request-docs.ts). */
function requestBodySchema(route: Route, schema: z.ZodType, components: Record<string, JsonSchema>): JsonSchema {
  const body = jsonSchema(schema, 'input', components);
  const kind = /^\/v1\/operations\/([a-z-]+)$/.exec(route.path)?.[1];
  return kind ? describeRequestSchema(kind, body) : body;
}

function parameters(
  schema: z.ZodType | undefined,
  location: 'path' | 'query',
  components: Record<string, JsonSchema>,
): OpenApiParameter[] {
  if (!schema) return [];
  const object = jsonSchema(schema, 'input', components);
  const properties = (object.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((object.required ?? []) as string[]);
  return Object.entries(properties).map(([name, property]) => {
    const { description, ...rest } = property;
    return {
      name,
      in: location,
      required: location === 'path' || required.has(name),
      ...(typeof description === 'string' ? { description } : {}),
      schema: rest,
    };
  });
}

function operationId(route: Route): string {
  const words = route.path
    .split('/')
    .filter(Boolean)
    .map((part) => part.replace(/[{}]/g, '').replace(/-(\w)/g, (_, ch: string) => ch.toUpperCase()));
  return [route.method.toLowerCase(), ...words.map((w) => w[0]!.toUpperCase() + w.slice(1))].join('');
}

/**
 * What the app answers around any route, before or besides its handler (guard, body limit,
 * validation), unless the route documents the status itself.
 */
function standardResponses(route: Route): Route['responses'] {
  const error = (description: string) => ({ description, schema: ErrorResponse });
  const responses: Route['responses'] = {};
  if (route.params || route.query || route.body)
    responses[400] = error('a parameter, the query or the body is invalid (details name the field)');
  if (route.access !== 'public') {
    responses[401] = error('no bearer token, or not a valid one');
    responses[403] = error('the token’s roles or environments do not allow this');
  }
  if (route.params) responses[404] = error('nothing is there');
  if (route.body) {
    responses[413] = error('the body is larger than api.max_body_bytes');
    responses[415] = error('the body is not application/json');
  }
  return responses;
}

/**
 * A field named `environment` (and a schema marked `x-environment`) takes a configured
 * environment's name, nothing else: the document lists them, so a client (or a contract
 * tester) knows which values are valid.
 */
function namingEnvironments(environments: readonly string[]): (schema: JsonSchema, key?: string) => JsonSchema {
  const visit = (value: unknown, key?: string): unknown => {
    if (Array.isArray(value)) return value.map((v) => visit(v));
    if (value === null || typeof value !== 'object') return value;
    const node = value as JsonSchema;
    const out: JsonSchema = {};
    for (const [k, v] of Object.entries(node)) {
      out[k] =
        k === 'properties'
          ? Object.fromEntries(Object.entries(v as JsonSchema).map(([name, p]) => [name, visit(p, name)]))
          : visit(v);
    }
    const isEnvironment = node['x-environment'] === true || (key === 'environment' && node.type === 'string');
    if (isEnvironment && environments.length > 0) {
      delete out.pattern;
      delete out['x-environment'];
      out.enum = [...environments];
    }
    return out;
  };
  return (schema, key) => visit(schema, key) as JsonSchema;
}

export function openApiDocument(
  routes: readonly Route[],
  options: { environments?: readonly string[] } = {},
): OpenApiDocument {
  const components: Record<string, JsonSchema> = {};
  const paths: OpenApiDocument['paths'] = {};
  const named = namingEnvironments(options.environments ?? []);
  for (const route of routes.filter((r) => !r.hidden)) {
    const params = [
      ...parameters(route.params, 'path', components),
      ...parameters(route.query, 'query', components),
    ].map((p) => ({
      ...p,
      schema: named(p.schema, p.name),
    }));
    const operation: OpenApiOperation = {
      operationId: operationId(route),
      tags: [route.tag],
      summary: route.summary,
      ...(route.description ? { description: route.description } : {}),
      security: route.access === 'public' ? [] : [{ bearer: [] }],
      'x-permission': route.access,
      ...(params.length > 0 ? { parameters: params } : {}),
      ...(route.body
        ? {
            requestBody: {
              required: route.body.required,
              content: {
                'application/json': { schema: named(requestBodySchema(route, route.body.schema, components)) },
              },
            },
          }
        : {}),
      responses: Object.fromEntries(
        Object.entries({ ...standardResponses(route), ...route.responses }).map(([status, response]) => [
          status,
          {
            description: response.description,
            ...(response.schema
              ? { content: { 'application/json': { schema: jsonSchema(response.schema, 'output', components) } } }
              : {}),
          },
        ]),
      ),
    };
    (paths[route.path] ??= {})[route.method.toLowerCase()] = operation;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'proxmox-manager',
      version: '1',
      description:
        'Plan -> approve -> apply operations on Proxmox VE clusters, run as Temporal workflows. ' +
        'Authenticate with `Authorization: Bearer <token>`; roles: viewer (read), operator (start, cancel), ' +
        'approver (approve, reject), admin (all). Every error is `{ error: { code, message, details? } }`.',
    },
    paths,
    components: {
      schemas: components,
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
    },
  };
}

const escapeHtml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

const pretty = (value: unknown) => `<pre>${escapeHtml(JSON.stringify(value, null, 2))}</pre>`;

const shortType = (schema: JsonSchema): string => {
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as JsonSchema[]).map(shortType).join(' or ');
  if (schema.type === 'array' && schema.items) return `${shortType(schema.items as JsonSchema)}[]`;
  return typeof schema.$ref === 'string' ? schema.$ref.split('/').pop()! : String(schema.type ?? 'any');
};

/** A request body as people read it: one row per field (type, default, meaning), then an example; the raw schema folded away. */
function bodyFields(schema: JsonSchema): string {
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema.required ?? []) as string[]);
  const rows = Object.entries(properties)
    .map(
      ([name, p]) =>
        `<tr><td><code>${escapeHtml(name)}</code></td><td><code>${escapeHtml(shortType(p))}</code></td>` +
        `<td>${required.has(name) ? 'required' : p.default !== undefined ? `<code>${escapeHtml(JSON.stringify(p.default))}</code>` : '—'}</td>` +
        `<td>${escapeHtml(typeof p.description === 'string' ? p.description : '')}</td></tr>`,
    )
    .join('');
  const table = rows
    ? `<table><tr><th>field</th><th>type</th><th>default</th><th>meaning</th></tr>${rows}</table>`
    : '';
  const examples = Array.isArray(schema.examples)
    ? schema.examples.map((e) => `<p>example:</p>${pretty(e)}`).join('')
    : '';
  return `${table}${examples}<details><summary>JSON schema</summary>${pretty(schema)}</details>`;
}

/** A self-contained page (no scripts, no external assets) listing every path of the document. */
export function docsPage(doc: OpenApiDocument): string {
  const sections = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => {
      const params = op.parameters?.length
        ? `<table><tr><th>parameter</th><th>in</th><th>required</th><th>schema</th><th>description</th></tr>${op.parameters
            .map(
              (p) =>
                `<tr><td><code>${escapeHtml(p.name)}</code></td><td>${p.in}</td><td>${p.required ? 'yes' : 'no'}</td>` +
                `<td><code>${escapeHtml(JSON.stringify(p.schema))}</code></td><td>${escapeHtml(p.description ?? '')}</td></tr>`,
            )
            .join('')}</table>`
        : '';
      const body = op.requestBody
        ? `<h4>request body${op.requestBody.required ? '' : ' (optional)'}</h4>${bodyFields(op.requestBody.content['application/json'].schema)}`
        : '';
      const responses = Object.entries(op.responses)
        .map(([status, r]) => {
          const schema = r.content?.['application/json'].schema;
          const ref = typeof schema?.$ref === 'string' ? schema.$ref.split('/').pop() : undefined;
          const shape = ref
            ? ` — <a href="#schema-${escapeHtml(ref)}">${escapeHtml(ref)}</a>`
            : schema
              ? `<details><summary>schema</summary>${pretty(schema)}</details>`
              : '';
          return `<li><b>${status}</b> ${escapeHtml(r.description)}${shape}</li>`;
        })
        .join('');
      return (
        `<section id="${escapeHtml(op.operationId)}"><h3><span class="method ${method}">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code></h3>` +
        `<p>${escapeHtml(op.summary)}</p>${op.description ? `<p>${escapeHtml(op.description)}</p>` : ''}` +
        `<p class="access">access: <b>${escapeHtml(op['x-permission'])}</b></p>${params}${body}<h4>responses</h4><ul>${responses}</ul></section>`
      );
    }),
  );
  const schemas = Object.entries(doc.components.schemas)
    .map(
      ([name, schema]) =>
        `<section id="schema-${escapeHtml(name)}"><h3>${escapeHtml(name)}</h3>${bodyFields(schema)}</section>`,
    )
    .join('');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(doc.info.title)} API</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
section{border-top:1px solid #ddd;padding:.5rem 0}
pre{background:#f6f6f6;padding:.5rem;overflow:auto;font-size:13px}
table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}
.method{display:inline-block;min-width:4rem;text-align:center;border-radius:3px;color:#fff;font-size:13px;padding:0 .3rem}
.get{background:#2a7ab0}.post{background:#3c9a4c}.access{color:#555}
</style></head><body>
<h1>${escapeHtml(doc.info.title)} API</h1><p>${escapeHtml(doc.info.description)}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI ${doc.openapi}).</p>
<h2>Paths</h2>${sections.join('\n')}
<h2>Schemas</h2>${schemas}
</body></html>`;
}
