/**
 * The OpenAPI document is generated from the routes and their zod schemas: it lists every
 * route the app serves, every operation kind with its body, and resolves every reference.
 */
import { describe, expect, it } from 'vitest';
import { operations } from '../../lib/operations/catalog.js';
import { testApi } from './api-fakes.js';

interface Doc {
  openapi: string;
  paths: Record<string, Record<string, { security: unknown[]; parameters?: { name: string; in: string }[]; requestBody?: { content: Record<string, { schema: Record<string, unknown> }> }; responses: Record<string, unknown> }>>;
  components: { schemas: Record<string, unknown> };
}

async function document(): Promise<Doc> {
  const response = await testApi().call('GET', '/openapi.json');
  expect(response.status).toBe(200);
  return (await response.json()) as Doc;
}

describe('OpenAPI document', () => {
  it('is OpenAPI 3.1 and describes every route the app serves', async () => {
    const api = testApi();
    const doc = await document();
    expect(doc.openapi).toBe('3.1.0');
    const served = api.app.routes
      .filter((r) => r.method !== 'ALL' && !r.path.endsWith(':kind'))
      .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:(\w+)/g, '{$1}')}`);
    const documented = Object.entries(doc.paths).flatMap(([path, methods]) => Object.keys(methods).map((m) => `${m} ${path}`));
    expect(documented.sort()).toEqual([...new Set(served)].sort());
  });

  it('documents each operation kind with its body schema, strict like the validator', async () => {
    const doc = await document();
    for (const op of operations) {
      const post = doc.paths[`/v1/operations/${op.kind}`]?.post;
      expect(post, op.kind).toBeDefined();
      const schema = post!.requestBody!.content['application/json']!.schema;
      expect(schema).toMatchObject({ type: 'object', additionalProperties: false });
      expect(schema.required).toContain('environment');
    }
  });

  it('documents query and path parameters, and marks public routes', async () => {
    const doc = await document();
    expect(doc.paths['/v1/inventory']!.get!.parameters!.map((p) => p.name)).toEqual(['environment', 'state', 'type', 'tag', 'node']);
    expect(doc.paths['/v1/operations/{id}/approve']!.post!.parameters).toEqual([expect.objectContaining({ name: 'id', in: 'path', required: true })]);
    expect(doc.paths['/healthz']!.get!.security).toEqual([]);
    expect(doc.paths['/v1/operations']!.get!.security).toEqual([{ bearer: [] }]);
  });

  it('resolves every $ref to a component', async () => {
    const doc = await document();
    const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) {
      const name = /#\/components\/schemas\/([^"]+)/.exec(ref)?.[1];
      expect(name, ref).toBeDefined();
      expect(doc.components.schemas[name!], ref).toBeDefined();
    }
  });
});

describe('docs page', () => {
  it('is self-contained HTML listing every path', async () => {
    const api = testApi();
    const response = await api.call('GET', '/docs');
    expect(response.headers.get('content-type')).toMatch(/^text\/html/);
    const html = await response.text();
    expect(html).not.toMatch(/<script|src="http|href="http/);
    const doc = await document();
    for (const path of Object.keys(doc.paths)) expect(html).toContain(`<code>${path}</code>`);
  });
});
