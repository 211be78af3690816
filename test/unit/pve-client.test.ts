import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import {
  createPveClient,
  createPveClientForEnvironment,
  type PveClient,
  type ReadRetry,
} from '../../lib/pve/client.js';
import type { WireRequest } from '../../lib/pve/endpoint.js';
import { InvalidRequestError } from '../../lib/pve/errors.js';
import { matchEndpoint } from '../../lib/pve/registry.js';
import { PveApiError, PveUnavailableError } from '../../lib/pve/errors.js';
import type { PveEnvelope, PveTransport } from '../../lib/pve/transport.js';
import type { EnvironmentConfig } from '../../lib/config/schema.js';
import { selfSignedCert, startFakePveNode, type FakePveNode } from './pve-fake-server.js';

function scriptedClient(
  answer: (req: WireRequest) => PveEnvelope,
  readRetry?: ReadRetry,
): { client: PveClient; sent: WireRequest[] } {
  const sent: WireRequest[] = [];
  const transport: PveTransport = {
    async send(req) {
      sent.push(req);
      return answer(req);
    },
    async close() {},
  };
  return {
    client: createPveClient({ nodes: [], tls: {}, credential: { tokenId: '', secret: '' }, transport, readRetry }),
    sent,
  };
}

const upid = 'UPID:pve1:000934AF:0D015579:68BF3A41:qmigrate:101:automation@pve!orchestrator:';

/** Answers each request with the next of `failures` (thrown) until they run out, then with `data`. */
function failingFirst(failures: ((req: WireRequest) => Error)[], data: unknown) {
  let n = 0;
  return (req: WireRequest): PveEnvelope => {
    const failure = failures[n++];
    if (failure) throw failure(req);
    return { data };
  };
}

const bareServerError = (req: WireRequest) => new PveApiError(req, 500, 'Internal Server Error');
const reset = (req: WireRequest) => new PveUnavailableError(req, 'pve1: ECONNRESET', { requestMayHaveBeenSent: true });

describe('reads that fail transiently', () => {
  const retry: ReadRetry = { attempts: 3, pauseMs: 1 };

  it('are repeated in place until PVE answers', async () => {
    const { client, sent } = scriptedClient(
      failingFirst([bareServerError, reset], [{ node: 'pve1', status: 'online' }]),
      retry,
    );
    expect(await client.nodes.list()).toEqual([{ node: 'pve1', status: 'online' }]);
    expect(sent).toHaveLength(3);
  });

  it('reach the caller once the attempts run out', async () => {
    const { client, sent } = scriptedClient(failingFirst([reset, reset, reset, reset], []), retry);
    await expect(client.nodes.list()).rejects.toThrow(PveUnavailableError);
    expect(sent).toHaveLength(3);
  });

  it('are not repeated when PVE gave a reason', async () => {
    const { client, sent } = scriptedClient(
      failingFirst([(req) => new PveApiError(req, 500, 'VM 101 is locked (backup)')], []),
      retry,
    );
    await expect(client.qemu.config({ node: 'pve1', vmid: 101 })).rejects.toThrow(/is locked/);
    expect(sent).toHaveLength(1);
  });
});

describe('writes that fail transiently', () => {
  it('are sent once: whether PVE acted is for the caller to find out', async () => {
    const { client, sent } = scriptedClient(failingFirst([reset], upid), { attempts: 3, pauseMs: 1 });
    await expect(client.qemu.start({ node: 'pve1', vmid: 101 })).rejects.toThrow(PveUnavailableError);
    const second = scriptedClient(failingFirst([bareServerError], upid), { attempts: 3, pauseMs: 1 });
    await expect(second.client.qemu.start({ node: 'pve1', vmid: 101 })).rejects.toThrow(/Internal Server Error/);
    expect([sent.length, second.sent.length]).toEqual([1, 1]);
  });
});

