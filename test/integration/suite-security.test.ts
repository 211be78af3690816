/**
 * Letting no one in, end to end (real Temporal, real worker activities, the simulator):
 *
 *   - TLS: a node presenting a certificate other than the pinned one, or not signed by the
 *     configured CA, is refused before any request is written; the operation fails at once,
 *     not retried, saying why.
 *   - Approvals sent straight to Temporal, past the API: self-approval, a stale plan version,
 *     a replay after the decision, a decision on an ended operation change nothing; nor does a
 *     decision the API did not sign (the worker checks the signature before it counts), which
 *     is audited as refused.
 *   - Random input over HTTP against the API on the real Temporal server.
 *   - Secrets: none in this file's histories, API answers and logs (the namespace-wide scan
 *     is at the end of suite-worker-kill.test.ts, the longest suite file).
 */
import { signed } from '../../testkit/approvals.js';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { WorkflowNotFoundError, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { createApp } from '../../api/app.js';
import { createReadOnlyProxmox } from '../../api/proxmox.js';
import { createAuditLog } from '../../lib/audit/log.js';
import type { AppConfig } from '../../lib/config/schema.js';
import { generateClusterCertificates } from '../../sim/tls.js';
import { buildWorkerDeps } from '../../worker/deps.js';
import { approveSignal, approveUpdate, rejectSignal, statusQuery } from '../../workflows/definitions.js';
import { startSuiteCluster, totalCalls as callsOf, type SuiteCluster } from '../../testkit/stack/cluster.js';
import { createFuzzer, problemsWith, type OpenApiDocument } from '../support/suite/fuzz.js';
import { outcomeOf, startOperation, waitForStatus, type Target } from '../support/suite/operations.js';
import { random, record, suiteSeed } from '../support/suite/report.js';
import { fleet } from '../../testkit/stack/scenarios.js';
import {
  combine,
  fixtureSecrets,
  scanFiles,
  scanHistories,
  scanTexts,
  shareDone,
  shareSecrets,
} from '../../testkit/stack/secrets.js';
import { startTestWorker, testConnection, uniqueTaskQueue, type TestWorker } from '../support/temporal.js';

const scenario = fleet({ nodes: 2, perNode: 6 });
let cluster: SuiteCluster;
let target: Target;
const workers: TestWorker[] = [];
const servers: ServerType[] = [];
const responses: Record<string, string> = {};

beforeAll(async () => {
  const taskQueue = uniqueTaskQueue('suite-security');
  cluster = await startSuiteCluster({
    scenario,
    speed: 50,
    actors: [
      { actor: 'alice', roles: ['operator'] },
      { actor: 'bob', roles: ['approver'] },
      { actor: 'root', roles: ['admin'] },
    ],
    temporal: { address: inject('temporalAddress'), namespace: inject('temporalNamespace'), taskQueue },
  });
  shareSecrets(inject('temporalAddress'), 'security', cluster.secrets);
  workers.push(await startTestWorker({ taskQueue, activities: createActivities(cluster.deps) }));
  target = { client: await testConnection(), taskQueue };
});

afterAll(async () => {
  shareDone(inject('temporalAddress'), 'security');
  for (const server of servers) await new Promise((r) => server.close(r));
  for (const worker of workers) await worker.shutdown();
  await cluster?.stop();
});

/** A worker for the same cluster, configured differently (its own task queue). */
async function workerWith(config: AppConfig): Promise<Target> {
  const taskQueue = uniqueTaskQueue('suite-security-tls');
  workers.push(await startTestWorker({ taskQueue, activities: createActivities(buildWorkerDeps(config)) }));
  return { client: target.client, taskQueue };
}

function withTls(tls: AppConfig['environments'][string]['tls']): AppConfig {
  const config = structuredClone(cluster.config);
  const env = config.environments[cluster.environment]!;
  env.tls = tls;
  for (const node of env.cluster.nodes) delete node.tls_fingerprint;
  return config;
}

const totalCalls = () => callsOf(cluster.sim);

describe('TLS to Proxmox', () => {
  it('refuses a node whose certificate is not the pinned one: the inventory fails at once, nothing sent', async () => {
    const pinned = Array.from({ length: 32 }, (_, i) => (i * 7).toString(16).padStart(2, '0').toUpperCase()).join(':');
    const before = totalCalls();
    const outcome = await outcomeOf(
      await startOperation(await workerWith(withTls({ fingerprint: pinned, insecure: false })), 'inventory', {}),
    );
    expect(outcome).toMatchObject({
      state: 'failed',
      type: 'PveTlsError',
      message: expect.stringMatching(
        new RegExp(
          `^refusing pve1 \\(127\\.0\\.0\\.1\\) for GET /cluster/resources: PVE_TLS_PIN_MISMATCH certificate fingerprint ${cluster.sim.nodes[0]!.tlsFingerprint} does not match the pinned ${pinned}$`,
        ),
      ),
      activity: { type: 'summarizeInventory', retryState: 'NON_RETRYABLE_FAILURE' },
    });
    expect(totalCalls()).toBe(before);
    record({
      section: 'security',
      name: 'TLS wrong fingerprint',
      value: 'refused, not retried, 0 requests sent',
      note: 'inventory operation fails with PveTlsError naming both fingerprints',
    });
  });

  it('refuses a node whose certificate the configured CA did not sign', async () => {
    const stranger = await generateClusterCertificates('stranger', '127.0.0.1', []);
    const caFile = join(cluster.dir, 'stranger-ca.pem');
    await writeFile(caFile, stranger.caPem);
    const before = totalCalls();
    const outcome = await outcomeOf(
      await startOperation(await workerWith(withTls({ ca_file: caFile, insecure: false })), 'inventory', {}),
    );
    expect(outcome).toMatchObject({
      state: 'failed',
      type: 'PveTlsError',
      message: expect.stringMatching(
        /^refusing pve1 \(127\.0\.0\.1\) for GET \/cluster\/resources: (SELF_SIGNED_CERT|DEPTH_ZERO_SELF_SIGNED_CERT|UNABLE_TO_VERIFY_LEAF_SIGNATURE|ERR_TLS_CERT)/,
      ),
      activity: { type: 'summarizeInventory', retryState: 'NON_RETRYABLE_FAILURE' },
    });
    expect(totalCalls()).toBe(before);
    record({
      section: 'security',
      name: 'TLS unknown CA',
      value: 'refused, not retried, 0 requests sent',
      note: 'inventory operation fails with PveTlsError',
    });
  });
});

describe('approvals sent straight to Temporal', () => {
  // Stopped guests, so a delete is one destroy step.
  const vm = (n: number) => ({ vmid: [1003, 1004, 1005, 1103][n]!, name: `vm${[1003, 1004, 1005, 1103][n]!}` });
  const deleteVm = (n: number, meta = {}) => startOperation(target, 'vm-action', { ...vm(n), action: 'delete' }, meta);
  const exists = (n: number) => cluster.sim.state.guests.has(vm(n).vmid);
  const ignored = async (handle: WorkflowHandle) =>
    (await handle.query(statusQuery)).ignoredApprovals.map((a) => a.why);
  const outcomes: string[] = [];

  afterAll(() => {
    record({
      section: 'security',
      name: 'forged, replayed and late approval signals',
      value: 'change nothing',
      note: outcomes.join('; '),
    });
    record({
      section: 'security',
      name: 'approval in another name, past the API',
      value: 'refused and audited',
      note: 'the API signs each decision (HMAC, key held by the API and the worker); an unsigned or badly signed one is checked by an activity, changes nothing and is recorded as operation.approval-refused',
    });
  });

  it('ignore self-approval, a stale plan version and a rejection without a reason, and say why', async () => {
    const handle = await deleteVm(0);
    await waitForStatus(handle, (s) => s.phase === 'awaiting-approval');
    await handle.signal(approveSignal, signed(handle.workflowId, 'approved', { by: 'alice', planVersion: 1 }));
    await handle.signal(approveSignal, signed(handle.workflowId, 'approved', { by: 'bob', planVersion: 2 }));
    await handle.signal(rejectSignal, signed(handle.workflowId, 'rejected', { by: 'bob', planVersion: 1 }));
    await expect.poll(() => ignored(handle)).toHaveLength(3);
    expect(await ignored(handle)).toEqual([
      'a high-risk operation cannot be approved by the actor who requested it',
      'names plan version 2, but the plan awaiting a decision is version 1',
      'a rejection needs a reason',
    ]);
    expect((await handle.query(statusQuery)).phase).toBe('awaiting-approval');
    expect(exists(0)).toBe(true);
    await handle.terminate('security test: done');
    outcomes.push('self-approval, stale version, reason-less rejection: ignored with the reason');
  });

  it('ignore a replayed decision and a contrary one after the plan was decided', async () => {
    const handle = await deleteVm(1);
    await waitForStatus(handle, (s) => s.phase === 'awaiting-approval');
    await handle.executeUpdate(approveUpdate, {
      args: [signed(handle.workflowId, 'approved', { by: 'bob', planVersion: 1 })],
    });
    const replays = await Promise.allSettled([
      handle.signal(approveSignal, signed(handle.workflowId, 'approved', { by: 'bob', planVersion: 1 })),
      handle.signal(
        rejectSignal,
        signed(handle.workflowId, 'rejected', { by: 'carol', planVersion: 1, reason: 'too late' }),
      ),
    ]);
    const outcome = await outcomeOf(handle);
    expect(outcome).toMatchObject({
      state: 'completed',
      value: { outcome: 'completed', approval: { by: 'bob', decision: 'approved' } },
    });
    // Delivered before the workflow closed: recorded as ignored. After: refused by Temporal.
    for (const r of replays) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(WorkflowNotFoundError);
    expect(cluster.sim.counters.tasks('qmdestroy', vm(1).vmid)).toBe(1);
    outcomes.push(
      `replayed approve and contrary reject after approval: ${replays.filter((r) => r.status === 'fulfilled').length} delivered and ignored`,
    );
  });

  it('refuse any decision on an operation that has ended (approval timed out): nothing is deleted', async () => {
    const handle = await deleteVm(2, { approvalTimeoutMs: 500 });
    expect(await outcomeOf(handle)).toMatchObject({
      state: 'completed',
      value: { outcome: 'rejected', approval: { by: 'system' } },
    });
    await expect(
      handle.signal(approveSignal, signed(handle.workflowId, 'approved', { by: 'bob', planVersion: 1 })),
    ).rejects.toBeInstanceOf(WorkflowNotFoundError);
    expect(exists(2)).toBe(true);
    outcomes.push('late approval after the timeout: refused by Temporal, VM kept');
  });

  it('refuse a decision in another name sent past the API, unsigned or with a forged signature, and audit it', async () => {
    const handle = await deleteVm(3);
    await waitForStatus(handle, (s) => s.phase === 'awaiting-approval');
    await handle.signal(approveSignal, { by: 'mallory', planVersion: 1 });
    const forged = { ...signed(handle.workflowId, 'approved', { by: 'mallory', planVersion: 1 }), by: 'bob' };
    await expect(handle.executeUpdate(approveUpdate, { args: [forged] })).rejects.toMatchObject({
      cause: { message: 'refused: the decision’s signature does not match it' },
    });
    await expect
      .poll(() => ignored(handle))
      .toEqual(['refused: the decision is not signed (decisions are made through the API)']);
    expect((await handle.query(statusQuery)).phase).toBe('awaiting-approval');
    expect(exists(3)).toBe(true);

    const refused = await cluster.deps.audit.read({
      operationId: handle.workflowId,
      action: 'operation.approval-refused',
    });
    // The signal and the update are handled concurrently: either may be audited first.
    expect(refused.map((r) => [r.actor, r.detail?.why]).sort()).toEqual([
      ['bob', 'the decision’s signature does not match it'],
      ['mallory', 'the decision is not signed (decisions are made through the API)'],
    ]);
    await handle.terminate('security test: done');
    outcomes.push('unsigned signal and forged update in another name: refused, audited, VM kept');
  });
});

describe('random input over HTTP, on the real Temporal server', () => {
  it('answers every request without a 5xx, and keeps serving', { timeout: 120_000 }, async () => {
    const seed = suiteSeed() + 1;
    const fuzzQueue = uniqueTaskQueue('suite-security-fuzz');
    const app = createApp({
      config: cluster.config,
      temporal: {
        client: target.client,
        taskQueue: fuzzQueue,
        uiUrl: 'http://127.0.0.1:8233',
        namespace: inject('temporalNamespace'),
      },
      audit: createAuditLog(cluster.config.audit.path),
      proxmox: createReadOnlyProxmox(cluster.config),
      // No worker polls the fuzz queue: answers that wait for one give up quickly.
      timeouts: { updateMs: 200, queryMs: 200, dryRunMs: 200, readinessMs: 500 },
      log: (line) => (responses[`log ${Object.keys(responses).length}`] = line),
    });
    const server = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
    });
    servers.push(server);
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const document = (await (await fetch(`${base}/openapi.json`)).json()) as OpenApiDocument;
    const request = createFuzzer(random(seed), document, Object.values(cluster.apiTokens));

    const count = 400;
    const failures: string[] = [];
    for (let i = 0; i < count; i++) {
      const r = request();
      // A keep-alive connection the server closed as the client reused it fails on the client
      // (undici's UND_ERR_SOCKET) before the API saw the request: that one is sent again.
      const send = () =>
        fetch(`${base}${r.path}`, {
          method: r.method,
          headers: r.headers,
          ...(r.body !== undefined ? { body: r.body } : {}),
        });
      try {
        const response = await send().catch((err: { cause?: { code?: string } }) =>
          err.cause?.code === 'UND_ERR_SOCKET' ? send() : Promise.reject(err),
        );
        const text = await response.text();
        responses[`#${i}`] = text;
        const problems = problemsWith(r.method, response.status, response.headers.get('content-type'), text);
        if (problems.length)
          failures.push(`#${i} ${r.method} ${r.path.slice(0, 100)} -> ${problems.join(', ')}: ${text.slice(0, 200)}`);
      } catch (err) {
        failures.push(`#${i} ${r.method} ${r.path.slice(0, 100)}: ${(err as Error).message}`);
      }
    }
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    // Whatever the fuzzer managed to start waits for a worker that never comes: end it.
    for await (const info of target.client.workflow.list({
      query: `TaskQueue = '${fuzzQueue}' AND ExecutionStatus = 'Running'`,
    })) {
      await target.client.workflow.getHandle(info.workflowId).terminate('fuzz run over');
    }
    record({
      section: 'security',
      name: 'API fuzz (HTTP, real Temporal)',
      value: failures.length,
      unit: `failures in ${count} requests`,
      note: `seed ${seed}`,
    });
    expect(failures).toEqual([]);
  });
});

describe('secrets', () => {
  it('appear in none of this file’s histories, API answers or logs', async () => {
    const known = [...cluster.secrets, ...(await fixtureSecrets())];
    const scan = combine(
      await scanHistories(target.client, `TaskQueue STARTS_WITH 'suite-security'`, known),
      scanTexts(responses, known),
      await scanFiles(cluster.logFiles, known),
    );
    record({
      section: 'secrets',
      name: 'security histories, API answers, logs',
      value: scan.leaks.length,
      unit: 'hits',
      note: `${scan.workflows} histories, ${scan.texts} API answers and log lines, ${scan.files} files; ${known.length} secrets and key shapes`,
    });
    expect(scan.leaks).toEqual([]);
  });
});
