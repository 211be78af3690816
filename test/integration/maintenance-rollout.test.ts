/**
 * Rolling maintenance end to end: HTTP API -> Temporal -> worker -> simulated cluster (HTTPS
 * and SSH). Every node is emptied, upgraded, rebooted and refilled in turn; a failure on the
 * second node halts the rollout in a stated condition, and resuming finishes it without
 * repeating anything that was done.
 */
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { serve, type ServerType } from '@hono/node-server';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { createApp } from '../../api/app.js';
import { tokenHash } from '../../api/auth.js';
import { createReadOnlyProxmox } from '../../api/proxmox.js';
import { approveWhenPlanned } from '../../testkit/evacuation-run.js';
import {
  maintenanceInput,
  maintenanceScenario,
  startMaintenance,
  waitForMaintenance,
} from '../../testkit/maintenance-run.js';
import { createAuditLog } from '../../lib/audit/log.js';
import type { MaintenancePlan } from '../../lib/maintenance/plan.js';
import { loadScenarioFile } from '../../sim/scenario.js';
import type { OperationStatus } from '../../lib/operations/plan.js';
import {
  maintenanceDecisions,
  maintenanceQuery,
  type MaintenanceResult,
} from '../../workflows/maintenance-definitions.js';
import {
  homelabRefusalsScenario,
  homelabScenario,
  startSimulatedEnvironment,
  type SimulatedEnvironment,
} from '../../testkit/simulated-env.js';
import { type TestWorker } from '../support/temporal.js';
import { SIMULATED_POLLING, startEnvironmentWorker } from '../support/worker.js';
import { cancelWhen } from './lifecycle-helpers.js';

const tokens = { otto: 'it-maint-otto-7c1d', anna: 'it-maint-anna-2b9e' };

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

async function simulated(
  environment: string,
  scenario = maintenanceScenario({ rebootSeconds: 60 }),
  speed = 100,
): Promise<SimulatedEnvironment> {
  const env = await startSimulatedEnvironment({
    scenario,
    speed,
    environment,
    config: {
      temporal: { address: inject('temporalAddress'), namespace: inject('temporalNamespace') },
      api: {
        tokens: [
          { actor: 'otto', sha256: tokenHash(tokens.otto), roles: ['operator'] },
          { actor: 'anna', sha256: tokenHash(tokens.anna), roles: ['approver'] },
        ],
      },
      approvals: { timeout: '1h', auto_approve: ['low'] },
    },
  });
  cleanup.push(() => env.stop());
  return env;
}

async function workerFor(env: SimulatedEnvironment): Promise<TestWorker> {
  const worker = await startEnvironmentWorker(env.deps, { tuning: SIMULATED_POLLING });
  cleanup.push(() => worker.shutdown());
  return worker;
}

