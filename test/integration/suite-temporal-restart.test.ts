/**
 * Temporal itself goes away in the middle of a long operation and comes back: its own dev
 * server here (not the run's shared one), keeping history in a SQLite file, stopped while an
 * evacuation is migrating and started again on the same port and file. The worker (the real
 * `worker/main.ts`) keeps running throughout; the evacuation must carry on where it was and
 * move every guest exactly once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EvacuationPlan } from '../../lib/planning/evacuation.js';
import { ensureTemporalCli } from '../../scripts/temporal-cli.js';
import { freePort, startDevServer, type DevServer } from '../../scripts/temporal-server.js';
import { startSuiteCluster, type SuiteCluster } from '../../testkit/stack/cluster.js';
import { approveWhenPlanned, completedValue, outcomeOf, startOperation } from '../support/suite/operations.js';
import { spawnWorker, type ChildService } from '../../testkit/stack/processes.js';
import { record } from '../support/suite/report.js';
import { fleet } from '../../testkit/stack/scenarios.js';
import { combine, scanFiles, scanHistories } from '../../testkit/stack/secrets.js';

let dir: string;
let cli: string;
let port: number;
let dbFilename: string;
let server: DevServer | undefined;
let connection: Connection | undefined;
let client: Client;
let cluster: SuiteCluster;
let worker: ChildService | undefined;

const taskQueue = 'suite-temporal-restart';
/** 16 GiB guests at 4 simulated seconds per second: each migration takes a few wall seconds. */
const scenario = fleet({ nodes: 3, perNode: 8, memory: 16_384 });

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pm-suite-temporal-'));
  cli = (await ensureTemporalCli()).path;
  port = await freePort();
  dbFilename = join(dir, 'temporal.sqlite');
  server = await startDevServer({ cli, port, dbFilename });
  connection = await Connection.connect({ address: server.address });
  client = new Client({ connection, namespace: server.namespace });
  cluster = await startSuiteCluster({
    scenario,
    speed: 4,
    temporal: { address: server.address, namespace: server.namespace, taskQueue },
  });
  worker = await spawnWorker(cluster);
});

afterAll(async () => {
  await worker?.stop();
  if (cluster && server) {
    const scan = combine(
      await scanHistories(client, '', cluster.secrets),
      await scanFiles(cluster.logFiles, cluster.secrets),
    );
    record({
      section: 'secrets',
      name: 'Temporal-restart histories and logs',
      value: scan.leaks.length,
      unit: 'hits',
      note: `${scan.workflows} histories, ${scan.events} events, ${scan.files} files`,
    });
    expect(scan.leaks).toEqual([]);
  }
  await connection?.close();
  await server?.stop();
  await cluster?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('the Temporal server stopped and started again during an evacuation', () => {
  it('resumes from its database and moves every guest exactly once', { timeout: 6 * 60_000 }, async () => {
    const began = Date.now();
    const handle = await startOperation({ client, taskQueue }, 'evacuation', { node: 'pve1', maxParallel: 2 });
    const planned = await approveWhenPlanned(handle, 'bob');
    const plan = planned.plan!.details as EvacuationPlan;
    expect(plan.moves.length).toBeGreaterThanOrEqual(6);

    const migrations = () => cluster.sim.cluster.tasks.all().filter((t) => t.type === 'qmigrate');
    await expect
      .poll(
        () =>
          migrations().filter((t) => t.status === 'stopped').length >= 1 &&
          migrations().some((t) => t.status === 'running'),
        {
          timeout: 120_000,
          interval: 50,
        },
      )
      .toBe(true);
    const doneBefore = migrations().filter((t) => t.status === 'stopped').length;

    const stoppedAt = Date.now();
    await server!.stop();
    // Migrations keep running in PVE while Temporal is gone; the worker keeps following them.
    await new Promise((r) => setTimeout(r, 5_000));
    server = await startDevServer({ cli, port, dbFilename });
    const downMs = Date.now() - stoppedAt;

    const outcome = await outcomeOf(handle);
    const result = completedValue<{ result: { outcome: string; guests: { vmid: number; state: string }[] } }>(
      outcome,
    ).result;
    expect(result.outcome).toBe('evacuated');
    for (const move of plan.moves) {
      expect([move.vmid, cluster.sim.state.guests.get(move.vmid)!.node]).toEqual([move.vmid, move.target]);
      expect([
        move.vmid,
        cluster.sim.counters.tasks('qmigrate', move.vmid),
        cluster.sim.counters.calls('qemuMigrate', move.vmid),
      ]).toEqual([move.vmid, 1, 1]);
    }
    expect(worker!.process.exitCode).toBeNull();

    record({
      section: 'faults',
      name: 'Temporal server restart (SQLite file kept)',
      value: 'evacuation resumed and completed',
      note: `down ${(downMs / 1000).toFixed(1)} s after ${doneBefore} of ${plan.moves.length} migrations; ${plan.moves.length} guests moved once each; ${Math.round((Date.now() - began) / 1000)} s in all; the worker process stayed up`,
    });
  });
});
