/**
 * cluster-up and cluster-down end to end: HTTP -> API -> a real Temporal dev server -> worker
 * -> the simulated homelab (Talos template 101) and the talosctl stand-in.
 */
import { signed } from '../../testkit/approvals.js';
import { ApplicationFailure } from '@temporalio/activity';
import type { WorkflowHandle } from '@temporalio/client';
import { serve, type ServerType } from '@hono/node-server';
import { mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { createApp } from '../../api/app.js';
import { tokenHash } from '../../api/auth.js';
import { createReadOnlyProxmox } from '../../api/proxmox.js';
import type { ClusterVmActivityOptions } from '../../activities/cluster-vms.js';
import { createTalosActivities } from '../../activities/talos.js';
import {
  clusterDownOperation,
  clusterUpOperation,
  type ClusterDownInput,
  type ClusterUpInput,
} from '../../lib/operations/catalog.js';
import type { OperationMeta, OperationStatus } from '../../lib/operations/plan.js';
import { approveUpdate, statusQuery } from '../../workflows/definitions.js';
import type { ClusterUpResult } from '../../workflows/cluster-up.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import type { TestWorker } from '../support/temporal.js';
import { SIMULATED_POLLING, startEnvironmentWorker } from '../support/worker.js';
import { cancelWhen, stepRunning } from './lifecycle-helpers.js';

/** sim/bin/talosctl, bundled once for the run (test/talosctl-setup.ts). */
const standin = inject('talosctlStandin');
const repoClusters = fileURLToPath(new URL('../../clusters/', import.meta.url));

let env: SimulatedEnvironment;
let worker: TestWorker;
let server: ServerType;
let apiBase: string;
let clustersDir: string;
let talosState: string;

const tokens = { otto: 'it-clusters-otto-7c1e', anna: 'it-clusters-anna-02f9' };

/** The API as an operator (otto) or an approver (anna) calls it. */
async function api(
  method: string,
  path: string,
  actor: keyof typeof tokens,
  body?: unknown,
): Promise<{ status: number; text: string; body: any }> {
  const response = await fetch(`${apiBase}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${tokens[actor]}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await response.text();
  return { status: response.status, text, body: JSON.parse(text) };
}

/** The operation with its whole plan (from the workflow's status query). */
const withPlan = async (self: string): Promise<any> => (await api('GET', `${self}?include=plan`, 'otto')).body;

async function apiUntil(self: string, done: (op: any) => boolean): Promise<any> {
  for (let i = 0; i < 1200; i++) {
    const { body } = await api('GET', self, 'otto');
    if (done(body)) return body;
    if (body.state === 'failed') throw new Error(`operation failed: ${JSON.stringify(body.status?.error ?? body)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${self} never got there`);
}

/** The stand-in as talosctl and a profiles directory of the test's own. */
function clusterOptions(): ClusterVmActivityOptions {
  // The stand-in finds each node among the simulator's running VMs, as talosctl would reach it.
  const node = env.sim.nodes[0]!;
  const simulator = JSON.stringify({
    host: node.host,
    port: node.port,
    fingerprint: node.tlsFingerprint,
    tokenFile: join(env.dir, 'pve-token'),
  });
  return {
    clustersDir,
    talosctl: { binary: standin, env: { TALOSCTL_STANDIN_STATE: talosState, TALOSCTL_STANDIN_PVE: simulator } },
    polling: SIMULATED_POLLING.taskPolling,
  };
}

beforeAll(async () => {
  env = await startSimulatedEnvironment({
    speed: 100,
    config: {
      temporal: { address: inject('temporalAddress'), namespace: inject('temporalNamespace') },
      api: {
        tokens: [
          { actor: 'otto', sha256: tokenHash(tokens.otto), roles: ['operator', 'approver'] },
          { actor: 'anna', sha256: tokenHash(tokens.anna), roles: ['approver'] },
        ],
      },
    },
  });
  clustersDir = join(env.dir, 'clusters');
  talosState = join(env.dir, 'talos');
  await mkdir(clustersDir);
  await writeFile(join(clustersDir, 'lab.yaml'), await readFile(join(repoClusters, 'lab.yaml')));
  const small = (name: string, workers: number) => ({
    name,
    environment: 'home',
    template: { vmid: 101, name: 'tpl-talos-1-11' },
    control_plane: { count: 1, cores: 2, memory_mb: 2048, disk_gb: 10 },
    workers: { count: workers, cores: 2, memory_mb: 2048, disk_gb: 10 },
    talos: { version: 'v1.11.3' },
  });
  await writeFile(join(clustersDir, 'solo.yaml'), stringify(small('solo', 0)));
  await writeFile(join(clustersDir, 'half.yaml'), stringify(small('half', 2)));
  worker = await startEnvironmentWorker(env.deps, { clusters: clusterOptions() });
  const app = createApp({
    config: env.config,
    temporal: {
      client: worker.client,
      taskQueue: worker.taskQueue,
      uiUrl: 'http://127.0.0.1:8233',
      namespace: inject('temporalNamespace'),
    },
    audit: env.deps.audit,
    proxmox: createReadOnlyProxmox(env.config),
  });
  server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  apiBase = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.close();
  await worker?.shutdown();
  await env?.stop();
});

const meta = (): OperationMeta => ({
  requester: 'alice',
  environment: 'home',
  dryRun: false,
  approvalTimeoutMs: 60_000,
  autoApprove: ['low'],
});
let seq = 0;

function startUp(profile: string, w: TestWorker = worker, maxParallel?: number): Promise<WorkflowHandle> {
  const body = clusterUpOperation.body.parse({ environment: 'home', profile, ...(maxParallel ? { maxParallel } : {}) });
  const input: ClusterUpInput = { ...body, meta: meta() };
  return w.client.workflow.start('clusterUp', {
    taskQueue: w.taskQueue,
    workflowId: clusterUpOperation.workflowId(body, `T${Date.now()}-${seq++}`),
    args: [input],
  });
}

function startDown(cluster: string): Promise<WorkflowHandle> {
  const body = clusterDownOperation.body.parse({ environment: 'home', cluster, shutdownTimeoutSeconds: 30 });
  const input: ClusterDownInput = { ...body, meta: meta() };
  return worker.client.workflow.start('clusterDown', {
    taskQueue: worker.taskQueue,
    workflowId: clusterDownOperation.workflowId(body, `T${Date.now()}-${seq++}`),
    args: [input],
  });
}

async function waitFor(handle: WorkflowHandle, done: (s: OperationStatus) => boolean): Promise<OperationStatus> {
  for (let i = 0; i < 1200; i++) {
    try {
      const status = await handle.query(statusQuery);
      if (done(status)) return status;
      if (status.phase === 'failed') throw new Error(`operation failed: ${status.error}`);
    } catch (err) {
      if (err instanceof Error && err.message.startsWith('operation failed')) throw err;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the operation never got there');
}

async function approve(handle: WorkflowHandle): Promise<OperationStatus> {
  const status = await waitFor(handle, (s) => s.phase === 'awaiting-approval');
  await handle.executeUpdate(approveUpdate, {
    args: [signed(handle.workflowId, 'approved', { by: 'bob', planVersion: status.plan!.version })],
  });
  return status;
}

function guestsTagged(tag: string) {
  return [...env.sim.state.guests.values()].filter((g) => (g.config['tags'] ?? '').split(';').includes(tag));
}

/** Every text in a workflow's history, payloads decoded: what anyone with history access can read. */
async function historyText(handle: WorkflowHandle): Promise<string> {
  const decode = (value: unknown): unknown => {
    if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8');
    if (Array.isArray(value)) return value.map(decode);
    if (value && typeof value === 'object')
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, decode(v)]));
    return value;
  };
  return JSON.stringify(decode(await handle.fetchHistory()));
}

async function bootstrapsRun(): Promise<{ argv: string[]; outcome: string }[]> {
  const text = await readFile(join(talosState, 'log.jsonl'), 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { argv: string[]; outcome: string })
    .filter((e) => e.argv.includes('bootstrap'));
}

describe('the lab profile through the API: 3 control planes + 3 workers', () => {
  let self: string;
  let up: WorkflowHandle;
  let result: ClusterUpResult;
  let detailText: string;

  it('comes up after approval, every VM cloned from the template, configured for Talos and tagged as the cluster’s', async () => {
    const started = await api('POST', '/v1/operations/cluster-up', 'otto', { environment: 'home', profile: 'lab' });
    expect(started.status).toBe(202);
    self = started.body.links.self;
    up = worker.client.workflow.getHandle(started.body.id);
    await apiUntil(self, (op) => op.status?.phase === 'awaiting-approval');
    const { plan } = await withPlan(self);
    expect(plan).toMatchObject({ risk: 'medium' });
    expect(plan.steps.filter((s: { action: string }) => s.action === 'clone')).toHaveLength(6);
    const approved = await api('POST', `${self}/approve`, 'anna', { planVersion: plan.version });
    expect(approved.status).toBe(200);

    const done = await apiUntil(self, (op) => op.state !== 'running');
    expect(done.state).toBe('completed');
    detailText = (await api('GET', self, 'otto')).text;
    result = done.result.result as ClusterUpResult;
    expect(result.nodes.map((n) => n.role)).toEqual([
      'control-plane',
      'control-plane',
      'control-plane',
      'worker',
      'worker',
      'worker',
    ]);
    expect(new Set(result.nodes.filter((n) => n.role === 'control-plane').map((n) => n.node)).size).toBe(3);

    const vms = guestsTagged('cluster-lab');
    expect(vms.map((g) => g.vmid).sort()).toEqual(result.nodes.map((n) => n.vmid).sort());
    for (const vm of vms) {
      const node = result.nodes.find((n) => n.vmid === vm.vmid)!;
      expect(vm.status).toBe('running');
      expect(vm.name).toBe(node.name);
      expect(vm.ip).toBe(node.address);
      expect(vm.config).toMatchObject({
        cores: node.role === 'worker' ? '4' : '2',
        memory: node.role === 'worker' ? '8192' : '4096',
        cpu: 'x86-64-v2-AES',
        hotplug: 'disk,network,usb',
      });
      expect(vm.config['scsi0']).toMatch(node.role === 'worker' ? /size=40G/ : /size=20G/);
      expect(vm.config['net0']).toMatch(/^virtio=BC:24:11:[0-9A-F:]+,bridge=vmbr0/);
    }
  });

  it('cloned in parallel: every clone had started before the first one finished', async () => {
    const { steps } = await up.query(statusQuery);
    const clones = steps.filter((s) => s.id.startsWith('clone:'));
    expect(clones).toHaveLength(6);
    const lastStart = Math.max(...clones.map((s) => Date.parse(s.startedAt!)));
    const firstEnd = Math.min(...clones.map((s) => Date.parse(s.endedAt!)));
    expect(lastStart).toBeLessThan(firstEnd);
  });

  it('bootstrapped etcd exactly once, on the first control plane', async () => {
    expect(result.bootstrap).toMatchObject({ node: result.nodes[0]!.name, outcome: 'bootstrapped' });
    const bootstraps = await bootstrapsRun();
    expect(bootstraps).toHaveLength(1);
    expect(bootstraps[0]).toMatchObject({ outcome: 'ok' });
    expect(bootstraps[0]!.argv).toContain(result.nodes[0]!.address);
  });

  it('wrote the kubeconfig and talosconfig on the worker, readable by the worker alone, and nowhere in history or API answers', async () => {
    const dir = join(env.config.secrets_dir, 'home', 'lab');
    expect(result.kubeconfigPath).toBe(join(dir, 'kubeconfig'));
    expect(result.talosconfigPath).toBe(join(dir, 'talosconfig'));
    expect((await stat(dir)).mode & 0o777).toBe(0o700);
    for (const file of await readdir(dir))
      expect(`${file} ${((await stat(join(dir, file))).mode & 0o777).toString(8)}`).toBe(`${file} 600`);

    const kubeconfig = parse(await readFile(result.kubeconfigPath, 'utf8'));
    const key: string = kubeconfig.users[0].user['client-key-data'];
    const talosconfig = parse(await readFile(result.talosconfigPath, 'utf8'));
    const machine = parse(await readFile(join(dir, 'controlplane.yaml'), 'utf8'));
    const secrets = [
      key,
      kubeconfig.clusters[0].cluster['certificate-authority-data'],
      talosconfig.contexts.lab.key,
      machine.cluster.secret,
      machine.machine.token,
      ...env.secrets,
    ];
    expect(key.length).toBeGreaterThan(100);

    const history = await historyText(up);
    expect(history).toContain(result.kubeconfigPath);
    expect(secrets.filter((s) => history.includes(s))).toEqual([]);
    expect(detailText).toContain(result.kubeconfigPath);
    expect(secrets.filter((s) => detailText.includes(s))).toEqual([]);
  });

  it('resumes instead of duplicating when run again: nothing cloned, nothing bootstrapped a second time', async () => {
    const clonesBefore = env.sim.counters.tasks('qmclone');
    const again = await api('POST', '/v1/operations/cluster-up', 'otto', { environment: 'home', profile: 'lab' });
    await apiUntil(again.body.links.self, (op) => op.status?.phase === 'awaiting-approval');
    const { plan } = await withPlan(again.body.links.self);
    expect(plan.steps.filter((s: { action: string }) => s.action === 'clone')).toEqual([]);
    expect(plan.steps.filter((s: { action: string }) => s.action === 'keep')).toHaveLength(6);
    await api('POST', `${again.body.links.self}/approve`, 'anna', { planVersion: plan.version });
    const done = await apiUntil(again.body.links.self, (op) => op.state !== 'running');
    expect(done.result.result).toMatchObject({ bootstrap: { outcome: 'already-bootstrapped' } });
    expect(env.sim.counters.tasks('qmclone')).toBe(clonesBefore);
    expect(guestsTagged('cluster-lab')).toHaveLength(6);
    expect(await bootstrapsRun()).toHaveLength(1);
  });
});

describe('a lost answer from the bootstrap', () => {
  it('is retried, finds etcd running, and does not bootstrap again', async () => {
    const real = createTalosActivities(env.deps, clusterOptions());
    let attempts = 0;
    const flaky = await startEnvironmentWorker(env.deps, {
      clusters: clusterOptions(),
      overrides: {
        async bootstrapEtcd(args: Parameters<typeof real.bootstrapEtcd>[0]) {
          const outcome = await real.bootstrapEtcd(args);
          // The worker dies after Talos acted, before Temporal heard the answer.
          if (++attempts === 1) throw ApplicationFailure.retryable('worker lost before reporting', 'WorkerLost');
          return outcome;
        },
      },
    });
    try {
      const before = (await bootstrapsRun()).length;
      const up = await startUp('solo', flaky);
      await approve(up);
      const outcome = await up.result();
      expect(attempts).toBe(2);
      expect(outcome.result).toMatchObject({ bootstrap: { outcome: 'already-bootstrapped' } });
      const bootstraps = (await bootstrapsRun()).slice(before);
      expect(bootstraps).toEqual([expect.objectContaining({ outcome: 'ok' })]);
    } finally {
      await flaky.shutdown();
    }
  });
});

describe('a cluster that stopped half-way', () => {
  it('is resumed by the next cluster-up: the VMs already cloned are kept, none is duplicated', async () => {
    const first = await startUp('half');
    await approve(first);
    await waitFor(first, (s) => s.steps.some((step) => step.id.startsWith('configure:') && step.state === 'succeeded'));
    await first.terminate('operator stopped it half-way');
    // Clones it had sent finish (or give up on the template's lock) on their own.
    while (env.sim.cluster.tasks.all().some((t) => t.type === 'qmclone' && t.status === 'running'))
      await new Promise((r) => setTimeout(r, 50));
    const made = guestsTagged('cluster-half').map((g) => g.vmid);
    const cloning = [...env.sim.state.guests.values()].filter((g) => /^auto-half-/.test(g.name)).map((g) => g.vmid);
    expect(made.length).toBeGreaterThan(0);

    const second = await startUp('half');
    const waiting = await approve(second);
    const kept = waiting.plan!.steps.filter((s) => s.action === 'keep').map((s) => s.vmid);
    expect(kept.sort()).toEqual(cloning.sort());
    const outcome = await second.result();
    expect(outcome.outcome).toBe('completed');
    const vms = [...env.sim.state.guests.values()].filter((g) => /^auto-half-/.test(g.name));
    expect(vms).toHaveLength(3);
    expect(guestsTagged('cluster-half')).toHaveLength(3);
  });

  it('cluster-down checks vmid and name before each destroy, and reports what it could not remove', async () => {
    const [renamed, ...rest] = guestsTagged('cluster-half');
    const down = await startDown('half');
    await waitFor(down, (s) => s.phase === 'awaiting-approval');
    renamed!.update((c) => (c['name'] = 'someone-elses-vm'));
    await down.executeUpdate(approveUpdate, {
      args: [signed(down.workflowId, 'approved', { by: 'bob', planVersion: 1 })],
    });
    const failure = await down.result().catch((e: unknown) => e);
    expect(String((failure as Error & { cause?: Error }).cause?.message)).toMatch(
      new RegExp(
        `cluster half is not gone: .*is named 'someone-elses-vm'.*VM ${renamed!.vmid} 'someone-elses-vm' .* still carries cluster-half`,
      ),
    );
    expect(env.sim.state.guests.has(renamed!.vmid)).toBe(true);
    for (const g of rest) expect(env.sim.state.guests.has(g.vmid)).toBe(false);
  });
});

describe('tearing the lab cluster down through the API', () => {
  it('needs a second person, then removes exactly the cluster’s VMs, their disks and its secrets', async () => {
    const lab = guestsTagged('cluster-lab');
    expect(lab).toHaveLength(6);
    const others = [...env.sim.state.guests.keys()].filter((vmid) => !lab.some((g) => g.vmid === vmid));
    const started = await api('POST', '/v1/operations/cluster-down', 'otto', {
      environment: 'home',
      cluster: 'lab',
      shutdownTimeoutSeconds: 30,
    });
    const self = started.body.links.self;
    await apiUntil(self, (op) => op.status?.phase === 'awaiting-approval');
    const { plan } = await withPlan(self);
    expect(plan).toMatchObject({ risk: 'high' });
    expect([...plan.vmids].sort()).toEqual(lab.map((g) => g.vmid).sort());
    const own = await api('POST', `${self}/approve`, 'otto', { planVersion: 1 });
    expect(own.status).toBe(409);
    expect(own.body.message ?? own.text).toMatch(/cannot be approved by the actor who requested it/);
    await api('POST', `${self}/approve`, 'anna', { planVersion: 1 });

    const done = await apiUntil(self, (op) => op.state !== 'running');
    expect(done.state).toBe('completed');
    expect(guestsTagged('cluster-lab')).toEqual([]);
    expect([...env.sim.state.guests.keys()].sort()).toEqual(others.sort());
    await expect(stat(join(env.config.secrets_dir, 'home', 'lab'))).rejects.toThrow(/ENOENT/);
    const volumes = ['pve01', 'pve02', 'pve03']
      .flatMap((node) => env.sim.state.poolsOn(node))
      .flatMap((p) => [...p.volumes.values()]);
    expect(volumes.filter((v) => lab.some((g) => g.vmid === v.vmid))).toEqual([]);
  });

  it('has nothing to do a second time: completed with outcome nothing-to-do, no approval asked', async () => {
    const started = await api('POST', '/v1/operations/cluster-down', 'otto', {
      environment: 'home',
      cluster: 'lab',
      shutdownTimeoutSeconds: 30,
    });
    expect(started.status).toBe(202);
    const done = await apiUntil(started.body.links.self, (op) => op.state !== 'running');
    expect(done).toMatchObject({
      state: 'completed',
      approvalState: 'not-required',
      result: { outcome: 'nothing-to-do', plan: { steps: [] } },
    });
  });
});

describe('a cancelled cluster-up', () => {
  it('clones no further VM, finishes the clones under way, and says which members it did not start', async () => {
    await writeFile(
      join(clustersDir, 'stop.yaml'),
      stringify({
        name: 'stop',
        environment: 'home',
        template: { vmid: 101, name: 'tpl-talos-1-11' },
        control_plane: { count: 1, cores: 2, memory_mb: 2048, disk_gb: 10 },
        workers: { count: 3, cores: 2, memory_mb: 2048, disk_gb: 10 },
        talos: { version: 'v1.11.3' },
      }),
    );
    const handle = await startUp('stop', worker, 1);
    await approve(handle);
    const { status, runningAtCancel, approvalState } = await cancelWhen(handle, stepRunning('clone:'));

    expect(status.phase).toBe('cancelled');
    expect(approvalState).toBe('approved');
    expect(status.steps.filter((s) => s.state === 'running' || s.state === 'failed')).toEqual([]);
    const report = status.cancelled!;
    expect(report.done).toEqual(expect.arrayContaining(runningAtCancel));
    expect(report.notStarted).toEqual(expect.arrayContaining(['machine-configs', 'bootstrap', 'health', 'kubeconfig']));
    // Exactly the VMs whose clone was sent exist; every clone task has ended.
    const cloned = report.done.filter((id) => id.startsWith('clone:')).map((id) => id.slice('clone:'.length));
    const present = [...env.sim.state.guests.values()].filter((g) => /^auto-stop-/.test(g.name)).map((g) => g.name);
    expect(present.sort()).toEqual(cloned.sort());
    expect(report.notStarted.filter((id) => id.startsWith('clone:')).length).toBeGreaterThan(0);
    expect(env.sim.cluster.tasks.all().filter((t) => t.status === 'running')).toEqual([]);
  });
});
