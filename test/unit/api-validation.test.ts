/**
 * Bad input, generated: malformed JSON, unknown fields, a wrong value for every field of
 * every operation body, oversize bodies, odd content types and bad query strings. Each is
 * answered 4xx with the offending field named — never a 500, never a stack trace.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { operations } from '../../lib/operations/catalog.js';
import { operationPath, testApi, testConfig, validBodies, type TestApi } from './api-fakes.js';

interface ErrorBody {
  error: { code: string; message: string; details?: { path: string; message: string }[] };
}

async function expectRejected(response: Response, status: number, path?: string): Promise<ErrorBody> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(text).not.toMatch(/\bat .+:\d+:\d+/); // no stack frames
  const body = JSON.parse(text) as ErrorBody;
  expect(body.error.code).toEqual(expect.any(String));
  expect(body.error.message).toEqual(expect.any(String));
  if (path !== undefined) {
    const paths = body.error.details?.map((d) => d.path) ?? [];
    expect(
      paths.some((p) => p === path || p.startsWith(`${path}.`)),
      `details name ${path}: ${paths.join(', ')}`,
    ).toBe(true);
  }
  return body;
}

type JsonSchema = {
  type?: string | string[];
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  items?: JsonSchema;
  pattern?: string;
  minLength?: number;
  minItems?: number;
  propertyNames?: JsonSchema;
};

/** Values of the wrong type, or out of range, for a field with this JSON schema. */
function wrongValues(schema: JsonSchema): unknown[] {
  const values: unknown[] = [null];
  if (schema.type !== 'object') values.push({ nested: true });
  switch (schema.type) {
    case 'object':
      values.push('x', 1, ['x']);
      if (schema.propertyNames?.pattern) values.push({ 'Not A Name!': 'x' });
      break;
    case 'integer':
      values.push('1', true, [1], 1.5, 'NaN');
      if (schema.minimum !== undefined) values.push(schema.minimum - 1);
      if (schema.maximum !== undefined) values.push(schema.maximum + 1);
      break;
    case 'number':
      values.push('1', true, [1]);
      if (schema.minimum !== undefined) values.push(schema.minimum - 1);
      if (schema.maximum !== undefined) values.push(schema.maximum * 2 + 1);
      break;
    case 'boolean':
      values.push('true', 1, 0, []);
      break;
    case 'string':
      values.push(1, true, ['x']);
      if (schema.enum) values.push('not-one-of-them', String(schema.enum[0]).toUpperCase() + '!');
      if (schema.pattern) values.push('has spaces and $ymbols;', '../../etc/passwd');
      if (schema.minLength) values.push('');
      break;
    case 'array':
      values.push('a,b', 1, [1, 2]);
      if (schema.minItems) values.push([]);
      break;
  }
  return values;
}

const bodySchemas = operations.map((op) => ({
  kind: op.kind,
  schema: z.toJSONSchema(op.body, { io: 'input', unrepresentable: 'any' }) as {
    properties: Record<string, JsonSchema>;
    required?: string[];
  },
}));

describe('every operation kind has a valid example body', () => {
  it.each(operations.map((o) => o.kind))('%s', async (kind) => {
    expect(validBodies[kind], `add a valid ${kind} body to validBodies in api-fakes.ts`).toBeDefined();
    const api = testApi();
    const response = await api.call('POST', `/v1/operations/${kind}`, { token: 'admin', body: validBodies[kind] });
    expect(response.status, await response.text()).toBe(202);
  });
});

