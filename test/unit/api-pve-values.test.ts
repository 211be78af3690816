/**
 * Request fields that become PVE parameters are refused at the API edge — 400 naming the
 * field — before any workflow starts, so no plan is ever made from a value PVE would refuse.
 */
import { describe, expect, it } from 'vitest';
import { testApi, validBodies } from './api-fakes.js';

describe('operation requests with values PVE would refuse', () => {
  it.each([
    ['vm-create', { memoryMb: 'abc' }, 'memoryMb'],
    ['vm-create', { memory: 'abc' }, 'memory'],
    ['vm-create', { bridge: 'bad bridge!' }, 'bridge'],
    ['vm-create', { tags: ['bad tag!'] }, 'tags'],
    ['vm-resize', { memoryMb: 'abc' }, 'memoryMb'],
    ['vm-resize', { disk: { key: 'efidisk0', sizeGb: 8 } }, 'disk'],
    ['vm-clone', { cores: 0 }, 'cores'],
  ])('%s with %j -> 400 naming %s, no workflow started', async (kind, fields, field) => {
    const api = testApi();
    const response = await api.call('POST', `/v1/operations/${kind}`, {
      token: 'admin',
      body: { ...validBodies[kind], ...fields },
    });
    const text = await response.text();
    expect(response.status, text).toBe(400);
    const paths =
      (JSON.parse(text) as { error: { details?: { path: string }[] } }).error.details?.map((d) => d.path) ?? [];
    expect(
      paths.some((p) => p === field || p.startsWith(`${field}.`)),
      paths.join(', '),
    ).toBe(true);
    expect(api.temporal.workflows.size).toBe(0);
  });
});
