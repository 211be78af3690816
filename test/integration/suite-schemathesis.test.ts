/**
 * The API's contract, checked by a tool nobody here wrote: Schemathesis (PyPI, from the
 * project-local venv) reads `/openapi.json` and sends what the document allows and what it
 * forbids, once per role, with every check it has (`--checks all`: server errors, status codes,
 * content types, headers and bodies against the document, valid input accepted, invalid input
 * rejected, methods a path does not have, authentication really required, ...).
 *
 * It runs against the API on the test Temporal server and the simulator. No worker polls the
 * API's task queue, so an operation it starts is recorded and waits — nothing is applied, long
 * or destructive — and is terminated when the run ends; answers that need a worker (status
 * queries, dry-run plans, approvals) give up after 200 ms, as they do when no worker runs.
 * The seed and the example budget are fixed, so a failure reproduces with the same command.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { serve, type ServerType } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../api/app.js';
import { createReadOnlyProxmox } from '../../api/proxmox.js';
import { createAuditLog } from '../../lib/audit/log.js';
import { startSuiteCluster, type SuiteCluster } from '../../testkit/stack/cluster.js';
import { record } from '../support/suite/report.js';
import { fleet } from '../../testkit/stack/scenarios.js';
import { testConnection, uniqueTaskQueue } from '../support/temporal.js';

const run = promisify(execFile);
const SEED = 20251122;
const ROLES = ['viewer', 'operator', 'approver', 'admin'] as const;
/**
 * The budget: every role gets the fuzzing phase (5 generated cases per API operation, valid
 * and invalid); admin, whom every handler answers, also gets the coverage phase (boundary
 * values, missing and wrong-typed fields, every documented enum value: about 3,000 requests).
 * About 15 s per role and 90 s for admin's coverage on two cores.
 */
const PHASES: Record<(typeof ROLES)[number], string> = {
  viewer: 'fuzzing',
  operator: 'fuzzing',
  approver: 'fuzzing',
  admin: 'coverage,fuzzing',
};
const MAX_EXAMPLES = 5;
const hooks = fileURLToPath(new URL('../support/suite/', import.meta.url));

let cluster: SuiteCluster;
let server: ServerType;
let base: string;
const taskQueue = uniqueTaskQueue('suite-schemathesis');

beforeAll(async () => {
  cluster = await startSuiteCluster({
    scenario: fleet({ nodes: 2, perNode: 3 }),
    speed: 50,
    actors: ROLES.map((role) => ({ actor: `st-${role}`, roles: [role] })),
    temporal: { address: inject('temporalAddress'), namespace: inject('temporalNamespace'), taskQueue },
  });
  const app = createApp({
    config: cluster.config,
    temporal: {
      client: await testConnection(),
      taskQueue,
      uiUrl: 'http://127.0.0.1:8233',
      namespace: inject('temporalNamespace'),
    },
    audit: createAuditLog(cluster.config.audit.path, { fsync: false }),
    proxmox: createReadOnlyProxmox(cluster.config),
    timeouts: { updateMs: 200, queryMs: 200, dryRunMs: 200, readinessMs: 1000 },
    log: () => undefined,
  });
  server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  const client = await testConnection();
  for await (const info of client.workflow.list({
    query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'`,
  })) {
    await client.workflow.getHandle(info.workflowId).terminate('schemathesis run over');
  }
  await new Promise((r) => server?.close(r));
  await cluster?.stop();
});

interface Summary {
  operations: number;
  cases: number;
  failures: string[];
}

/** One role's run; the JUnit report says which operations failed which check. */
async function schemathesis(role: (typeof ROLES)[number]): Promise<Summary> {
  const { stdout: venvBin } = await run('bash', ['scripts/python-venv.sh']);
  const junitPath = join(cluster.dir, `schemathesis-${role}.xml`);
  const args = [
    'run',
    `${base}/openapi.json`,
    '--checks',
    'all',
    '--seed',
    String(SEED),
    '--max-examples',
    String(MAX_EXAMPLES),
    '--phases',
    PHASES[role],
    '--workers',
    '1',
    '--header',
    `Authorization: Bearer ${cluster.apiTokens[`st-${role}`]}`,
    '--report',
    'junit',
    '--report-junit-path',
    junitPath,
    '--generation-database',
    'none',
    '--no-color',
  ];
  // The hooks teach it the formats JSON Schema cannot state (tag expressions).
  const env = { ...process.env, PYTHONPATH: hooks, SCHEMATHESIS_HOOKS: 'schemathesis_hooks' };
  const result = await run(join(venvBin.trim(), 'schemathesis'), args, {
    env,
    cwd: cluster.dir,
    maxBuffer: 64 * 1024 * 1024,
  }).then(
    (r) => ({ ...r, code: 0 }),
    (e: { stdout: string; stderr: string; code: number }) => e,
  );
  const junit = await readFile(junitPath, 'utf8');
  const cases = [...junit.matchAll(/<testcase name="([^"]+)"[\s\S]*?(?:<\/testcase>|\/>)/g)];
  const failures = cases
    .filter((c) => /<(failure|error)\b/.test(c[0]))
    .map((c) => `${c[1]}: ${/message="([^"]*)"/.exec(c[0])?.[1] ?? ''}`);
  if (result.code !== 0 && failures.length === 0)
    failures.push(`schemathesis exited ${result.code}: ${result.stdout.slice(-2000)}${result.stderr.slice(-2000)}`);
  const total = /(\d+) generated/.exec(result.stdout)?.[1];
  return { operations: cases.length, cases: Number(total ?? 0), failures };
}

describe('the OpenAPI contract, checked by Schemathesis', () => {
  // The seed and budget fix the work, so the time only follows the CPU it gets: admin's run took
  // 220-247 s with a second copy of the suite beside it. The limit guards against a hang, not speed.
  it.each(ROLES)('holds for a %s token: 0 failures with --checks all', { timeout: 600_000 }, async (role) => {
    const summary = await schemathesis(role);
    record({
      section: 'security',
      name: `Schemathesis --checks all (${role})`,
      value: summary.failures.length,
      unit: `failures in ${summary.operations} API operations`,
      note: `seed ${SEED}; phases ${PHASES[role]}, ${MAX_EXAMPLES} fuzzed cases per operation; ${summary.cases} requests`,
    });
    expect(summary.failures).toEqual([]);
  });
});