async function startApi(env: SimulatedEnvironment, worker: TestWorker) {
  const app = createApp({
    config: env.config,
    temporal: {
      client: worker.client,
      taskQueue: worker.taskQueue,
      uiUrl: 'http://127.0.0.1:8233',
      namespace: inject('temporalNamespace'),
    },
    audit: createAuditLog(env.config.audit.path),
    proxmox: createReadOnlyProxmox(env.config),
  });
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  cleanup.push(() => new Promise((r) => server.close(r)));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return async (method: string, path: string, actor: keyof typeof tokens, body?: unknown) => {
    const response = await fetch(`${base}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${tokens[actor]}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    return { status: response.status, body: (await response.json()) as any };
  };
}

async function until<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out; last: ${JSON.stringify(value).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Where every guest is, by vmid. */
function placement(env: SimulatedEnvironment): Map<number, string> {
  return new Map([...env.sim.state.guests.values()].map((g) => [g.vmid, g.node]));
}

const migrations = (env: SimulatedEnvironment, vmid: number) =>
  env.sim.counters.tasks('qmigrate', vmid) + env.sim.counters.tasks('vzmigrate', vmid);

describe('rolling maintenance on the simulator', () => {
  it('updates a three-node cluster node by node from the API, each node rebooted into its new kernel and given its guests back', async () => {
    const env = await simulated('maint-api');
    const worker = await workerFor(env);
    const api = await startApi(env, worker);
    const before = placement(env);
    const sim = env.sim;

    const dryRun = await api('POST', '/v1/operations/rolling-maintenance', 'otto', {
      environment: env.environment,
      dryRun: true,
    });
    expect(dryRun.status).toBe(200);
    const planned = dryRun.body.result.plan;
    expect(planned.risk).toBe('high');
    // Cheapest to empty first (pve03's guests are half the size); equal costs in name order.
    expect(planned.nodes).toEqual(['pve03', 'pve01', 'pve02']);
    expect(planned.warnings).toEqual([
      'VM 260 (pve02-archive) stays on pve02 while it is maintained (stopped): stopped, and includeStopped is off',
    ]);
    // The approver reads which node is emptied while whose guests return.
    expect(planned.reasons).toContainEqual(
      expect.stringMatching(
        /^overlaps: empties pve01 while pve03 get their guests back, pve02 while pve01 get their guests back — /,
      ),
    );

    const started = await api('POST', '/v1/operations/rolling-maintenance', 'otto', { environment: env.environment });
    expect(started.status).toBe(202);
    expect(started.body.id).toBe(`rolling-maintenance/${env.environment}`);
    const self: string = started.body.links.self;

    // One rolling maintenance per environment at a time.
    const second = await api('POST', '/v1/operations/rolling-maintenance', 'otto', {
      environment: env.environment,
      nodes: ['pve01'],
    });
    expect(second.status).toBe(409);

    let op = await until(
      () => api('GET', self, 'otto'),
      (r) => r.body.status?.phase === 'awaiting-approval',
    );
    const planVersion: number = op.body.status.plan.version;
    expect((await api('POST', `${self}/approve`, 'otto', { planVersion })).status).toBe(403);
    expect((await api('POST', `${self}/approve`, 'anna', { planVersion })).status).toBe(200);

    op = await until(
      () => api('GET', self, 'otto'),
      (r) => r.body.state !== 'running',
    );
    expect(op.body.state).toBe('completed');
    const result = op.body.result.result as MaintenanceResult;
    expect(result.outcome).toBe('completed');
    expect(result.nodes.map((n) => [n.node, n.state])).toEqual([
      ['pve03', 'maintained'],
      ['pve01', 'maintained'],
      ['pve02', 'maintained'],
    ]);
    // Each node after the first was emptied while the previous one's guests returned, and
    // rebooted only once that node had finished: never two nodes down at once.
    expect(result.nodes.map((n) => n.overlapped)).toEqual([undefined, ['pve03'], ['pve01']]);
    const at = (node: string, step: string, end: 'startedAt' | 'endedAt') =>
      Date.parse(result.nodes.find((n) => n.node === node)!.steps.find((s) => s.id === step)![end]!);
    for (const [previous, next] of [
      ['pve03', 'pve01'],
      ['pve01', 'pve02'],
    ] as const) {
      expect(at(next, 'check', 'startedAt')).toBeLessThan(at(previous, 'verify', 'endedAt'));
      expect(at(next, 'reboot', 'startedAt')).toBeGreaterThanOrEqual(at(previous, 'verify', 'endedAt'));
    }
    // Every plan step of every node ran, except nothing was skipped.
    const steps = (await api('GET', `${self}?include=plan`, 'otto')).body.steps as OperationStatus['steps'];
    expect(steps.filter((s) => s.state !== 'succeeded')).toEqual([]);

    for (const name of ['pve01', 'pve02', 'pve03']) {
      const node = sim.state.node(name);
      expect([name, node.pveversion, node.kernel]).toEqual([name, '9.1.4', '6.17.4-1-pve']);
      // apt-get update and apt-get dist-upgrade, once each.
      expect([name, sim.counters.sshCommands(name, 'apt-get')]).toEqual([name, 2]);
      expect([name, sim.counters.sshCommands(name, 'reboot')]).toEqual([name, 1]);
      const report = result.nodes.find((n) => n.node === name)!;
      expect(report.upgrade).toMatchObject({
        versionBefore: '9.1.2',
        versionAfter: '9.1.4',
        upgraded: ['pve-manager', 'qemu-server', 'proxmox-kernel-6.17'],
      });
      expect(report.reboot).toMatchObject({
        rebooted: true,
        kernelBefore: '6.17.2-1-pve',
        kernelAfter: '6.17.4-1-pve',
        versionAfter: '9.1.4',
      });
      const log = await readFile(report.upgrade!.logFile, 'utf8');
      expect(log).toContain('Setting up pve-manager (9.1.4) ...');
      expect(log).not.toContain(env.secrets[0]!);
    }
    // Every guest is back where it was; each running one left and came back exactly once.
    expect(placement(env)).toEqual(before);
    for (const g of sim.state.guests.values()) {
      expect([g.vmid, migrations(env, g.vmid)]).toEqual([g.vmid, g.status === 'running' ? 2 : 0]);
      expect([g.vmid, g.status]).toEqual([g.vmid, g.vmid === 260 ? 'stopped' : 'running']);
    }
  });

  it('when cancelled, finishes the step the node is in, starts no other node, and says where every guest is', async () => {
    const env = await simulated('maint-cancel');
    const worker = await workerFor(env);
    const handle = await startMaintenance(
      worker.client,
      worker.taskQueue,
      maintenanceInput({ environment: env.environment }),
    );
    const [first, ...later] = ((await approveWhenPlanned(handle)).plan!.details as MaintenancePlan).turns.map(
      (t) => t.node,
    );
    const migrating = () =>
      env.sim.cluster.tasks
        .all()
        .some((t) => t.status === 'running' && (t.type === 'qmigrate' || t.type === 'vzmigrate'));
    const { status, runningAtCancel, approvalState } = await cancelWhen(handle, migrating);

    expect(status.phase).toBe('cancelled');
    expect(approvalState).toBe('approved');
    expect(runningAtCancel).toEqual([`${first}/evacuate`]);
    expect(status.steps.filter((s) => s.state === 'running')).toEqual([]);
    // The migration under way ran to its end; nothing after the evacuation started, on this node or any other.
    const started = status.steps.filter((s) => s.state !== 'skipped').map((s) => s.id);
    expect(started).toEqual([`${first}/check`, `${first}/evacuate`]);
    expect(status.cancelled!.notStarted).toContain(`${first}/upgrade`);
    const progress = await handle.query(maintenanceQuery);
    expect(progress.nodes.map((n) => [n.node, n.state])).toEqual([
      [first, 'cancelled'],
      ...later.map((n) => [n, 'not-started']),
    ]);
    const where = placement(env);
    for (const g of progress.nodes[0]!.away) expect([g.vmid, where.get(g.vmid)]).toEqual([g.vmid, g.at]);
    expect(progress.nodes[0]!.away.length).toBeGreaterThan(0);
    expect(env.sim.cluster.tasks.all().filter((t) => t.status === 'running')).toEqual([]);
    expect((await worker.client.workflow.getHandle(`${handle.workflowId}/${first}`).describe()).status.name).toBe(
      'COMPLETED',
    );
  });

  it('plans the documented minimal request ({"environment"} only) on the shipped homelab: every node in turn', async () => {
    const env = await simulated('maint-homelab', await loadScenarioFile(homelabScenario), 50);
    const worker = await workerFor(env);
    const api = await startApi(env, worker);

    const dryRun = await api('POST', '/v1/operations/rolling-maintenance', 'otto', {
      environment: env.environment,
      dryRun: true,
    });
    expect(dryRun.status, JSON.stringify(dryRun.body)).toBeLessThan(300);
    const detail = await until(
      () => api('GET', `${dryRun.body.links.self}?include=plan`, 'otto'),
      (r) => r.body.state !== 'running',
    );
    const turns = (detail.body.plan.details as MaintenancePlan).turns.map((t) => t.node);
    expect(turns.sort()).toEqual(['pve01', 'pve02', 'pve03']);
    expect(env.sim.counters.tasks('qmigrate')).toBe(0);
  });

  it('refuses to plan a cluster whose nodes cannot be emptied, saying why', async () => {
    const env = await simulated('maint-homelab-refusals', await loadScenarioFile(homelabRefusalsScenario), 50);
    const worker = await workerFor(env);
    const api = await startApi(env, worker);

    const dryRun = await api('POST', '/v1/operations/rolling-maintenance', 'otto', {
      environment: env.environment,
      dryRun: true,
    });
    expect(dryRun.status).toBe(422);
    const message: string = dryRun.body.error.message;
    expect(message).toMatch(
      /^the plan could not be made: rolling maintenance refused: \(1\) pve03 cannot be emptied: /,
    );
    expect(message).toContain('VM 1024 (homeassistant) running — uses host-bound device usb0, which pins it to pve03');
    expect(message).toContain('(2) pve01 cannot be emptied: VM 1005 (gitlab) running — its local disks have snapshots');
    expect(message).toContain('VM 1006 (media) running — uses host-bound device hostpci0, which pins it to pve01');
    expect(message).toContain(
      '(3) pve02 cannot be emptied: VM 1016 (win-jump) running — local ISO local:iso/virtio-win-0.1.271.iso is attached',
    );
    expect(env.sim.counters.tasks('qmigrate')).toBe(0);
  });

  it('halts on a failure at the second node in a stated condition, and resuming finishes without repeating a node', async () => {
    const env = await simulated('maint-resume');
    const worker = await workerFor(env);
    const sim = env.sim;
    const before = placement(env);

    const handle = await startMaintenance(
      worker.client,
      worker.taskQueue,
      maintenanceInput({ environment: env.environment }),
    );
    const planned = await approveWhenPlanned(handle);
    const [first, second, third] = (planned.plan!.details as MaintenancePlan).turns;
    // A migration off the second node fails (once): the rollout stops there.
    const failing = second!.evacuation.moves.find((m) => m.type === 'qemu')!;
    sim.faults.failTask({ type: 'qmigrate', vmid: failing.vmid, times: 1 });

    // With overlap the first node may still be bringing its guests home when the second halts:
    // its return finishes on its own, and the halt is stated once nothing runs any more.
    const halted = await waitForMaintenance(
      handle,
      (p) => p.state === 'halted' && p.nodes.every((n) => n.state !== 'running'),
    );
    const [done, stopped, waiting] = halted.nodes;
    expect(done).toMatchObject({ node: first!.node, state: 'maintained' });
    expect(stopped).toMatchObject({ node: second!.node, state: 'halted', step: 'evacuate' });
    expect(stopped!.halted!.error).toContain(
      `migration of VM ${failing.vmid} (${failing.name}) to ${failing.target} failed: migration aborted`,
    );
    expect(Object.keys(stopped!.halted!.options)).toEqual(['resume', 'skip-node', 'abort-and-return']);
    expect(waiting).toMatchObject({ node: third!.node, state: 'pending' });
    // The condition is stated: which guests are away from the halted node, and where.
    for (const g of stopped!.away) expect(sim.state.guests.get(g.vmid)!.node).toBe(g.at);
    expect(halted.summary).toMatch(new RegExp(`^HALTED at ${second!.node} \\(evacuate\\): `));
    expect(halted.summary).toContain(`done: ${first!.node}`);
    expect(halted.summary).toContain(`next: ${third!.node}`);
    expect(sim.counters.sshCommands(second!.node, 'apt-get')).toBe(0);
    expect(sim.counters.sshCommands(third!.node, 'apt-get')).toBe(0);

    // Only the halted node takes a decision.
    await expect(
      handle.executeUpdate(maintenanceDecisions['skip-node'].update, { args: [{ by: 'anna', node: third!.node }] }),
    ).rejects.toMatchObject({
      cause: { message: `${third!.node} is not halted (it is pending); only a halted node takes a decision` },
    });
    await handle.executeUpdate(maintenanceDecisions.resume.update, {
      args: [{ by: 'anna', node: second!.node, reason: 'transient' }],
    });
    const { result } = await handle.result();

    expect(result?.outcome).toBe('completed');
    expect(result?.nodes.map((n) => n.state)).toEqual(['maintained', 'maintained', 'maintained']);
    expect(result?.nodes[1]!.decisions).toMatchObject([{ action: 'resume', by: 'anna', node: second!.node }]);
    expect(placement(env)).toEqual(before);
    const trail = (await env.deps.audit.read({ operationId: handle.workflowId })).map((r) => `${r.actor} ${r.action}`);
    expect(trail).toEqual(['approver operation.approved', 'anna operation.resume', 'operator operation.completed']);
    for (const name of [first!.node, second!.node, third!.node]) {
      expect([name, sim.counters.sshCommands(name, 'apt-get'), sim.counters.sshCommands(name, 'reboot')]).toEqual([
        name,
        2,
        1,
      ]);
    }
    for (const g of sim.state.guests.values()) {
      // Out and back once; the failed migration is the one extra task, started again only on resume.
      const expected = g.status !== 'running' ? 0 : g.vmid === failing.vmid ? 3 : 2;
      expect([g.vmid, migrations(env, g.vmid)]).toEqual([g.vmid, expected]);
    }
  });
});