describe('client methods', () => {
  it('send the endpoint their resource and name suggest and return its typed answer', async () => {
    const { client, sent } = scriptedClient(() => ({ data: upid }));
    const result = await client.qemu.migrate({
      node: 'pve1',
      vmid: 101,
      target: 'pve2',
      online: true,
      'with-local-disks': true,
    });

    expectTypeOf(result).toEqualTypeOf<string>();
    expect(result).toBe(upid);
    expect(matchEndpoint(sent[0]!.method, sent[0]!.path)?.endpoint.name).toBe('qemuMigrate');
    expect(sent[0]!.form.toString()).toBe('target=pve2&online=1&with-local-disks=1');
  });

  it('parse PVE 0/1 booleans in answers', async () => {
    const { client } = scriptedClient(() => ({
      data: [{ id: 'qemu/100', type: 'qemu', node: 'pve1', vmid: 100, template: 1, status: 'stopped' }],
    }));
    const [vm] = await client.cluster.resources({ type: 'vm' });
    expect(vm?.template).toBe(true);
  });

  it('normalise the next free VMID, which PVE sends as a string', async () => {
    const { client } = scriptedClient(() => ({ data: '1005' }));
    expect(await client.cluster.nextId()).toBe(1005);
  });

  it('return a task log window with the total line count', async () => {
    const { client } = scriptedClient(() => ({ data: [{ n: 3, t: 'migration finished' }], total: 3 }));
    expect(await client.tasks.log({ node: 'pve1', upid, start: 2, limit: 1 })).toEqual({
      lines: [{ n: 3, t: 'migration finished' }],
      total: 3,
    });
  });

  it('fail fast on a request PVE would reject, sending nothing', async () => {
    const { client, sent } = scriptedClient(() => ({ data: upid }));
    await expect(client.qemu.migrate({ node: 'pve1', vmid: 99, target: 'pve2' })).rejects.toThrow(InvalidRequestError);
    await expect(
      client.qemu.migrate({ node: 'pve1', vmid: 101, target: 'pve2', 'with-local-disks': 'yes' } as never),
    ).rejects.toThrow(/with-local-disks: type check \('boolean'\) failed/);
    expect(sent).toHaveLength(0);
  });

  it('reject an answer that does not have the declared shape', async () => {
    const { client } = scriptedClient(() => ({ data: 'not a upid' }));
    const err = await client.qemu.start({ node: 'pve1', vmid: 101 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PveApiError);
    expect((err as Error).message).toMatch(/does not have the shape qemuStart expects: must be a PVE UPID/);
  });
});

describe('createPveClientForEnvironment', () => {
  let node: FakePveNode;
  let fingerprint: string;
  beforeAll(async () => {
    const cert = await selfSignedCert();
    fingerprint = cert.fingerprint;
    node = await startFakePveNode(cert, () => ({
      json: { data: { version: '9.1.3', release: '9.1', repoid: 'deadbeef' } },
    }));
  });
  afterAll(() => node.close());

  it('resolves the token from the configured secret and reaches the cluster with pinned TLS', async () => {
    process.env.PVE_CLIENT_TEST_TOKEN = 'automation@pve!orchestrator=0b9c5a7e-token-secret';
    const env = {
      cluster: { name: 'lab', nodes: [{ name: 'pve1', host: '127.0.0.1', port: node.port, ssh_port: 22 }] },
      credentials: { token: { env: 'PVE_CLIENT_TEST_TOKEN' }, ssh_user: 'root' },
      tls: { fingerprint, insecure: false },
    } as unknown as EnvironmentConfig;

    const client = await createPveClientForEnvironment(env);
    try {
      expect(await client.cluster.version()).toMatchObject({ release: '9.1' });
      expect(node.received[0]?.headers.authorization).toBe(
        'PVEAPIToken=automation@pve!orchestrator=0b9c5a7e-token-secret',
      );
    } finally {
      await client.close();
      delete process.env.PVE_CLIENT_TEST_TOKEN;
    }
  });
});

describe('HA rules', () => {
  it('are none on PVE 8, which has no rules endpoint and answers 501', async () => {
    const { client } = scriptedClient((req) => {
      throw new PveApiError(req, 501, "Method 'GET /cluster/ha/rules' not implemented");
    });
    expect(await client.cluster.haRules()).toEqual([]);
  });

  it('reach the caller when PVE refuses them for another reason', async () => {
    const { client } = scriptedClient((req) => {
      throw new PveApiError(req, 403, 'Permission check failed (/, Sys.Audit)');
    });
    await expect(client.cluster.haRules()).rejects.toThrow(/Permission check failed/);
  });
});