describe('operation bodies', () => {
  for (const { kind, schema } of bodySchemas) {
    const valid = validBodies[kind] ?? {};
    const post = (api: TestApi, body: unknown) => api.call('POST', `/v1/operations/${kind}`, { token: 'admin', body });

    // Without a valid example every case would fail for the wrong reason; the test above names the gap.
    describe.skipIf(validBodies[kind] === undefined)(kind, () => {
      for (const [field, fieldSchema] of Object.entries(schema.properties)) {
        for (const value of wrongValues(fieldSchema)) {
          it(`rejects ${field} = ${JSON.stringify(value)}`, async () => {
            const api = testApi();
            await expectRejected(await post(api, { ...valid, [field]: value }), 400, field);
            expect(api.temporal.workflows.size).toBe(0);
          });
        }
      }

      for (const field of schema.required ?? []) {
        it(`rejects a body without ${field}`, async () => {
          const { [field]: _omitted, ...rest } = valid;
          await expectRejected(await post(testApi(), rest), 400, field);
        });
      }

      it.each(['unexpected', '__proto__', 'constructor', 'meta', 'requester'])(
        'rejects the unknown field %s',
        async (field) => {
          const raw = `{${JSON.stringify(field)}:{"requester":"root"},${JSON.stringify(valid).slice(1)}`;
          const api = testApi();
          const response = await api.call('POST', `/v1/operations/${kind}`, {
            token: 'admin',
            raw,
            headers: { 'content-type': 'application/json' },
          });
          await expectRejected(response, 400, field);
          expect(api.temporal.workflows.size).toBe(0);
        },
      );

      it('rejects an environment that is not configured, naming the field', async () => {
        const body = await expectRejected(await post(testApi(), { ...valid, environment: 'mars' }), 400, 'environment');
        expect(body.error.details?.[0]?.message).toContain('home');
      });
    });
  }
});

describe('a submitted runbook', () => {
  it('is refused at the edge when its front matter is malformed, each problem named under markdown', async () => {
    const api = testApi();
    const markdown = '---\nname: Not A Name\nkind: vm\n---\n# body\n';
    const body = await expectRejected(
      await api.call('POST', '/v1/operations/runbook-ingest', {
        token: 'admin',
        body: { environment: 'home', markdown },
      }),
      400,
      'markdown',
    );
    expect(body.error.details!.map((d) => d.message).join('\n')).toMatch(/^name: /m);
    expect(api.temporal.workflows.size).toBe(0);
  });

  it('without front matter is refused, saying what it lacks', async () => {
    const body = await expectRejected(
      await testApi().call('POST', '/v1/operations/runbook-ingest', {
        token: 'admin',
        body: { environment: 'home', markdown: '# Debian VM\n' },
      }),
      400,
      'markdown',
    );
    expect(body.error.details![0]!.message).toContain('must start with YAML front matter');
  });
});

describe('tag expressions too long or too deep', () => {
  const config = testConfig({ api: { ...testConfig().api, max_body_bytes: 64 * 1024 } });
  it.each([
    ['3,000 parentheses', '('.repeat(3000) + 'web' + ')'.repeat(3000), /at most 1024 characters/],
    ['10,000 !', '!'.repeat(10_000) + 'web', /at most 1024 characters/],
    ['1,000 !', '!'.repeat(1000) + 'web', /nested deeper than 32 levels/],
  ])('%s -> 400 naming tags and the bound', async (_, tags, reason) => {
    const api = testApi({ config });
    const response = await api.call('POST', '/v1/operations/bulk-action', {
      token: 'admin',
      body: { environment: 'home', tags, action: 'start' },
    });
    const body = await expectRejected(response, 400, 'tags');
    expect(body.error.details?.[0]?.message).toMatch(reason);
  });
});

describe('malformed JSON', () => {
  const variants: [string, string][] = [
    ['truncated object', '{"environment":"home"'],
    ['trailing comma', '{"environment":"home",}'],
    ['single quotes', "{'environment':'home'}"],
    ['bare word', 'environment'],
    ['trailing garbage', '{"environment":"home"} x'],
    ['NaN literal', '{"environment":"home","vmid":NaN}'],
    ['leading zero', '{"vmid":01}'],
    ['comment', '{"environment":"home" /* hi */}'],
    ['NUL byte', '\u0000'],
    ['unterminated string', '{"environment":"ho'],
    ['lone surrogate escape in key', '{"\\ud800":1'],
  ];
  it.each(variants)('%s -> 400', async (_, raw) => {
    const api = testApi();
    const response = await api.call('POST', '/v1/operations/vm-action', {
      token: 'admin',
      raw,
      headers: { 'content-type': 'application/json' },
    });
    const body = await expectRejected(response, 400, '(root)');
    expect(body.error.code).toBe('malformed_json');
  });

  it.each([
    ['null', 'null'],
    ['a number', '42'],
    ['a string', '"home"'],
    ['an array', '[{"environment":"home"}]'],
    ['true', 'true'],
    ['deeply nested arrays', '['.repeat(2_000) + ']'.repeat(2_000)],
  ])('%s as the body -> 400 naming the root', async (_, raw) => {
    const api = testApi();
    const response = await api.call('POST', '/v1/operations/vm-action', {
      token: 'admin',
      raw,
      headers: { 'content-type': 'application/json' },
    });
    await expectRejected(response, 400, '(root)');
  });

  it('tolerates a UTF-8 byte order mark before a valid body', async () => {
    const response = await testApi().call('POST', '/v1/operations/vm-action', {
      token: 'admin',
      raw: `\uFEFF${JSON.stringify(validBodies['vm-action'])}`,
      headers: { 'content-type': 'application/json' },
    });
    expect(response.status).toBe(202);
  });

  it('an empty body -> 400', async () => {
    const response = await testApi().call('POST', '/v1/operations/vm-action', {
      token: 'admin',
      raw: '',
      headers: { 'content-type': 'application/json' },
    });
    await expectRejected(response, 400, '(root)');
  });

  it('does not echo the body back in the error', async () => {
    const response = await testApi().call('POST', '/v1/operations/vm-action', {
      token: 'admin',
      raw: '{"environment": SECRET-LOOKING-VALUE}',
      headers: { 'content-type': 'application/json' },
    });
    expect(await response.text()).not.toContain('SECRET-LOOKING-VALUE');
  });
});

