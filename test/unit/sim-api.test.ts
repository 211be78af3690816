import { createHash, X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { downloadContent } from '../../sim/downloads.js';
import { startSimulator, type SimulatedCluster } from '../../sim/index.js';
import { GiB, smallScenario } from './sim-fixtures.js';
import { call, tokenAuth, waitForTask } from './sim-http.js';

let sim: SimulatedCluster;
let admin: string;
let auditor: string;
let vm101Only: string;

beforeAll(async () => {
  sim = await startSimulator({
    speed: 200,
    authFailureDelayMs: 20,
    scenario: smallScenario({
      tokens: [
        { id: 'automation@pve!pm', secret: 'sim-secret-0123', acl: [{ path: '/', roles: ['Administrator'] }] },
        { id: 'monitor@pve!ro', secret: 'sim-secret-4567', acl: [{ path: '/', roles: ['PVEAuditor'] }] },
        { id: 'tenant@pve!one', secret: 'sim-secret-8910', acl: [{ path: '/vms/101', roles: ['PVEVMAdmin'] }] },
      ],
    }),
  });
  admin = tokenAuth(sim, 'automation@pve!pm');
  auditor = tokenAuth(sim, 'monitor@pve!ro');
  vm101Only = tokenAuth(sim, 'tenant@pve!one');
});

afterAll(() => sim.stop());
afterEach(() => sim.faults.clear());

describe('envelope and errors', () => {
  it('wraps answers in {data}', async () => {
    const reply = await call(sim, 'GET', '/version', { auth: admin });
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({ data: { version: '9.1.2', release: '9.1', repoid: expect.any(String) } });
  });

  it('answers a request without credentials with 401 No ticket', async () => {
    const reply = await call(sim, 'GET', '/version');
    expect([reply.status, reply.reason]).toEqual([401, 'No ticket']);
  });

  it('answers a bad token with 401 Authentication failed! and an empty body', async () => {
    for (const auth of ['PVEAPIToken=automation@pve!pm=wrong-secret', 'PVEAPIToken=nobody@pve!x=sim-secret-0123']) {
      const reply = await call(sim, 'GET', '/version', { auth });
      expect([reply.status, reply.reason, reply.text]).toEqual([401, 'Authentication failed!', '']);
    }
  });

  it('answers 403 naming path and privilege, before looking at parameters', async () => {
    const reply = await call(sim, 'POST', '/nodes/pve1/qemu/101/migrate', {
      auth: auditor,
      form: { target: 'pve2', bogus: 'x' },
    });
    expect(reply.status).toBe(403);
    expect(reply.reason).toBe('Permission check failed (/vms/101, VM.Migrate)');
    expect(reply.body).toEqual({ data: null, message: 'Permission check failed (/vms/101, VM.Migrate)\n' });
  });

  it('answers 400 with errors keyed by parameter', async () => {
    const reply = await call(sim, 'POST', '/nodes/pve1/qemu/101/migrate', {
      auth: admin,
      form: { online: 'yes', colour: 'red' },
    });
    expect([reply.status, reply.reason]).toEqual([400, 'Parameter verification failed.']);
    expect(reply.body).toEqual({
      data: null,
      message: 'Parameter verification failed.\n',
      errors: {
        target: 'property is missing and it is not optional',
        online: "type check ('boolean') failed - got 'yes'",
        colour: 'property is not defined in schema and the schema does not allow additional properties',
      },
    });
  });

  it('answers 501 for paths it does not implement', async () => {
    const reply = await call(sim, 'GET', '/nodes/pve1/ceph/status', { auth: admin });
    expect([reply.status, reply.reason]).toEqual([501, "Method 'GET /nodes/pve1/ceph/status' not implemented"]);
  });

  it('answers 500 with the message for a missing VM', async () => {
    const reply = await call(sim, 'GET', '/nodes/pve2/qemu/101/status/current', { auth: admin });
    expect(reply.status).toBe(500);
    expect(reply.reason).toBe("Configuration file 'nodes/pve2/qemu-server/101.conf' does not exist");
    expect(reply.body?.message).toBe("Configuration file 'nodes/pve2/qemu-server/101.conf' does not exist\n");
  });

  it('accepts JSON bodies as well as forms', async () => {
    const reply = await call(sim, 'PUT', '/nodes/pve1/qemu/104/config', {
      auth: admin,
      json: { description: 'via json', cores: 3 },
    });
    expect(reply.status).toBe(200);
    expect(sim.state.guests.get(104)!.config['cores']).toBe('3');
  });
});

describe('permissions shape what callers see', () => {
  it('lists only the guests a token may audit', async () => {
    const reply = await call(sim, 'GET', '/cluster/resources?type=vm', { auth: vm101Only });
    expect((reply.body?.data as { vmid: number }[]).map((r) => r.vmid)).toEqual([101]);
  });
});

describe('TLS', () => {
  const presented = (node: (typeof sim.nodes)[number]) =>
    new Promise<X509Certificate>((resolve, reject) => {
      const socket = connect({ host: node.host, port: node.port, rejectUnauthorized: false }, () => {
        resolve(socket.getPeerX509Certificate()!);
        socket.end();
      });
      socket.on('error', reject);
    });

  it('gives every node its own certificate, whose fingerprint the simulator and /nodes report', async () => {
    const listed = (await call(sim, 'GET', '/nodes', { auth: admin })).body?.data as {
      node: string;
      ssl_fingerprint: string;
    }[];
    for (const node of sim.nodes) {
      expect((await presented(node)).fingerprint256).toBe(node.tlsFingerprint);
      expect(listed.find((n) => n.node === node.name)?.ssl_fingerprint).toBe(node.tlsFingerprint);
      expect(node.tlsFingerprint).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    }
    expect(new Set(sim.nodes.map((n) => n.tlsFingerprint)).size).toBe(sim.nodes.length);
  });

  it('signs each node certificate with the cluster CA, naming the node', async () => {
    const ca = new X509Certificate(sim.caPem);
    for (const node of sim.nodes) {
      const cert = await presented(node);
      expect(cert.checkIssued(ca)).toBe(true);
      expect(cert.verify(ca.publicKey)).toBe(true);
      expect(cert.checkHost(node.name)).toBe(node.name);
      expect(cert.ca).toBe(false);
    }
  });
});

describe('tasks over the API', () => {
  it('return a UPID, then status and log with PVE shapes', async () => {
    const started = await call(sim, 'POST', '/nodes/pve1/qemu/102/migrate', {
      auth: admin,
      form: { target: 'pve3', online: '1' },
    });
    const upid = started.body?.data as string;
    expect(upid).toMatch(/^UPID:pve1:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:qmigrate:102:automation@pve!pm:$/);
    const status = await waitForTask(sim, admin, upid);
    expect(status).toMatchObject({
      upid,
      node: 'pve1',
      type: 'qmigrate',
      id: '102',
      user: 'automation@pve',
      tokenid: 'pm',
      status: 'stopped',
      exitstatus: 'OK',
    });
    const log = await call(sim, 'GET', `/nodes/pve1/tasks/${encodeURIComponent(upid)}/log?start=0&limit=3`, {
      auth: admin,
    });
    expect(log.body?.total).toBeGreaterThan(3);
    expect(log.body?.data).toEqual([
      { n: 1, t: expect.stringMatching(/starting migration of VM 102 to node 'pve3'/) },
      { n: 2, t: expect.stringMatching(/starting VM 102 on remote node 'pve3'/) },
      { n: 3, t: expect.stringMatching(/start remote tunnel/) },
    ]);
    expect(sim.state.guests.get(102)!.node).toBe('pve3');
  });

  it('reject a malformed UPID', async () => {
    const reply = await call(sim, 'GET', '/nodes/pve1/tasks/UPID:nope/status', { auth: admin });
    expect(reply.status).toBe(400);
    expect(reply.body?.errors).toEqual({ upid: 'unable to parse worker upid' });
  });
});

describe('nodes going offline', () => {
  it('close their listener and make proxied calls fail with 595, until they return', async () => {
    await sim.faults.nodeOffline('pve3');
    const via = await call(sim, 'GET', '/nodes/pve3/qemu/108/status/current', { auth: admin });
    expect([via.status, via.reason]).toEqual([595, 'No route to host']);
    await expect(call(sim, 'GET', '/version', { auth: admin, via: 'pve3' })).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    const resources = await call(sim, 'GET', '/cluster/resources?type=node', { auth: admin });
    expect((resources.body?.data as { node: string; status: string }[]).find((n) => n.node === 'pve3')!.status).toBe(
      'offline',
    );

    await sim.faults.nodeOnline('pve3');
    expect((await call(sim, 'GET', '/version', { auth: admin, via: 'pve3' })).status).toBe(200);
  });

  it('take writes away when quorum is lost', async () => {
    await sim.faults.nodeOffline('pve2');
    await sim.faults.nodeOffline('pve3');
    const write = await call(sim, 'PUT', '/nodes/pve1/qemu/104/config', { auth: admin, form: { description: 'x' } });
    expect([write.status, write.reason]).toEqual([500, 'cluster not ready - no quorum?']);
    expect((await call(sim, 'GET', '/cluster/status', { auth: admin })).body?.data).toEqual(
      expect.arrayContaining([expect.objectContaining({ type: 'cluster', quorate: 0 })]),
    );
  });
});

describe('fault injection', () => {
  it('adds latency', async () => {
    sim.faults.setApi({ latencyMs: 150 });
    const start = performance.now();
    await call(sim, 'GET', '/version', { auth: admin });
    expect(performance.now() - start).toBeGreaterThanOrEqual(140);
  });

  it('fails calls at a rate', async () => {
    sim.faults.setApi({ errorRate: 1, errorStatus: 503 });
    const reply = await call(sim, 'GET', '/version', { auth: admin });
    expect(reply.status).toBe(503);
  });

  it('resets connections before or after the call took effect', async () => {
    sim.faults.failCalls({ kind: 'reset', match: 'POST /nodes/pve1/qemu/104/status/start' });
    await expect(call(sim, 'POST', '/nodes/pve1/qemu/104/status/start', { auth: admin })).rejects.toMatchObject({
      code: 'ECONNRESET',
    });
    expect(sim.counters.tasks('qmstart', 104)).toBe(0);

    sim.faults.failCalls({ kind: 'reset-after', match: 'POST /nodes/pve1/qemu/104/status/start' });
    await expect(call(sim, 'POST', '/nodes/pve1/qemu/104/status/start', { auth: admin })).rejects.toMatchObject({
      code: 'ECONNRESET',
    });
    expect(sim.counters.tasks('qmstart', 104)).toBe(1);
    expect(sim.counters.calls('qemuStart', 104)).toBe(1);
  });

  it('is controllable through /_sim with the admin secret only', async () => {
    const denied = await call(sim, 'GET', '/_sim/counters', { auth: admin });
    expect(denied.status).toBe(401);
    const bearer = `Bearer ${sim.adminSecret}`;
    const set = await call(sim, 'POST', '/_sim/faults', {
      auth: bearer,
      json: { task_failures: [{ type: 'qmshutdown', times: 1 }] },
    });
    expect(set.status).toBe(200);
    const started = await call(sim, 'POST', '/nodes/pve1/qemu/103/status/shutdown', { auth: admin });
    const status = await waitForTask(sim, admin, started.body?.data as string);
    expect(status['exitstatus']).toBe("command 'qmshutdown' failed: exit code 1");
    const counters = await call(sim, 'GET', '/_sim/counters', { auth: bearer });
    expect((counters.body?.data as { tasks: Record<string, number> }).tasks['qmshutdown:103']).toBe(1);
    const bad = await call(sim, 'POST', '/_sim/faults', { auth: bearer, json: { api_error_rate: 2 } });
    expect(bad.status).toBe(400);
  });

  it('lists the downloads it offers with the checksums of the bytes it serves', async () => {
    const url = 'https://example.org/alpine.iso';
    sim.state.downloads.set(url, { url, size: GiB });
    const listed = await call(sim, 'GET', '/_sim/downloads', { auth: `Bearer ${sim.adminSecret}` });
    const content = downloadContent(url);
    expect(listed.body?.data).toContainEqual({
      url,
      size: GiB,
      sha256: createHash('sha256').update(content).digest('hex'),
      sha512: createHash('sha512').update(content).digest('hex'),
    });
  });
});
