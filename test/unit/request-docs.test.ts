/**
 * Every request field is documented and every documented example is a request the API accepts:
 * the words of lib/operations/request-docs.ts must keep up with the catalog's schemas, and
 * docs/requests.md must be their rendering (`npm run docs:requests`).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../../api/openapi.js';
import { operations } from '../../lib/operations/catalog.js';
import { renderRequestsMarkdown, requestExamples, requestFields } from '../../lib/operations/request-docs.js';
import { offeredDownloads } from '../../sim/downloads.js';
import { loadScenarioFile } from '../../sim/scenario.js';
import { testApi } from './api-fakes.js';

describe('request documentation', () => {
  it.each(operations.map((op) => [op.kind, op] as const))('%s: every field has a meaning', (_kind, op) => {
    const undocumented = requestFields(op)
      .filter((f) => f.meaning === '')
      .map((f) => f.name);
    expect(undocumented).toEqual([]);
  });

  it.each(operations.map((op) => [op.kind, op] as const))('%s: the example is a valid request', (kind, op) => {
    const parsed = op.body.safeParse(requestExamples[kind]);
    expect(parsed.success, parsed.error?.message).toBe(true);
  });

  it('the iso-import example fetches a download the demo offers, with the checksum of its bytes', async () => {
    const homelab = await loadScenarioFile(new URL('../../sim/scenarios/homelab.yaml', import.meta.url).pathname);
    const example = requestExamples['iso-import'] as { url: string; checksum: string };
    const offered = offeredDownloads(new Map(homelab.downloads.map((d) => [d.url, d])));
    expect(offered.find((d) => d.url === example.url)?.sha256).toBe(example.checksum);
  });

  it('docs/requests.md is generated from them (npm run docs:requests)', () => {
    const written = readFileSync(new URL('../../docs/requests.md', import.meta.url), 'utf8');
    expect(written === renderRequestsMarkdown(), 'docs/requests.md is stale: run npm run docs:requests').toBe(true);
  });

  it('the OpenAPI document and /docs carry each field’s meaning and the example', async () => {
    const api = testApi();
    const doc = (await (await api.call('GET', '/openapi.json')).json()) as ReturnType<typeof openApiDocument>;
    const schema = doc.paths['/v1/operations/evacuation']!.post!.requestBody!.content['application/json'].schema as {
      properties: Record<string, { description?: string }>;
      examples: unknown[];
    };
    expect(schema.properties.maxParallelPerTarget!.description).toBe('Migrations arriving at any one node at once.');
    expect(schema.examples).toEqual([requestExamples.evacuation]);

    const page = await (await api.call('GET', '/docs')).text();
    expect(page).toContain(
      '<td><code>maxParallelPerTarget</code></td><td><code>integer</code></td><td><code>2</code></td><td>Migrations arriving at any one node at once.</td>',
    );
    expect(page).toContain('example:');
  });
});
