import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { buildRequest } from '../../lib/pve/endpoint.js';
import { endpoints } from '../../lib/pve/registry.js';
import {
  PveApiError,
  PveAuthError,
  PvePermissionError,
  PveTlsError,
  PveUnavailableError,
  PveValidationError,
} from '../../lib/pve/errors.js';
import { createHttpTransport, type PveTransport } from '../../lib/pve/transport.js';
import {
  caSignedCert,
  closedPort,
  selfSignedCert,
  startFakePveNode,
  type FakePveNode,
  type KeyAndCert,
} from './pve-fake-server.js';

const credential = { tokenId: 'automation@pve!orchestrator', secret: '6f1f3e0a-5b1c-4d8e-9a77-0c2f7d1e9b42' };

let cert: KeyAndCert;
let otherCert: KeyAndCert;
let node: FakePveNode;
const transports: PveTransport[] = [];

function transport(opts: Partial<Parameters<typeof createHttpTransport>[0]> = {}) {
  const t = createHttpTransport({
    nodes: [{ name: 'pve1', host: '127.0.0.1', port: node.port }],
    tls: { fingerprint: cert.fingerprint },
    credential,
    timeoutMs: 2_000,
    ...opts,
  });
  transports.push(t);
  return t;
}

beforeAll(async () => {
  [cert, otherCert] = await Promise.all([selfSignedCert('pve1'), selfSignedCert('impostor')]);
  node = await startFakePveNode(cert);
});
afterEach(async () => {
  await Promise.all(transports.splice(0).map((t) => t.close()));
  node.received.length = 0;
  node.connections = 0;
  node.closedConnections = 0;
  node.script = () => ({ json: { data: null } });
});
afterAll(() => node.close());

describe('requests on the wire', () => {
  it('sends the token header, the /api2/json prefix and GET parameters as a query string', async () => {
    node.script = () => ({ json: { data: [] } });
    await transport().send(buildRequest(endpoints.clusterResources, { type: 'vm' }));

    const [req] = node.received;
    expect(req?.method).toBe('GET');
    expect(req?.url).toBe('/api2/json/cluster/resources?type=vm');
    expect(req?.headers.authorization).toBe(`PVEAPIToken=${credential.tokenId}=${credential.secret}`);
  });

  it('sends POST parameters form-encoded with booleans as 0/1 and path parameters in the path only', async () => {
    node.script = () => ({
      json: { data: 'UPID:pve1:0000AAAA:0000BBBB:68BF3A41:qmigrate:101:automation@pve!orchestrator:' },
    });
    await transport().send(
      buildRequest(endpoints.qemuMigrate, {
        node: 'pve1',
        vmid: 101,
        target: 'pve2',
        online: true,
        'with-local-disks': false,
      }),
    );

    const [req] = node.received;
    expect(req?.url).toBe('/api2/json/nodes/pve1/qemu/101/migrate');
    expect(req?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(new URLSearchParams(req!.body))).toEqual({
      target: 'pve2',
      online: '1',
      'with-local-disks': '0',
    });
  });

  it('unwraps the {data} envelope and keeps a paged total', async () => {
    node.script = () => ({ json: { data: [{ n: 1, t: 'starting' }], total: 7 } });
    const envelope = await transport().send(
      buildRequest(endpoints.taskLog, {
        node: 'pve1',
        upid: 'UPID:pve1:0000AAAA:0000BBBB:68BF3A41:qmstart:101:root@pam:',
        start: 0,
        limit: 1,
      }),
    );
    expect(envelope).toEqual({ data: [{ n: 1, t: 'starting' }], total: 7 });
  });
});

