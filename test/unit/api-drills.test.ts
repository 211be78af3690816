/**
 * The drill history over HTTP: GET /v1/backups/proven and /v1/backups/findings read the
 * records drills wrote (here written straight into the configured folder), open findings by
 * default; bad query values are 400s naming the field.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { createDrillStore, type DrillResult } from '../../lib/backup/drills.js';
import { testApi, testConfig, type TestApi } from './api-fakes.js';

const drilled = (vmid: number, outcome: DrillResult['outcome'], volid: string): DrillResult => ({
  vmid,
  name: `guest-${vmid}`,
  type: vmid >= 2000 ? 'lxc' : 'qemu',
  volid,
  backupCtime: 1_765_000_000,
  outcome,
  seconds: 31.5,
  ...(outcome === 'failed' ? { error: 'the guest agent of VM 1002 did not answer within 300 s' } : {}),
});

let api: TestApi;

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pm-api-drills-'));
  const store = createDrillStore(dir);
  await store.write({
    environment: 'home',
    operationId: 'restore-drill/home/tags/1',
    at: '2026-12-06T08:00:00.000Z',
    results: [drilled(1001, 'proven', 'shared:backup/a'), drilled(1002, 'failed', 'shared:backup/b')],
  });
  await store.write({
    environment: 'home',
    operationId: 'restore-drill/home/tags/2',
    at: '2026-12-06T09:00:00.000Z',
    results: [drilled(2001, 'failed', 'shared:backup/c')],
  });
  await store.write({
    environment: 'home',
    operationId: 'restore-drill/home/2001/3',
    at: '2026-12-06T10:00:00.000Z',
    results: [drilled(2001, 'proven', 'shared:backup/d')],
  });
  const config = testConfig();
  config.backups.drill_dir = dir;
  api = testApi({ config });
});

describe('GET /v1/backups/proven', () => {
  it('answers when each drilled guest was last proven restorable, and its latest drill', async () => {
    const response = await api.call('GET', '/v1/backups/proven?environment=home', { token: 'viewer' });
    expect(response.status).toBe(200);
    const { guests } = await response.json();
    expect(
      guests.map((g: { vmid: number; lastProven?: { volid: string } }) => [g.vmid, g.lastProven?.volid ?? null]),
    ).toEqual([
      [1001, 'shared:backup/a'],
      [1002, null],
      [2001, 'shared:backup/d'],
    ]);
    expect(guests[0].lastProven).toMatchObject({
      at: '2026-12-06T08:00:00.000Z',
      seconds: 31.5,
      operationId: 'restore-drill/home/tags/1',
    });
  });
});

describe('GET /v1/backups/findings', () => {
  it('lists the open findings by default, and the resolved ones when asked', async () => {
    const open = await (await api.call('GET', '/v1/backups/findings?environment=home', { token: 'viewer' })).json();
    expect(open.findings).toEqual([
      expect.objectContaining({
        vmid: 1002,
        volid: 'shared:backup/b',
        state: 'open',
        reason: expect.stringContaining('did not answer'),
      }),
    ]);
    const resolved = await (
      await api.call('GET', '/v1/backups/findings?environment=home&state=resolved', { token: 'viewer' })
    ).json();
    expect(resolved.findings).toEqual([
      expect.objectContaining({ vmid: 2001, resolvedBy: 'restore-drill/home/2001/3' }),
    ]);
  });

  it('answers a bad state with a 400 naming the field', async () => {
    const response = await api.call('GET', '/v1/backups/findings?environment=home&state=closed', { token: 'viewer' });
    expect(response.status).toBe(400);
    const body = await response.json();
    expect(body.error.details.map((d: { path: string }) => d.path)).toContain('state');
  });
});
