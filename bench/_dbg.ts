import { startSimulatedEnvironment } from '../test/support/simulated-env.js';
import { readClusterSnapshot } from '../activities/inventory-snapshot.js';
import { planEvacuation } from '../lib/planning/evacuation.js';
import { benchScenarios } from './scenarios.js';
const [s] = await benchScenarios();
const env = await startSimulatedEnvironment({ scenario: s!.scenario, speed: 40 });
try {
  const client = await env.deps.pve(env.environment);
  const snap = await readClusterSnapshot(client, { detailsFor: ['pve01'] });
  const plan = planEvacuation(snap, { node: 'pve01', maxParallel: 4, maxParallelPerTarget: 2, includeStopped: true, includeTemplates: false, localDisks: 'migrate', containers: 'restart', containerShutdownTimeoutSeconds: 180, onFailure: 'stop', haMaintenance: false, linkGbps: 10 }, { memory_headroom: 0.2, cpu_oversubscription: 4 });
  console.log(plan.moves.map(m => [m.vmid, m.name, m.target, m.mode, m.transferBytes/2**30]), plan.leftBehind);
} catch (e) { console.error('ERR', e); } finally { await env.stop(); }
