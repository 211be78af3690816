/**
 * Container maintenance (002's "update all containers") on a real Temporal dev server and the
 * simulator: snapshot first, apt upgrade inside each running container over SSH to its node,
 * per-container logs and outcomes, rollback of a failed upgrade when asked.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { createLxcPatchActivities } from '../../activities/lxc-patch.js';
import type { AppConfig } from '../../lib/config/schema.js';
import { lxcPatchOperation } from '../../lib/operations/catalog.js';
import { guestSystemsOf, type GuestSystems } from '../../sim/guest-ssh.js';
import type { ContainerPatchResult } from '../../workflows/lxc-patch.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { startTestWorker, type TestWorker } from '../support/temporal.js';
import { failureOf, meta, startOperation } from './lifecycle-helpers.js';

let env: SimulatedEnvironment;
let worker: TestWorker;
let guests: GuestSystems | undefined;

beforeAll(async () => {
  env = await startSimulatedEnvironment({ speed: 400 });
  worker = await startTestWorker({ activities: createActivities(env.deps) });
  try {
    guests = guestSystemsOf(env.sim.cluster);
  } catch {
    guests = undefined;
  }
});
afterAll(async () => {
  await worker?.shutdown();
  await env?.stop();
});

const NOT_HOOKED =
  "the simulator's node SSH does not route `pct exec` to sim/guest-ssh.ts yet (see the lifecycle report)";
const snapshots = (vmid: number) => [...env.sim.state.guests.get(vmid)!.snapshots.keys()];

describe('patching containers', () => {
  it('rolls back a container whose upgrade fails, when asked, and still patches the others', async (ctx) => {
    if (!guests) return ctx.skip(NOT_HOOKED);
    guests.failUpgrades(2002);
    const handle = await startOperation(worker, 'lxc-patch', { rollbackOnFailure: true });
    const failure = await failureOf(handle);
    expect(failure).toMatchObject({
      type: 'PatchIncomplete',
      message: expect.stringMatching(/^1 of 2 containers not patched: 2002 rolled-back/),
    });
    const results = failure.details![0] as ContainerPatchResult[];
    expect(results.map((r) => [r.vmid, r.outcome])).toEqual([
      [2001, 'patched'],
      [2002, 'rolled-back'],
    ]);
    expect(results[1]!.log!.at(-1)).toMatch(/dpkg was interrupted/);
    expect(env.sim.counters.tasks('vzrollback', 2002)).toBe(1);
    expect(env.sim.state.guests.get(2002)!.status).toBe('running');
    expect(guests.pendingUpgrades(2001)).toEqual([]);
    expect(guests.pendingUpgrades(2002)).not.toEqual([]);
  });

  it('snapshots every running container first, then upgrades it, keeping each one’s log', async (ctx) => {
    if (!guests) return ctx.skip(NOT_HOOKED);
    const handle = await startOperation(worker, 'lxc-patch', { tags: 'infra' });
    const { result, plan } = await handle.result();
    expect(plan.steps.map((s: { id: string }) => s.id)).toEqual([
      '2001/snapshot-before',
      '2001/patch',
      '2002/snapshot-before',
      '2002/patch',
    ]);
    const results = result as ContainerPatchResult[];
    expect(results.map((r) => r.outcome)).toEqual(['patched', 'patched']);
    expect(results[1]!.upgraded).toBe(3);
    expect(results[1]!.log!.join('\n')).toMatch(/Setting up tzdata/);
    for (const vmid of [2001, 2002]) {
      expect(snapshots(vmid).filter((s) => s.startsWith('pm_pre_patch_')).length).toBeGreaterThanOrEqual(1);
      expect(guests.pendingUpgrades(vmid)).toEqual([]);
    }
  });

  it('leaves a failed container as it is when no rollback was asked for', async (ctx) => {
    if (!guests) return ctx.skip(NOT_HOOKED);
    guests.failUpgrades(2001);
    const failure = await failureOf(await startOperation(worker, 'lxc-patch', { tags: 'dns' }));
    expect((failure.details![0] as ContainerPatchResult[]).map((r) => r.outcome)).toEqual(['failed']);
    expect(env.sim.counters.tasks('vzrollback', 2001)).toBe(0);
  });
});

describe('refusals', () => {
  const plan = (config: AppConfig, body: Record<string, unknown>) =>
    createLxcPatchActivities({ ...env.deps, config }).planLxcPatch({
      ...lxcPatchOperation.body.parse({ environment: 'home', ...body }),
      meta: meta(),
    });

  it('refuses to patch over SSH to a node whose host key is not pinned', async () => {
    const home = env.config.environments['home']!;
    const unpinned: AppConfig = {
      ...env.config,
      environments: {
        home: {
          ...home,
          cluster: { ...home.cluster, nodes: home.cluster.nodes.map(({ ssh_host_key: _, ...n }) => n) },
        },
      },
    };
    await expect(plan(unpinned, {})).rejects.toThrow(/node pve01 has no ssh_host_key pinned, so SSH to it is refused/);
  });

  it('refuses to promise a rollback when policy takes no snapshot first', async () => {
    const home = env.config.environments['home']!;
    const noSnapshots: AppConfig = {
      ...env.config,
      environments: { home: { ...home, policy: { ...home.policy, snapshot_before_change: false } } },
    };
    await expect(plan(noSnapshots, { rollbackOnFailure: true })).rejects.toThrow(
      /rollbackOnFailure: rolling back needs the snapshot taken first/,
    );
  });

  it('refuses when no container matches', async () => {
    await expect(plan(env.config, { tags: 'media' })).rejects.toThrow("no container matches 'media'");
  });
});

describe('containers that are all stopped', () => {
  it('are nothing to do: the operation completes with outcome nothing-to-do, naming each one left alone', async () => {
    const unifi = env.sim.state.guests.get(2002)!;
    unifi.status = 'stopped';
    try {
      const handle = await startOperation(worker, 'lxc-patch', { tags: 'infra & !dns' });
      expect(await handle.result()).toMatchObject({
        outcome: 'nothing-to-do',
        plan: { steps: [], warnings: ["CT 2002 'unifi' is stopped: only running containers are patched"] },
        result: [],
      });
    } finally {
      unifi.status = 'running';
    }
  });
});
