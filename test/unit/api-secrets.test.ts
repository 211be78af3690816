/**
 * No response, audit line or log line ever carries a credential: not the bearer tokens
 * callers present (valid or not), not their configured hashes, not the Proxmox token.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { tokenHash } from '../../api/auth.js';
import { fakeProxmox, operationPath, testApi, tokens, validBodies } from './api-fakes.js';

const pveSecret = '7d1f3c2e-9a8b-4c5d-8e6f-0a1b2c3d4e5f';
const strayToken = 'tok-not-configured-but-secret-8c1d';

describe('secrets', () => {
  it('never appear in responses, audit records or logs', async () => {
    const api = testApi({
      proxmox: {
        ...fakeProxmox(),
        // A Proxmox failure whose message (wrongly) carries the credential.
        inventory: async () => {
          throw new Error(`401 for PVEAPIToken=root@pam!ci=${pveSecret}`);
        },
        ping: async () => [
          { node: 'pve1', status: 'unauthorized', detail: 'the node refused the configured API token' },
        ],
      },
    });
    const id = 'vm-action/home/1001/delete/20251122T040000Z';
    api.temporal.seed({
      workflowId: id,
      environment: 'home',
      query: () => ({
        phase: 'awaiting-approval',
        requester: 'otto',
        environment: 'home',
        dryRun: false,
        approvalState: 'pending',
        steps: [],
        ignoredApprovals: [],
      }),
      update: (_, r) => ({ decision: 'approved', by: r.by, at: 'now', planVersion: r.planVersion }),
    });
    api.temporal.onStart = (w) => {
      w.result = { outcome: 'dry-run', plan: { version: 1 } };
    };

    const texts: string[] = [];
    const record = async (response: Response) => {
      texts.push(JSON.stringify([...response.headers.entries()]), await response.text());
    };
    const everyone = [...Object.keys(tokens), strayToken, undefined] as (keyof typeof tokens | string | undefined)[];
    for (const token of everyone) {
      await record(await api.call('GET', '/healthz', { token }));
      await record(await api.call('GET', '/readyz', { token }));
      await record(await api.call('GET', '/v1/environments', { token }));
      await record(await api.call('GET', '/v1/inventory?environment=home', { token }));
      await record(await api.call('GET', `/v1/inventory?environment=home&tag=${strayToken}`, { token }));
      for (const [kind, body] of Object.entries(validBodies)) {
        await record(await api.call('POST', `/v1/operations/${kind}`, { token, body: { ...body, dryRun: true } }));
        await record(
          await api.call('POST', `/v1/operations/${kind}`, { token, body: { ...body, [strayToken]: strayToken } }),
        );
      }
      await record(await api.call('GET', '/v1/operations', { token }));
      await record(await api.call('GET', operationPath(id), { token }));
      await record(await api.call('POST', operationPath(id, '/approve'), { token, body: { planVersion: 1 } }));
      await record(await api.call('POST', operationPath(id, '/reject'), { token, body: { planVersion: 1 } }));
      await record(await api.call('GET', '/v1/audit', { token }));
      await record(await api.call('GET', '/openapi.json', { token }));
      await record(await api.call('GET', '/docs', { token }));
      await record(await api.call('GET', '/v1/nowhere', { token }));
      await record(
        await api.call('POST', '/v1/operations/vm-action', {
          token,
          raw: `{"environment": "${strayToken}`,
          headers: { 'content-type': 'application/json' },
        }),
      );
    }
    texts.push(readFileSync(api.audit.path, 'utf8'), ...api.logs);

    const everything = texts.join('\n');
    const forbidden = [...Object.values(tokens), ...Object.values(tokens).map(tokenHash), pveSecret];
    for (const secret of forbidden) {
      expect(everything.includes(secret), `found ${secret.slice(0, 8)}…`).toBe(false);
    }
    // The stray token was sent as a bearer token (must not be echoed) and as data: only
    // data the caller sent as a field name may come back, as that field's name.
    const bearerEchoes = texts.filter((t) => t.includes(`Bearer ${strayToken}`));
    expect(bearerEchoes).toEqual([]);
    // Sanity: the session did exercise the failure paths whose messages could leak.
    expect(everything).toContain('unauthenticated');
    expect(everything).toContain('proxmox_unavailable');
  });

  it('lists environments without their credentials', async () => {
    const api = testApi();
    const text = await (await api.call('GET', '/v1/environments', { token: 'viewer' })).text();
    expect(text).not.toMatch(/credential|token|PM_TEST_|pass_path|ssh_key/i);
  });
});