describe('PVE errors become typed errors', () => {
  const send = () => transport().send(buildRequest(endpoints.qemuMigrate, { node: 'pve1', vmid: 101, target: 'pve2' }));

  it('401 is an authentication error that names the token, not its secret', async () => {
    node.script = () => ({ status: 401, statusText: 'Authentication failed!' });
    const err = await send().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PveAuthError);
    expect((err as PveAuthError).message).toContain('automation@pve!orchestrator');
    expect((err as PveAuthError).retryable).toBe(false);
  });

  it('403 names the missing privilege and ACL path', async () => {
    node.script = () => ({
      status: 403,
      statusText: 'Permission check failed (/vms/101, VM.Migrate)',
      json: { data: null, message: 'Permission check failed (/vms/101, VM.Migrate)\n' },
    });
    const err = (await send().catch((e: unknown) => e)) as PvePermissionError;
    expect(err).toBeInstanceOf(PvePermissionError);
    expect(err.aclPath).toBe('/vms/101');
    expect(err.privileges).toEqual(['VM.Migrate']);
    expect(err.message).toMatch(/^token lacks VM\.Migrate on \/vms\/101/);
  });

  it('403 with alternatives joined by | lists each', async () => {
    node.script = () => ({
      status: 403,
      statusText: 'Permission check failed (/vms/101, VM.Snapshot|VM.Snapshot.Rollback)',
    });
    const err = (await send().catch((e: unknown) => e)) as PvePermissionError;
    expect(err.privileges).toEqual(['VM.Snapshot', 'VM.Snapshot.Rollback']);
  });

  it('400 carries the per-parameter errors', async () => {
    node.script = () => ({
      status: 400,
      statusText: 'Parameter verification failed.',
      json: { data: null, message: 'Parameter verification failed.\n', errors: { target: 'target is local node.' } },
    });
    const err = (await send().catch((e: unknown) => e)) as PveValidationError;
    expect(err).toBeInstanceOf(PveValidationError);
    expect(err.errors).toEqual({ target: 'target is local node.' });
  });

  it('500 keeps PVE message; only lock timeouts are retryable', async () => {
    node.script = () => ({
      status: 500,
      statusText: 'VM 100 is running - destroy failed',
      json: { data: null, message: 'VM 100 is running - destroy failed\n' },
    });
    const running = (await send().catch((e: unknown) => e)) as PveApiError;
    expect(running).toBeInstanceOf(PveApiError);
    expect(running.pveMessage).toBe('VM 100 is running - destroy failed');
    expect(running.retryable).toBe(false);

    node.script = () => ({
      status: 500,
      json: { data: null, message: "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout\n" },
    });
    const locked = (await send().catch((e: unknown) => e)) as PveApiError;
    expect(locked.retryable).toBe(true);
  });

  it('understands PVE 8 answers that carry the message only in the reason phrase', async () => {
    node.script = () => ({ status: 500, statusText: 'VM 100 not running', json: { data: null } });
    const err = (await send().catch((e: unknown) => e)) as PveApiError;
    expect(err.pveMessage).toBe('VM 100 not running');
  });

  it('595 from pveproxy (target node unreachable) is unavailable and safe to repeat', async () => {
    node.script = () => ({ status: 595, statusText: 'Connection refused' });
    const err = (await send().catch((e: unknown) => e)) as PveUnavailableError;
    expect(err).toBeInstanceOf(PveUnavailableError);
    expect(err.requestMayHaveBeenSent).toBe(false);
    expect(err.retryable).toBe(true);
  });

  it('a POST that timed out after being sent is not marked retryable', async () => {
    node.script = () => new Promise((resolve) => setTimeout(() => resolve({ json: { data: null } }), 1_000));
    const err = (await transport({ timeoutMs: 200 })
      .send(buildRequest(endpoints.qemuMigrate, { node: 'pve1', vmid: 101, target: 'pve2' }))
      .catch((e: unknown) => e)) as PveUnavailableError;
    expect(err).toBeInstanceOf(PveUnavailableError);
    expect(err.requestMayHaveBeenSent).toBe(true);
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('timed out');
  });
});

describe('failover between nodes', () => {
  it('moves past a node that refuses connections and then stays on the one that answered', async () => {
    const dead = await closedPort();
    node.script = () => ({ json: { data: [] } });
    const t = transport({
      nodes: [
        { name: 'pve1', host: '127.0.0.1', port: dead },
        { name: 'pve2', host: '127.0.0.1', port: node.port },
      ],
    });
    await t.send(buildRequest(endpoints.nodes, {}));
    await t.send(buildRequest(endpoints.nodes, {}));
    expect(node.received).toHaveLength(2);
  });

  it('does not move on after an HTTP error', async () => {
    const second = await startFakePveNode(cert, () => ({ json: { data: [] } }));
    try {
      node.script = () => ({ status: 500, json: { data: null, message: 'boom\n' } });
      const t = transport({
        nodes: [
          { name: 'pve1', host: '127.0.0.1', port: node.port },
          { name: 'pve2', host: '127.0.0.1', port: second.port },
        ],
      });
      await expect(t.send(buildRequest(endpoints.nodes, {}))).rejects.toBeInstanceOf(PveApiError);
      expect(second.received).toHaveLength(0);
    } finally {
      await second.close();
    }
  });

  it('reports every node when none can be reached, as retryable', async () => {
    const t = transport({
      nodes: [
        { name: 'pve1', host: '127.0.0.1', port: await closedPort() },
        { name: 'pve2', host: '127.0.0.1', port: await closedPort() },
      ],
    });
    const err = (await t.send(buildRequest(endpoints.nodes, {})).catch((e: unknown) => e)) as PveUnavailableError;
    expect(err).toBeInstanceOf(PveUnavailableError);
    expect(err.message).toMatch(/pve1: ECONNREFUSED.*pve2: ECONNREFUSED/);
    expect(err.retryable).toBe(true);
  });
});