describe('content types', () => {
  it.each([
    ['text/plain'],
    ['application/x-www-form-urlencoded'],
    ['multipart/form-data; boundary=x'],
    ['application/json; charset=latin1'],
    ['application/jsonp'],
    ['application/json-patch+json'],
    ['application/xml'],
  ])('%s -> 415', async (contentType) => {
    const api = testApi();
    const response = await api.call('POST', '/v1/operations/vm-action', {
      token: 'admin',
      raw: JSON.stringify(validBodies['vm-action']),
      headers: { 'content-type': contentType },
    });
    await expectRejected(response, 415, '(header) content-type');
    expect(api.temporal.workflows.size).toBe(0);
  });

  it('a missing content type -> 415', async () => {
    const response = await testApi().call('POST', '/v1/operations/vm-action', {
      token: 'admin',
      raw: JSON.stringify(validBodies['vm-action']),
    });
    await expectRejected(response, 415, '(header) content-type');
  });

  it.each([['application/json'], ['application/json; charset=utf-8'], ['Application/JSON; Charset=UTF-8']])(
    '%s is accepted',
    async (contentType) => {
      const response = await testApi().call('POST', '/v1/operations/vm-action', {
        token: 'admin',
        raw: JSON.stringify(validBodies['vm-action']),
        headers: { 'content-type': contentType },
      });
      expect(response.status).toBe(202);
    },
  );
});

describe('oversize bodies', () => {
  const big = JSON.stringify({ ...validBodies['vm-action'], name: 'x'.repeat(10_000) });

  it('-> 413 with a content length', async () => {
    const api = testApi();
    const response = await api.call('POST', '/v1/operations/vm-action', {
      token: 'admin',
      raw: big,
      headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(big)) },
    });
    await expectRejected(response, 413);
    expect(api.temporal.workflows.size).toBe(0);
  });

  it('-> 413 when streamed without a content length', async () => {
    const api = testApi();
    const bytes = new TextEncoder().encode(big);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < bytes.length; i += 1000) controller.enqueue(bytes.slice(i, i + 1000));
        controller.close();
      },
    });
    const response = await api.app.request('/v1/operations/vm-action', {
      method: 'POST',
      headers: { authorization: 'Bearer tok-admin-3a7d1e9c4f', 'content-type': 'application/json' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    await expectRejected(response, 413);
    expect(api.temporal.workflows.size).toBe(0);
  });
});

