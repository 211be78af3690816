/**
 * A runbook as part of each node's maintenance: planned for every node with the rollout (one
 * approval covers it), run after the node's upgrade as the runbook saga.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { approveWhenPlanned } from '../../testkit/evacuation-run.js';
import { maintenanceInput, maintenanceScenario, startMaintenance } from '../../testkit/maintenance-run.js';
import { startSimulatedEnvironment } from '../../testkit/simulated-env.js';
import { SIMULATED_POLLING, startEnvironmentWorker } from '../support/worker.js';

const NODE_CHECK = `---
name: node-check
description: Checks a node after its upgrade
image_type: none
requires: [ssh]
parameters:
  node: { type: node, required: true, description: The node to check }
steps:
  - id: version
    description: Read the installed PVE version
    ssh: { node: '{{node}}', command: pveversion }
    expect: { output: 'pve-manager/(?<installed>[0-9.]+)/' }
  - id: note
    description: Say what runs there
    ssh: { node: '{{node}}', command: 'echo {{node}} runs {{installed}}' }
---

# Node check

1. Read the installed PVE version.
2. Say what runs there.
`;

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

describe('a runbook on each node', () => {
  it('is planned per node with the rollout and runs after each upgrade', async () => {
    const runbooksDir = await mkdtemp(join(tmpdir(), 'pm-runbooks-'));
    cleanup.push(() => rm(runbooksDir, { recursive: true, force: true }));
    await writeFile(join(runbooksDir, 'node-check.md'), NODE_CHECK);
    const env = await startSimulatedEnvironment({
      scenario: maintenanceScenario({ rebootSeconds: 60 }),
      speed: 100,
      environment: 'maint-runbook',
    });
    cleanup.push(() => env.stop());
    const worker = await startEnvironmentWorker(env.deps, { tuning: { ...SIMULATED_POLLING, runbooksDir } });
    cleanup.push(() => worker.shutdown());

    const input = maintenanceInput({
      environment: env.environment,
      nodes: ['pve01', 'pve02'],
      runbook: { name: 'node-check', parameters: {} },
    });
    const handle = await startMaintenance(worker.client, worker.taskQueue, input);
    const planned = await approveWhenPlanned(handle);
    expect(planned.plan!.steps.filter((s) => s.action === 'runbook').map((s) => [s.id, s.description])).toEqual([
      ['pve01/runbook', 'run runbook node-check on pve01: version, note (cleaning up if a step fails)'],
      ['pve02/runbook', 'run runbook node-check on pve02: version, note (cleaning up if a step fails)'],
    ]);
    const { result } = await handle.result();

    expect(result?.outcome).toBe('completed');
    for (const report of result!.nodes) {
      expect(report.runbook).toMatchObject({
        name: 'node-check',
        steps: [
          { id: 'version', state: 'succeeded' },
          { id: 'note', state: 'succeeded' },
        ],
      });
      expect(report.steps.map((s) => s.id)).toEqual([
        'check',
        'evacuate',
        'upgrade',
        'runbook',
        'reboot',
        'return',
        'verify',
      ]);
      expect(env.sim.counters.sshCommands(report.node, 'echo')).toBe(1);
    }
    expect(env.sim.counters.sshCommands('pve03')).toBe(0);
  });
});
