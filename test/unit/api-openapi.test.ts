/**
 * The OpenAPI document is generated from the routes and their zod schemas: it lists every
 * route the app serves, every operation kind with its body, and resolves every reference.
 */
import { describe, expect, it } from 'vitest';
import { operations } from '../../lib/operations/catalog.js';
import { testApi } from './api-fakes.js';

interface Doc {
  openapi: string;
  paths: Record<
    string,
    Record<
      string,
      {
        security: unknown[];
        parameters?: { name: string; in: string; schema?: Record<string, unknown> }[];
        requestBody?: { content: Record<string, { schema: Record<string, unknown> }> };
        responses: Record<string, unknown>;
      }
    >
  >;
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
    const documented = Object.entries(doc.paths).flatMap(([path, methods]) =>
      Object.keys(methods).map((m) => `${m} ${path}`),
    );
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
    expect(doc.paths['/v1/inventory']!.get!.parameters!.map((p) => p.name)).toEqual([
      'environment',
      'state',
      'type',
      'tag',
      'node',
      'fresh',
    ]);
    expect(doc.paths['/v1/operations/{id}/approve']!.post!.parameters).toEqual([
      expect.objectContaining({ name: 'id', in: 'path', required: true }),
    ]);
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

describe('OpenAPI document, as an outside contract tester reads it', () => {
  type Operation = Doc['paths'][string][string];
  const op = async (path: string, method: string) => (await document()).paths[path]![method] as Operation;
  const bodyOf = (o: Operation) =>
    o.requestBody!.content['application/json']!.schema as {
      properties: Record<string, Record<string, unknown>>;
    } & Record<string, unknown>;

  it('lists the answers the guard and the body limit give: 401 and 403 behind a token, 413 and 415 with a body', async () => {
    expect(Object.keys((await op('/v1/environments', 'get')).responses)).toEqual(
      expect.arrayContaining(['200', '401', '403']),
    );
    expect(Object.keys((await op('/v1/operations/vm-action', 'post')).responses)).toEqual(
      expect.arrayContaining(['400', '401', '403', '413', '415']),
    );
    expect(Object.keys((await op('/healthz', 'get')).responses)).not.toContain('401');
  });

  it('names the configured environments as the only values of an environment field', async () => {
    expect(bodyOf(await op('/v1/operations/vm-action', 'post')).properties.environment).toMatchObject({
      enum: ['home', 'cloud'],
    });
    expect((await op('/v1/inventory', 'get')).parameters!.find((p) => p.name === 'environment')!.schema).toMatchObject({
      enum: ['home', 'cloud'],
    });
    expect((await op('/v1/drift/{id}', 'get')).parameters!.find((p) => p.name === 'id')!.schema).toMatchObject({
      enum: ['home', 'cloud'],
    });
  });

  it('documents a page size as the integer range the API accepts', async () => {
    expect((await op('/v1/operations', 'get')).parameters!.find((p) => p.name === 'pageSize')!.schema).toMatchObject({
      type: 'integer',
      minimum: 1,
      maximum: 500,
    });
  });

  it('states the rules that join fields, and case-insensitive ids without a flag JSON Schema cannot carry', async () => {
    expect(bodyOf(await op('/v1/operations/vm-resize', 'post')).anyOf).toEqual([
      { required: ['cores'] },
      { required: ['memoryMb'] },
      { required: ['disk'] },
    ]);
    expect(bodyOf(await op('/v1/operations/vm-create', 'post'))).toMatchObject({
      if: { properties: { type: { const: 'lxc' } } },
      then: { required: ['ostemplate'] },
    });
    expect(bodyOf(await op('/v1/operations/iso-import', 'post')).allOf).toContainEqual({
      if: { properties: { checksumAlgorithm: { const: 'sha512' } }, required: ['checksumAlgorithm'] },
      then: { properties: { checksum: { minLength: 128, maxLength: 128 } } },
    });
    expect(bodyOf(await op('/v1/operations/bulk-action', 'post')).properties.tags).toMatchObject({
      format: 'pm-tag-expression',
      maxLength: 1024,
    });
    expect(bodyOf(await op('/v1/operations/storage-cleanup', 'post')).properties.storage!.pattern).toBe(
      '^[A-Za-z][A-Za-z0-9\\-_.]*[A-Za-z0-9]$',
    );
  });

  it('answers OPTIONS with the methods the document lists for that very path', async () => {
    const api = testApi();
    const kind = await api.call('OPTIONS', '/v1/operations/vm-action', { token: 'admin' });
    expect([kind.status, kind.headers.get('allow')]).toEqual([405, 'POST']);
    const operation = await api.call('OPTIONS', '/v1/operations/some-id', { token: 'admin' });
    expect([operation.status, operation.headers.get('allow')]).toEqual([405, 'GET, HEAD']);
  });

  it('takes a node rejection without a reason as its schema says, leaving the rule to the workflow', async () => {
    const api = testApi();
    const response = await api.call('POST', '/v1/operations/no-such-op/nodes/pve1/reject', {
      token: 'approver',
      body: { planVersion: 1 },
    });
    expect(response.status).toBe(404);
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
