/**
 * The API's read-only Proxmox view: probes ask each node separately and say, in words safe
 * for a public endpoint, whether it answered, refused the token, or could not be reached.
 */
import { describe, expect, it } from 'vitest';
import { createReadOnlyProxmox } from '../../api/proxmox.js';
import type { EnvironmentConfig } from '../../lib/config/schema.js';
import type { PveClient } from '../../lib/pve/client.js';
import { PveAuthError, PveTlsError, PveUnavailableError } from '../../lib/pve/errors.js';
import { testConfig } from './api-fakes.js';

const req = { method: 'GET' as const, path: '/version' };

function clientAnswering(version: () => Promise<unknown>, resources: unknown[] = []): PveClient {
  return { cluster: { version, resources: async () => resources } } as unknown as PveClient;
}

describe('read-only Proxmox', () => {
  it('reports each node as ok, unauthorized or unreachable, without token ids or hosts', async () => {
    const config = testConfig();
    const byNode: Record<string, () => Promise<unknown>> = {
      pve1: async () => ({ version: '9.1' }),
      pve2: async () => {
        throw new PveAuthError(req, 'root@pam!ci', 'invalid token value!');
      },
      c1: async () => {
        throw new PveTlsError(req, '10.0.5.1', 'fingerprint mismatch');
      },
    };
    const proxmox = createReadOnlyProxmox(config, {
      connect: async (env: EnvironmentConfig) => clientAnswering(byNode[env.cluster.nodes[0]!.name]!),
    });
    const home = await proxmox.ping('home');
    expect(home).toEqual([
      { node: 'pve1', status: 'ok' },
      { node: 'pve2', status: 'unauthorized', detail: 'the node refused the configured API token' },
    ]);
    const cloud = await proxmox.ping('cloud');
    expect(cloud).toEqual([
      { node: 'c1', status: 'unreachable', detail: expect.stringMatching(/TLS verification failed/) },
    ]);
    expect(JSON.stringify([home, cloud])).not.toMatch(/root@pam|10\.0\./);
  });

  it('reports a node whose client cannot be built (credentials missing) and retries building it next time', async () => {
    const config = testConfig();
    let attempts = 0;
    const proxmox = createReadOnlyProxmox(config, {
      connect: async () => {
        attempts += 1;
        if (attempts === 1)
          throw Object.assign(new Error('environment variable PM_TEST_CLOUD_TOKEN is not set'), {
            name: 'SecretError',
          });
        return clientAnswering(async () => ({}));
      },
    });
    expect(await proxmox.ping('cloud')).toEqual([
      { node: 'c1', status: 'unauthorized', detail: 'the API token could not be read from its configured source' },
    ]);
    expect(await proxmox.ping('cloud')).toEqual([{ node: 'c1', status: 'ok' }]);
  });

  it('treats a node that does not answer as unreachable', async () => {
    const proxmox = createReadOnlyProxmox(testConfig(), {
      connect: async () =>
        clientAnswering(async () => {
          throw new PveUnavailableError(req, 'connect ECONNREFUSED', { requestMayHaveBeenSent: false });
        }),
    });
    expect(await proxmox.ping('cloud')).toEqual([{ node: 'c1', status: 'unreachable', detail: 'no answer' }]);
  });

  it('reads the inventory from the cluster resources', async () => {
    const proxmox = createReadOnlyProxmox(testConfig(), {
      connect: async () =>
        clientAnswering(
          async () => ({}),
          [
            { type: 'node', node: 'pve1', status: 'online', maxcpu: 8, maxmem: 100, mem: 10, cpu: 0.5 },
            { type: 'qemu', vmid: 1001, name: 'web-1', node: 'pve1', status: 'running', tags: 'web;prod' },
          ],
        ),
    });
    const inventory = await proxmox.inventory('home');
    expect(inventory.nodes.map((n) => n.name)).toEqual(['pve1']);
    expect(inventory.guests).toEqual([expect.objectContaining({ vmid: 1001, name: 'web-1', tags: ['web', 'prod'] })]);
  });
});
