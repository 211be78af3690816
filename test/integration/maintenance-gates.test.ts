/**
 * Per-node approval gates: with `approveEachNode`, each node waits for a person's go-ahead,
 * validated like the plan's approval, and visible as a pending approval in Temporal.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { approveWhenPlanned } from '../../testkit/evacuation-run.js';
import {
  maintenanceInput,
  maintenanceScenario,
  startMaintenance,
  waitForMaintenance,
} from '../../testkit/maintenance-run.js';
import {
  approveNodeUpdate,
  rejectNodeUpdate,
  type NodeApprovalRequest,
} from '../../workflows/maintenance-definitions.js';
import { PmApprovalState } from '../../workflows/search-attributes.js';
import { startSimulatedEnvironment } from '../../testkit/simulated-env.js';
import { SIMULATED_POLLING, startEnvironmentWorker } from '../support/worker.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

describe('per-node approval', () => {
  it('waits for a second person before each node, and stops when one is rejected', async () => {
    const env = await startSimulatedEnvironment({
      scenario: maintenanceScenario({ rebootSeconds: 60 }),
      speed: 100,
      environment: 'maint-gates',
    });
    cleanup.push(() => env.stop());
    const worker = await startEnvironmentWorker(env.deps, { tuning: SIMULATED_POLLING });
    cleanup.push(() => worker.shutdown());
    const sim = env.sim;

    const handle = await startMaintenance(
      worker.client,
      worker.taskQueue,
      maintenanceInput({ environment: env.environment, approveEachNode: true }, 'otto'),
    );
    const planned = await approveWhenPlanned(handle, 'anna');
    const [first, second, third] = planned.plan!.nodes as [string, string, string];
    const planVersion = planned.plan!.version;

    const gated = await waitForMaintenance(handle, (p) => p.state === 'awaiting-node-approval');
    expect(gated.gate).toMatchObject({ node: first, planVersion });
    expect((await handle.describe()).typedSearchAttributes.get(PmApprovalState)).toBe('pending');
    expect(sim.counters.tasks('qmigrate')).toBe(0);

    /** The reason an approval is refused (undefined when it is taken). */
    const refused = (request: NodeApprovalRequest, update = approveNodeUpdate) =>
      handle.executeUpdate(update, { args: [request] }).then(
        () => undefined,
        (err: { cause?: { message?: string } }) => err.cause?.message,
      );
    expect(await refused({ by: 'otto', node: first, planVersion })).toBe(
      'a high-risk operation cannot be approved by the actor who requested it',
    );
    expect(await refused({ by: 'anna', node: second, planVersion })).toBe(
      `names ${second}, but the node waiting for approval is ${first}`,
    );
    expect(await refused({ by: 'anna', node: first, planVersion: planVersion + 1 })).toBe(
      `names plan version ${planVersion + 1}, but the approved plan is version ${planVersion}`,
    );
    await handle.executeUpdate(approveNodeUpdate, { args: [{ by: 'anna', node: first, planVersion }] });

    await waitForMaintenance(handle, (p) => p.gate?.node === second);
    expect(await refused({ by: 'anna', node: second, planVersion }, rejectNodeUpdate)).toBe(
      'a rejection needs a reason',
    );
    await handle.executeUpdate(rejectNodeUpdate, {
      args: [{ by: 'anna', node: second, planVersion, reason: 'change freeze from 18:00' }],
    });
    const { result } = await handle.result();

    expect(result?.outcome).toBe('stopped');
    expect(result?.stoppedBecause).toBe(`${second} was not approved by anna: change freeze from 18:00`);
    expect(result?.nodes.map((n) => [n.node, n.state])).toEqual([
      [first, 'maintained'],
      [second, 'not-started'],
      [third, 'not-started'],
    ]);
    expect([second, third].map((n) => sim.counters.sshCommands(n))).toEqual([0, 0]);
    const trail = (await env.deps.audit.read({ operationId: handle.workflowId })).map((r) => `${r.actor} ${r.action}`);
    expect(trail).toEqual([
      'anna operation.approved',
      'anna operation.node-approved',
      'anna operation.node-rejected',
      'otto operation.completed',
    ]);
  });
});
