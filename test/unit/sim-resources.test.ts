import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpoints } from '../../lib/pve/registry.js';
import { apiHandlers } from '../../sim/api/server.js';
import { startSimulator, type SimulatedCluster } from '../../sim/index.js';
import { smallScenario } from './sim-fixtures.js';
import { call, tokenAuth, waitForTask } from './sim-http.js';

let sim: SimulatedCluster;
let admin: string;

beforeAll(async () => {
  sim = await startSimulator({
    speed: 200,
    authFailureDelayMs: 0,
    scenario: smallScenario({
      tokens: [
        { id: 'automation@pve!pm', secret: 'sim-secret-0123', acl: [{ path: '/', roles: ['Administrator'] }] },
        {
          id: 'tenant@pve!one',
          secret: 'sim-secret-8910',
          acl: [
            { path: '/vms/101', roles: ['PVEVMAdmin'] },
            { path: '/storage/shared', roles: ['PVEDatastoreUser'] },
          ],
        },
      ],
    }),
  });
  admin = tokenAuth(sim, 'automation@pve!pm');
});
afterAll(() => sim.stop());

const data = async (method: string, path: string, form?: Record<string, string>) => {
  const reply = await call(sim, method, path, { auth: admin, ...(form ? { form } : {}) });
  if (reply.status !== 200) throw new Error(`${method} ${path}: ${reply.status} ${reply.reason}`);
  return reply.body?.data as never;
};

it('serves every endpoint the Proxmox client defines', () => {
  const missing = Object.values(endpoints)
    .map((e) => e.name)
    .filter((name) => !(name in apiHandlers));
  expect(missing).toEqual([]);
});

describe('nodes and cluster', () => {
  it('list nodes with their load and the certificate fingerprint', async () => {
    const nodes: { node: string; status: string; maxmem: number; ssl_fingerprint: string }[] = await data(
      'GET',
      '/nodes',
    );
    expect(nodes.map((n) => n.node)).toEqual(['pve1', 'pve2', 'pve3']);
    expect(nodes[0]).toMatchObject({
      status: 'online',
      maxmem: 64 * 1024 ** 3,
      ssl_fingerprint: sim.nodes[0]!.tlsFingerprint,
    });
  });

  it('report node status with memory, CPU and version', async () => {
    const status: Record<string, any> = await data('GET', '/nodes/pve1/status');
    expect(status['memory'].total).toBe(64 * 1024 ** 3);
    expect(status['memory'].used).toBeGreaterThan(0);
    expect(status['pveversion']).toMatch(/^pve-manager\/9\.1\.2\//);
    expect(status['cpuinfo'].cpus).toBe(16);
  });

  it('lists HA resources', async () => {
    expect(await data('GET', '/cluster/ha/resources')).toEqual([
      expect.objectContaining({ sid: 'vm:105', type: 'vm', state: 'started' }),
    ]);
  });

  it('describes a guest in cluster/resources with its lock and HA state', async () => {
    const all: Record<string, unknown>[] = await data('GET', '/cluster/resources');
    expect(all.find((r) => r['id'] === 'qemu/105')).toMatchObject({
      type: 'qemu',
      node: 'pve2',
      status: 'running',
      hastate: 'started',
      maxmem: 2048 * 1024 ** 2,
    });
    expect(all.find((r) => r['id'] === 'qemu/100')).toMatchObject({ template: 1, status: 'stopped' });
    expect(all.filter((r) => r['type'] === 'storage')).toHaveLength(9);
  });
});

describe('guests', () => {
  it('show config with a digest and the current status', async () => {
    const config: Record<string, string> = await data('GET', '/nodes/pve1/qemu/101/config');
    expect(config).toMatchObject({ name: 'web1', memory: '8192', digest: expect.stringMatching(/^[0-9a-f]{40}$/) });
    const status: Record<string, unknown> = await data('GET', '/nodes/pve1/qemu/101/status/current');
    expect(status).toMatchObject({ vmid: 101, status: 'running', qmpstatus: 'running', ha: { managed: 0 }, agent: 1 });
    const list: { vmid: number }[] = await data('GET', '/nodes/pve1/qemu');
    expect(list.map((g) => g.vmid)).toEqual([100, 101, 102, 103, 104, 107]);
  });

  it('migrates a running container only in restart mode', async () => {
    const refused = await call(sim, 'POST', '/nodes/pve3/lxc/200/migrate', { auth: admin, form: { target: 'pve2' } });
    expect([refused.status, refused.reason]).toEqual([500, 'running container can only be migrated in restart mode']);
    const upid: string = await data('POST', '/nodes/pve3/lxc/200/migrate', { target: 'pve2', restart: '1' });
    expect(upid).toContain(':vzmigrate:200:');
    expect((await waitForTask(sim, admin, upid))['exitstatus']).toBe('OK');
    expect(sim.state.guests.get(200)).toMatchObject({ node: 'pve2', status: 'running' });
  });

  it('refuses to start a running container at once', async () => {
    const reply = await call(sim, 'POST', `/nodes/${sim.state.guests.get(200)!.node}/lxc/200/status/start`, {
      auth: admin,
    });
    expect([reply.status, reply.reason]).toEqual([500, 'CT 200 already running']);
  });

  it('takes and lists snapshots', async () => {
    const upid: string = await data('POST', '/nodes/pve1/qemu/104/snapshot', {
      snapname: 'pre_change',
      description: 'before',
    });
    expect((await waitForTask(sim, admin, upid))['exitstatus']).toBe('OK');
    const snapshots: { name: string }[] = await data('GET', '/nodes/pve1/qemu/104/snapshot');
    expect(snapshots.map((s) => s.name)).toEqual(['pre_change', 'current']);
  });
});

describe('storage', () => {
  it('lists storages and content as the token may see them', async () => {
    const tenant = tokenAuth(sim, 'tenant@pve!one');
    const seen = await call(sim, 'GET', '/nodes/pve1/storage', { auth: tenant });
    expect((seen.body?.data as { storage: string }[]).map((s) => s.storage)).toEqual(['shared']);
    const isos: { volid: string }[] = await data('GET', '/nodes/pve1/storage/local/content?content=iso');
    expect(isos.map((v) => v.volid)).toEqual(['local:iso/debian.iso']);
  });

  it('deletes a volume, answering null when done within the delay', async () => {
    const upid: string = await data('POST', '/nodes/pve2/storage/local/download-url', {
      url: 'https://example.org/tiny.iso',
      content: 'iso',
      filename: 'tiny.iso',
    });
    // Follow the download task to its end, as a client does; a fixed number of polls fails on a busy machine.
    const taskStatus = `/nodes/pve2/tasks/${encodeURIComponent(upid)}/status`;
    while (((await data('GET', taskStatus)) as { status: string }).status !== 'stopped')
      await new Promise((r) => setTimeout(r, 20));
    expect(
      await data('DELETE', `/nodes/pve2/storage/local/content/${encodeURIComponent('local:iso/tiny.iso')}?delay=5`),
    ).toBeNull();
    expect(sim.state.volume('local:iso/tiny.iso', 'pve2')).toBeUndefined();
  });
});

describe('access', () => {
  it('tells a token its own permissions', async () => {
    const tenant = tokenAuth(sim, 'tenant@pve!one');
    const reply = await call(sim, 'GET', '/access/permissions', { auth: tenant });
    const tree = reply.body?.data as Record<string, Record<string, number>>;
    expect(Object.keys(tree).sort()).toEqual(['/storage/shared', '/vms/101']);
    expect(tree['/vms/101']!['VM.Migrate']).toBe(1);
  });
});
