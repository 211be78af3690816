/**
 * Drift reports (what differs, since when), the store they live in, and the API that lists
 * them and turns one into a reconcile operation.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../lib/audit/log.js';
import type { FleetDiff, GuestChange } from '../../lib/manifest/diff/index.js';
import { driftReport, invalidManifestReport, type DriftReport } from '../../lib/manifest/drift.js';
import { createDriftStore, type DriftStore } from '../../lib/manifest/drift-store.js';
import { PmOperationKind } from '../../workflows/search-attributes.js';
import { fakeTemporal, testConfig, type FakeTemporal } from './api-fakes.js';
import { driftApi, withDriftTokens, type DriftApi } from './manifest-drift-app.js';

const change = (key: string, fields: GuestChange['fields'], action: GuestChange['action'] = 'update'): GuestChange => ({
  key,
  action,
  kind: 'qemu',
  vmid: 1001,
  name: key,
  node: 'pve01',
  restart: false,
  fields,
  steps: [],
  risk: 'medium',
  reasons: [],
  wave: 1,
  dependsOn: [],
  ...(action === 'delete' ? { claimedBy: "it carries the claimed tag 'fleet'" } : {}),
});

const diffOf = (changes: GuestChange[]): FleetDiff => ({
  environment: 'home',
  manifestDigest: 'abc',
  changes,
  unchanged: [],
  warnings: [],
  problems: [],
});
const run = (checkedAt: string) => ({ environment: 'home', manifests: 'manifests', checkedAt });

describe('a drift report', () => {
  it('lists what differs, field by field, each since it was first seen', () => {
    const first = driftReport(
      run('2026-01-01T10:00:00.000Z'),
      diffOf([change('web', [{ field: 'memory', from: '8192 MiB', to: '4096 MiB' }])]),
      'plan text',
      undefined,
    );
    expect(first).toMatchObject({
      id: 'home',
      state: 'drifted',
      items: [
        {
          key: 'web',
          since: '2026-01-01T10:00:00.000Z',
          fields: [{ field: 'memory', expected: '4096 MiB', actual: '8192 MiB', since: '2026-01-01T10:00:00.000Z' }],
        },
      ],
    });
    expect(first.lastInSyncAt).toBeUndefined();

    const second = driftReport(
      run('2026-01-01T10:15:00.000Z'),
      diffOf([
        change('web', [
          { field: 'memory', from: '6144 MiB', to: '4096 MiB' },
          { field: 'cores', from: '4', to: '2' },
        ]),
      ]),
      'plan text',
      first,
    );
    expect(second.items[0]!.fields.map((f) => [f.field, f.actual, f.since])).toEqual([
      ['memory', '6144 MiB', '2026-01-01T10:00:00.000Z'],
      ['cores', '4', '2026-01-01T10:15:00.000Z'],
    ]);
    expect(second.items[0]!.since).toBe('2026-01-01T10:00:00.000Z');

    const fixed = driftReport(run('2026-01-01T10:30:00.000Z'), diffOf([]), 'No changes.', second);
    expect(fixed).toMatchObject({ state: 'in-sync', items: [], lastInSyncAt: '2026-01-01T10:30:00.000Z' });
    const again = driftReport(
      run('2026-01-01T10:45:00.000Z'),
      diffOf([change('web', [{ field: 'memory', from: '1', to: '2' }])]),
      '',
      fixed,
    );
    expect(again).toMatchObject({
      state: 'drifted',
      lastInSyncAt: '2026-01-01T10:30:00.000Z',
      items: [{ since: '2026-01-01T10:45:00.000Z' }],
    });
  });

  it('reports a missing guest and a claimed extra one as whether they exist', () => {
    const report = driftReport(
      run('2026-01-01T10:00:00.000Z'),
      diffOf([change('new', [], 'create'), change('stray', [], 'delete')]),
      '',
      undefined,
    );
    expect(report.items.map((i) => [i.key, i.action, i.fields.map((f) => [f.field, f.expected, f.actual])])).toEqual([
      ['new', 'create', [['exists', 'yes', 'no']]],
      ['stray', 'delete', [['exists', "no (it carries the claimed tag 'fleet')", 'yes']]],
    ]);
  });

  it('of an invalid manifest lists the problems and keeps the drift known before', () => {
    const before = driftReport(
      run('2026-01-01T10:00:00.000Z'),
      diffOf([change('web', [{ field: 'memory', from: '1', to: '2' }])]),
      '',
      undefined,
    );
    const invalid = invalidManifestReport(run('2026-01-01T10:15:00.000Z'), ['m.yaml:guests.0.memory: bad'], before);
    expect(invalid).toMatchObject({ state: 'invalid', problems: ['m.yaml:guests.0.memory: bad'], items: before.items });
    expect(invalid.text).toContain('m.yaml:guests.0.memory: bad');
  });
});

describe('the drift store', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pm-drift-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('keeps one report per environment, replaced whole, and lists them by environment', async () => {
    const store = createDriftStore(join(dir, 'drift'));
    expect(await store.list()).toEqual([]);
    expect(await store.read('home')).toBeUndefined();
    const home = driftReport(run('2026-01-01T10:00:00.000Z'), diffOf([]), '', undefined);
    await store.write(home);
    await store.write({ ...home, checkedAt: '2026-01-01T10:15:00.000Z' });
    await store.write({ ...home, id: 'lab', environment: 'lab' });
    expect((await store.list()).map((r) => [r.environment, r.checkedAt])).toEqual([
      ['home', '2026-01-01T10:15:00.000Z'],
      ['lab', '2026-01-01T10:00:00.000Z'],
    ]);
    expect(await readdir(join(dir, 'drift'))).toEqual(['home.json', 'lab.json']);
    await expect(store.read('../etc/passwd')).rejects.toThrow(/not an environment name/);
  });
});

describe('the drift API', () => {
  let dir: string;
  let store: DriftStore;
  let temporal: FakeTemporal;
  let api: DriftApi;

  const report = (overrides: Partial<DriftReport> = {}): DriftReport => ({
    ...driftReport(
      run('2026-01-01T10:00:00.000Z'),
      diffOf([change('web', [{ field: 'memory', from: '8192 MiB', to: '4096 MiB' }])]),
      'plan',
      undefined,
    ),
    ...overrides,
  });

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pm-drift-api-'));
    store = createDriftStore(join(dir, 'drift'));
    temporal = fakeTemporal();
    api = driftApi({
      config: withDriftTokens(testConfig()),
      client: temporal.client,
      taskQueue: 'pm-test',
      store,
      audit: createAuditLog(join(dir, 'audit.log')),
      now: () => new Date('2026-01-01T11:00:00.000Z'),
    });
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('lists the reports of the environments the caller may see', async () => {
    await store.write(report());
    await store.write(report({ id: 'cloud', environment: 'cloud' }));
    await store.write(report({ id: 'retired', environment: 'retired' }));
    const all = await api.call('GET', '/v1/drift', 'viewer');
    expect([all.status, all.body.reports.map((r: DriftReport) => r.id)]).toEqual([200, ['cloud', 'home']]);
    expect(
      (await api.call('GET', '/v1/drift?environment=home', 'viewer')).body.reports.map((r: DriftReport) => r.id),
    ).toEqual(['home']);
    expect((await api.call('GET', '/v1/drift/home', 'viewer')).body).toMatchObject({ id: 'home', state: 'drifted' });
    expect((await api.call('GET', '/v1/drift/cloud', 'other')).status).toBe(403);
    expect((await api.call('GET', '/v1/drift', 'other')).body.reports).toEqual([]);
  });

  it('starts a reconcile of the report’s environment and manifest, as the caller, remembering the report', async () => {
    await store.write(report({ manifests: 'manifests/home' }));
    const started = await api.call('POST', '/v1/drift/home/apply', 'operator', { maxParallel: 2 });
    expect(started).toMatchObject({
      status: 202,
      body: { id: expect.stringMatching(/^reconcile\/home\/20260101T110000/), kind: 'reconcile', state: 'running' },
    });
    const workflow = temporal.workflows.get(started.body.id)!;
    expect(workflow.type).toBe('reconcile');
    expect(workflow.args).toEqual([
      {
        environment: 'home',
        dryRun: false,
        maxParallel: 2,
        manifests: 'manifests/home',
        meta: {
          requester: 'alice',
          environment: 'home',
          dryRun: false,
          approvalTimeoutMs: 86_400_000,
          autoApprove: ['low'],
        },
        fromDrift: { reportId: 'home', checkedAt: '2026-01-01T10:00:00.000Z' },
      },
    ]);
    expect(workflow.attributes.find((a) => a.key.name === PmOperationKind.name)?.value).toBe('reconcile');
  });

  it('checks now on request, schedule or not, for an operator of the environment only', async () => {
    const started = await api.call('POST', '/v1/drift/home/check', 'operator');
    expect(started).toEqual({
      status: 202,
      body: { id: 'drift/home/check/20260101T110000.000Z', runId: expect.any(String), report: '/v1/drift/home' },
    });
    expect(temporal.workflows.get(started.body.id)).toMatchObject({
      type: 'detectDrift',
      args: [{ environment: 'home' }],
    });

    expect((await api.call('POST', '/v1/drift/home/check', 'viewer')).status).toBe(403);
    expect((await api.call('POST', '/v1/drift/home/check', 'other')).status).toBe(403);
    expect(await api.call('POST', '/v1/drift/nowhere/check', 'operator')).toMatchObject({
      status: 400,
      body: { error: { code: 'unknown_environment' } },
    });
    expect(temporal.workflows.size).toBe(1);
  });

  it('refuses what it cannot apply: no report, no drift, an invalid manifest, a viewer, a bad body', async () => {
    expect(await api.call('POST', '/v1/drift/home/apply', 'operator')).toMatchObject({
      status: 404,
      body: { error: { code: 'not_found' } },
    });
    await store.write(report({ state: 'in-sync', items: [] }));
    expect(await api.call('POST', '/v1/drift/home/apply', 'operator')).toMatchObject({
      status: 409,
      body: { error: { code: 'no_drift' } },
    });
    await store.write(report({ state: 'invalid', problems: ['m.yaml:guests.0.memory: bad'] }));
    expect(await api.call('POST', '/v1/drift/home/apply', 'operator')).toMatchObject({
      status: 409,
      body: {
        error: { code: 'manifest_invalid', details: [{ path: 'manifest', message: 'm.yaml:guests.0.memory: bad' }] },
      },
    });
    await store.write(report());
    expect((await api.call('POST', '/v1/drift/home/apply', 'viewer')).status).toBe(403);
    expect(await api.call('POST', '/v1/drift/home/apply', 'operator', { maxParallel: 0 })).toMatchObject({
      status: 400,
      body: { error: { details: [{ path: 'maxParallel' }] } },
    });
    expect(await api.call('POST', '/v1/drift/nowhere/apply', 'operator')).toMatchObject({
      status: 400,
      body: { error: { code: 'unknown_environment' } },
    });
    expect(temporal.workflows.size).toBe(0);
  });
});