describe('TLS verification', () => {
  it('accepts the node whose certificate matches the pinned fingerprint (any case)', async () => {
    node.script = () => ({ json: { data: [] } });
    await transport({ tls: { fingerprint: cert.fingerprint.toLowerCase() } }).send(buildRequest(endpoints.nodes, {}));
    expect(node.received).toHaveLength(1);
  });

  it('refuses a node with another certificate before writing any request', async () => {
    const err = await transport({ tls: { fingerprint: otherCert.fingerprint } })
      .send(buildRequest(endpoints.qemuMigrate, { node: 'pve1', vmid: 101, target: 'pve2' }))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PveTlsError);
    expect((err as Error).message).toContain(cert.fingerprint);
    // The handshake happened and the connection is gone; a request written on it would have been seen.
    await vi.waitFor(() => {
      expect(node.connections).toBeGreaterThan(0);
      expect(node.closedConnections).toBe(node.connections);
    });
    expect(node.received).toHaveLength(0);
  });

  it('refuses a self-signed node when only a CA is configured', async () => {
    const { caCert } = await caSignedCert();
    const err = await transport({ tls: { ca: caCert } })
      .send(buildRequest(endpoints.nodes, {}))
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PveTlsError);
    expect(node.received).toHaveLength(0);
  });

  it('accepts a node whose certificate the configured CA signed', async () => {
    const { caCert, leaf } = await caSignedCert();
    const signed = await startFakePveNode(leaf, () => ({ json: { data: [] } }));
    try {
      const t = transport({ nodes: [{ name: 'pve1', host: '127.0.0.1', port: signed.port }], tls: { ca: caCert } });
      await t.send(buildRequest(endpoints.nodes, {}));
      expect(signed.received).toHaveLength(1);
    } finally {
      await signed.close();
    }
  });

  it('pins each node by its own certificate, as a PVE cluster needs (every node has its own pve-ssl.pem)', async () => {
    const second = await startFakePveNode(otherCert, () => ({ json: { data: [] } }));
    const cluster = (pve2Pin: string) =>
      transport({
        nodes: [
          { name: 'pve1', host: '127.0.0.1', port: node.port, fingerprint: cert.fingerprint },
          { name: 'pve2', host: '127.0.0.1', port: second.port, fingerprint: pve2Pin },
        ],
        tls: {},
        preferredNode: 'pve2',
      });
    try {
      await cluster(otherCert.fingerprint).send(buildRequest(endpoints.nodes, {}));
      expect(second.received).toHaveLength(1);

      const err = await cluster(cert.fingerprint)
        .send(buildRequest(endpoints.nodes, {}))
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PveTlsError);
      expect((err as Error).message).toMatch(
        new RegExp(`^refusing pve2 .*${otherCert.fingerprint} does not match the pinned ${cert.fingerprint}$`),
      );
      expect(second.received).toHaveLength(1);
    } finally {
      await second.close();
    }
  });

  it('refuses a cluster where one node has neither a pin nor a CA, naming it', () => {
    expect(() =>
      transport({
        nodes: [
          { name: 'pve1', host: '127.0.0.1', port: node.port, fingerprint: cert.fingerprint },
          { name: 'pve2', host: '127.0.0.1', port: node.port },
        ],
        tls: {},
      }),
    ).toThrow(/fingerprint for pve2;/);
  });

  it('requires verification unless insecure is chosen, and then warns loudly once', async () => {
    expect(() => transport({ tls: {} })).toThrow(/ca_file.*fingerprint/);

    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    node.script = () => ({ json: { data: [] } });
    await transport({ tls: { insecure: true } }).send(buildRequest(endpoints.nodes, {}));
    transport({ tls: { insecure: true } });
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]?.[0])).toMatch(/TLS verification to PVE is DISABLED/);
    warn.mockRestore();
  });
});
