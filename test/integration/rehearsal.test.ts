/**
 * Rehearsal on your own inventory, end to end: a cluster/resources dump of a cluster the
 * project has never seen becomes a simulated copy, an evacuation is planned against it through
 * Temporal, and the copy's own inventory, read as `--from-env` reads an environment, imports
 * back to the same disks.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evacuationInput, startEvacuation } from '../../testkit/evacuation-run.js';
import type { EvacuationPlan } from '../../lib/planning/evacuation.js';
import { readRehearsalInventory } from '../../lib/rehearsal.js';
import { importInventory, loadScenarioSource, type ImportedScenario } from '../../sim/scenario-import.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { type TestWorker } from '../support/temporal.js';
import { SIMULATED_POLLING, startEnvironmentWorker } from '../support/worker.js';

const dumpPath = fileURLToPath(new URL('../fixtures/rehearsal/cluster-resources.json', import.meta.url));

describe('rehearsing on an imported cluster/resources dump', () => {
  let imported: ImportedScenario;
  let env: SimulatedEnvironment;
  let worker: TestWorker;

  beforeAll(async () => {
    imported = await loadScenarioSource(dumpPath);
    env = await startSimulatedEnvironment({ scenario: imported.scenario, speed: 20 });
    worker = await startEnvironmentWorker(env.deps, { tuning: SIMULATED_POLLING });
  });
  afterAll(async () => {
    await worker?.shutdown();
    await env?.stop();
  });

  it("plans an evacuation of one of its nodes, accounting for every guest there, with each target's committed and used memory", async () => {
    const input = evacuationInput({ environment: env.environment, node: 'hv-a1', containers: 'restart', dryRun: true });
    const { outcome, plan } = await (await startEvacuation(worker.client, worker.taskQueue, input)).result();
    const details = plan.details as EvacuationPlan;

    expect(outcome).toBe('dry-run');
    const onNode = imported.scenario.guests.filter((g) => g.node === 'hv-a1').map((g) => g.vmid);
    expect([...details.moves.map((m) => m.vmid), ...details.leftBehind.map((l) => l.vmid)].sort()).toEqual(
      onNode.sort(),
    );
    expect(details.moves.length).toBeGreaterThan(0);
    expect(new Set(details.moves.map((m) => m.target))).not.toContain('hv-a1');
    // The templates stay (includeTemplates is off): what the request itself leaves.
    expect(details.leftBehind.find((l) => l.vmid === 9000)).toMatchObject({ covered: false });
    for (const t of details.targets) {
      const running = imported.scenario.guests.filter((g) => g.node === t.node && g.status === 'running');
      expect([t.node, t.memoryCommittedBefore]).toEqual([
        t.node,
        running.reduce((sum, g) => sum + g.memory * 1024 ** 2, 0),
      ]);
      expect(t.memoryUsedBefore).toBeGreaterThan(0);
      expect(t.memoryAfter).toBeLessThanOrEqual(t.memoryLimit);
    }
  });

  it('reports the memory each guest was measured to use in the dump', async () => {
    const client = await env.deps.pve(env.environment);
    const simulated = new Map((await client.cluster.resources({ type: 'vm' })).map((r) => [r.vmid, r.mem]));
    const dump = JSON.parse(readFileSync(dumpPath, 'utf8')) as { vmid?: number; mem?: number; status?: string }[];
    const running = dump.filter((r) => r.status === 'running');
    expect(running.length).toBeGreaterThan(0);
    // Within a MiB: the simulator keeps the measured share of the configured memory.
    for (const r of running)
      expect([r.vmid, Math.abs(simulated.get(r.vmid)! - r.mem!) <= 1024 ** 2]).toEqual([r.vmid, true]);
  });

  it('reads an environment as --from-env does, and imports it back with every disk where its config says', async () => {
    const client = await env.deps.pve(env.environment);
    const inventory = await readRehearsalInventory(client);
    const again = importInventory(inventory);

    expect(Object.keys(inventory.configs ?? {})).toHaveLength(imported.scenario.guests.length);
    for (const g of imported.scenario.guests) {
      const copy = again.scenario.guests.find((x) => x.vmid === g.vmid)!;
      expect([g.vmid, copy.disks.map((d) => d.storage)]).toEqual([g.vmid, g.disks.map((d) => d.storage)]);
    }
    expect(again.guesses.join('\n')).not.toMatch(/without their config|put on one storage/);
  });
});
