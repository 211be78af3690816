import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { createPveClient, createPveClientForEnvironment, type PveClient } from '../../lib/pve/client.js';
import { InvalidRequestError, matchEndpoint, type WireRequest } from '../../lib/pve/endpoints.js';
import { PveApiError } from '../../lib/pve/errors.js';
import type { PveEnvelope, PveTransport } from '../../lib/pve/transport.js';
import type { EnvironmentConfig } from '../../lib/config/schema.js';
import { selfSignedCert, startFakePveNode, type FakePveNode } from './pve-fake-server.js';

function scriptedClient(answer: (req: WireRequest) => PveEnvelope): { client: PveClient; sent: WireRequest[] } {
  const sent: WireRequest[] = [];
  const transport: PveTransport = {
    async send(req) {
      sent.push(req);
      return answer(req);
    },
    async close() {},
  };
  return { client: createPveClient({ nodes: [], tls: {}, credential: { tokenId: '', secret: '' }, transport }), sent };
}

const upid = 'UPID:pve1:000934AF:0D015579:68BF3A41:qmigrate:101:automation@pve!orchestrator:';

describe('client methods', () => {
  it('send the endpoint their resource and name suggest and return its typed answer', async () => {
    const { client, sent } = scriptedClient(() => ({ data: upid }));
    const result = await client.qemu.migrate({ node: 'pve1', vmid: 101, target: 'pve2', online: true, 'with-local-disks': true });

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
    await expect(client.qemu.migrate({ node: 'pve1', vmid: 101, target: 'pve2', 'with-local-disks': 'yes' } as never)).rejects.toThrow(
      /with-local-disks: type check \('boolean'\) failed/,
    );
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
    node = await startFakePveNode(cert, () => ({ json: { data: { version: '9.1.3', release: '9.1', repoid: 'deadbeef' } } }));
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
      expect(node.received[0]?.headers.authorization).toBe('PVEAPIToken=automation@pve!orchestrator=0b9c5a7e-token-secret');
    } finally {
      await client.close();
      delete process.env.PVE_CLIENT_TEST_TOKEN;
    }
  });
});
