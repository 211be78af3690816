/**
 * Every error the client can raise, forced for real, carries no part of the token secret:
 * not in its message, stack, JSON form or inspected form.
 */
import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPveClient, type PveClient } from '../../lib/pve/client.js';
import {
  PveApiError,
  PveAuthError,
  PvePermissionError,
  PveTaskFailedError,
  PveTlsError,
  PveUnavailableError,
  PveValidationError,
} from '../../lib/pve/errors.js';
import { InvalidRequestError } from '../../lib/pve/errors.js';
import { waitForTask } from '../../lib/pve/tasks/wait.js';
import {
  closedPort,
  selfSignedCert,
  startFakePveNode,
  type FakePveNode,
  type KeyAndCert,
  type Script,
} from './pve-fake-server.js';

const secret = 'c0ffee42-5ec2-e7aa-b1e5-0123456789ab';
const credential = { tokenId: 'automation@pve!orchestrator', secret };
const upid = 'UPID:pve1:000934AF:0D015579:68BF3A41:qmigrate:101:automation@pve!orchestrator:';

let cert: KeyAndCert;
let node: FakePveNode;
beforeAll(async () => {
  cert = await selfSignedCert();
  node = await startFakePveNode(cert);
});
afterAll(() => node.close());

function client(overrides: { port?: number; fingerprint?: string; timeoutMs?: number } = {}): PveClient {
  return createPveClient({
    nodes: [{ name: 'pve1', host: '127.0.0.1', port: overrides.port ?? node.port }],
    tls: { fingerprint: overrides.fingerprint ?? cert.fingerprint },
    credential,
    timeoutMs: overrides.timeoutMs ?? 2_000,
  });
}

async function failure(script: Script, call: (c: PveClient) => Promise<unknown>, overrides = {}): Promise<Error> {
  node.script = script;
  const c = client(overrides);
  try {
    await call(c);
  } catch (err) {
    return err as Error;
  } finally {
    await c.close();
  }
  throw new Error('expected the call to fail');
}

const migrate = (c: PveClient) => c.qemu.migrate({ node: 'pve1', vmid: 101, target: 'pve2', online: true });

const cases: [string, () => Promise<Error>, new (...args: never[]) => Error][] = [
  ['401', () => failure(() => ({ status: 401, statusText: 'Authentication failed!' }), migrate), PveAuthError],
  [
    '403',
    () => failure(() => ({ status: 403, statusText: 'Permission check failed (/vms/101, VM.Migrate)' }), migrate),
    PvePermissionError,
  ],
  [
    '400',
    () =>
      failure(
        () => ({
          status: 400,
          json: {
            data: null,
            message: 'Parameter verification failed.\n',
            errors: { target: 'target is local node.' },
          },
        }),
        migrate,
      ),
    PveValidationError,
  ],
  [
    '500',
    () =>
      failure(
        () => ({ status: 500, json: { data: null, message: "can't migrate running VM without --online\n" } }),
        migrate,
      ),
    PveApiError,
  ],
  ['503', () => failure(() => ({ status: 503, statusText: 'Service Unavailable' }), migrate), PveUnavailableError],
  [
    'timeout',
    () =>
      failure(() => new Promise((r) => setTimeout(() => r({ json: { data: null } }), 500)), migrate, {
        timeoutMs: 100,
      }),
    PveUnavailableError,
  ],
  ['connection refused', async () => failure(() => ({}), migrate, { port: await closedPort() }), PveUnavailableError],
  [
    'fingerprint mismatch',
    () =>
      failure(() => ({}), migrate, { fingerprint: cert.fingerprint.replace(/^../, (h) => (h === 'AA' ? 'BB' : 'AA')) }),
    PveTlsError,
  ],
  [
    'task failure',
    () =>
      failure(
        (req) =>
          req.url.includes('/status')
            ? {
                json: {
                  data: {
                    upid,
                    node: 'pve1',
                    pid: 1,
                    pstart: 1,
                    starttime: 1,
                    type: 'qmigrate',
                    id: '101',
                    user: 'automation@pve!orchestrator',
                    status: 'stopped',
                    exitstatus: 'migration aborted',
                  },
                },
              }
            : { json: { data: [{ n: 1, t: 'TASK ERROR: migration aborted' }], total: 1 } },
        (c) => waitForTask(c, upid, { pollMs: 1 }),
      ),
    PveTaskFailedError,
  ],
  [
    'invalid request',
    () =>
      failure(
        () => ({}),
        (c) => c.qemu.migrate({ node: 'pve1', vmid: 5, target: 'pve2' }),
      ),
    InvalidRequestError,
  ],
];

describe('errors never carry the token secret', () => {
  it.each(cases)('%s', async (_, force, type) => {
    const err = await force();
    expect(err).toBeInstanceOf(type);
    for (const rendering of [err.message, String(err.stack), JSON.stringify(err), inspect(err, { depth: 10 })]) {
      expect(rendering).not.toContain(secret);
      expect(rendering).not.toContain(secret.slice(0, 8));
      expect(rendering).not.toMatch(/PVEAPIToken/i);
    }
  });
});