describe('approval, rejection and cancel bodies', () => {
  const id = 'vm-action/home/1001/delete/20251122T040000Z';
  const apiWithOperation = () => {
    const api = testApi();
    api.temporal.seed({ workflowId: id, environment: 'home', update: () => ({ decision: 'approved' }) });
    return api;
  };
  const cases: [string, unknown, string][] = [
    ['approve', {}, 'planVersion'],
    ['approve', { planVersion: '1' }, 'planVersion'],
    ['approve', { planVersion: 0 }, 'planVersion'],
    ['approve', { planVersion: 1.5 }, 'planVersion'],
    ['approve', { planVersion: 1, by: 'root' }, 'by'],
    ['approve', { planVersion: 1, reason: '' }, 'reason'],
    ['approve', { planVersion: 1, reason: 42 }, 'reason'],
    ['reject', { planVersion: 1 }, 'reason'],
    ['reject', { planVersion: 1, reason: '   ' }, 'reason'],
    ['reject', { planVersion: 1, reason: 'x'.repeat(2001) }, 'reason'],
    ['cancel', { reason: 7 }, 'reason'],
    ['cancel', { force: true }, 'force'],
  ];
  it.each(cases)('%s %j -> 400 naming %s', async (action, body, path) => {
    const api = apiWithOperation();
    await expectRejected(await api.call('POST', operationPath(id, `/${action}`), { token: 'admin', body }), 400, path);
    expect((await api.audit.read({ action: `api.operation.${action}` }))[0]).toMatchObject({ result: 'invalid_body' });
  });

  it('an operation id that is too long or has spaces -> 400 naming the id', async () => {
    const api = apiWithOperation();
    await expectRejected(await api.call('GET', operationPath('x'.repeat(1001)), { token: 'admin' }), 400, 'id');
    await expectRejected(await api.call('GET', operationPath('has spaces'), { token: 'admin' }), 400, 'id');
  });
});

describe('query strings', () => {
  const cases: [string, string][] = [
    ['/v1/inventory', 'environment'],
    ['/v1/inventory?environment=home&state=stopped', 'state'],
    ['/v1/inventory?environment=home&type=vm', 'type'],
    ['/v1/inventory?environment=home&verbose=1', 'verbose'],
    ['/v1/inventory?environment=home&environment=cloud', 'environment'],
    ["/v1/inventory?environment=home'%20OR%201=1", 'environment'],
    ['/v1/inventory?environment=mars', 'environment'],
    ['/v1/inventory?environment=%E0%A4%A', 'environment'],
    ['/v1/inventory?environment=home&tag=a%20b', 'tag'],
    ['/v1/operations?pageSize=abc', 'pageSize'],
    ['/v1/operations?pageSize=0', 'pageSize'],
    ['/v1/operations?pageSize=100000', 'pageSize'],
    ['/v1/operations?pageSize=-1', 'pageSize'],
    ['/v1/operations?pageToken=not%20a%20token', 'pageToken'],
    ['/v1/operations?limit=20', 'limit'],
    ['/v1/operations/x?include=everything', 'include'],
    ['/v1/operations?vmid=12', 'vmid'],
    ['/v1/operations?state=sleeping', 'state'],
    ['/v1/operations?kind=nope', 'kind'],
    ['/v1/operations?risk=extreme', 'risk'],
    ["/v1/operations?requester=otto'%20OR%20PmEnvironment='cloud", 'requester'],
    ['/v1/operations?node=', 'node'],
    ['/v1/audit?since=yesterday', 'since'],
    ['/v1/audit?until=2025-13-40T00:00:00Z', 'until'],
    ['/v1/audit?action=api%20operation', 'action'],
    ['/v1/audit?limit=1001', 'limit'],
    ['/v1/audit?actor=a&actor=b', 'actor'],
  ];
  it.each(cases)('%s -> 400 naming %s', async (path, field) => {
    const api = testApi();
    await expectRejected(await api.call('GET', path, { token: 'admin' }), 400, field);
    expect(api.temporal.listQueries).toEqual([]);
  });
});

describe('routing', () => {
  it('an unknown route -> 404', async () => {
    await expectRejected(await testApi().call('GET', '/v1/nothing-here', { token: 'admin' }), 404);
  });

  it('an unknown operation kind -> 404 listing the kinds', async () => {
    const body = await expectRejected(
      await testApi().call('POST', '/v1/operations/format-all-disks', {
        token: 'admin',
        body: { environment: 'home' },
      }),
      404,
      'kind',
    );
    expect(body.error.details?.[0]?.message).toContain('vm-action');
  });

  it.each([
    ['DELETE', '/v1/environments'],
    ['PUT', '/v1/operations/vm-action'],
    ['PATCH', operationPath('vm-action/home/1/delete/x')],
    ['GET', operationPath('vm-action/home/1/delete/x', '/approve')],
  ])('%s %s -> 405 with Allow', async (method, path) => {
    const response = await testApi().call(method, path, { token: 'admin' });
    await expectRejected(response, 405);
    expect(response.headers.get('allow')).toBeTruthy();
  });

  it('an unknown operation -> 404', async () => {
    await expectRejected(
      await testApi().call('GET', operationPath('vm-action/home/1/delete/x'), { token: 'admin' }),
      404,
    );
  });
});
