/**
 * 003's create-stateful-vm on a real Temporal dev server and the simulator: a VM that boots the
 * live Alpine image from the network, is installed to disk over SSH (through its node, both
 * hops pinned), reboots from disk and is checked there — or is removed when a step fails.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { createStatefulVmActivities } from '../../activities/create-stateful-vm.js';
import type { AppConfig } from '../../lib/config/schema.js';
import { statefulVmOperation } from '../../lib/operations/catalog.js';
import { guestSystemsOf, type GuestSystems } from '../../sim/guest-ssh.js';
import { buildWorkerDeps, type WorkerDeps } from '../../worker/deps.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { startTestWorker, type TestWorker } from '../support/temporal.js';
import { approve, failureOf, failureOfType, meta, startOperation, waitForPhase } from './lifecycle-helpers.js';

let env: SimulatedEnvironment;
let deps: WorkerDeps;
let worker: TestWorker;
let guests: GuestSystems | undefined;

beforeAll(async () => {
  env = await startSimulatedEnvironment({ speed: 400 });
  const home = env.config.environments['home']!;
  const config: AppConfig = {
    ...env.config,
    environments: { home: { ...home, pxe: { tftp_server: '10.0.0.191', boot_file: 'pxelinux.0' } } },
  };
  deps = buildWorkerDeps(config);
  worker = await startTestWorker({ activities: createActivities(deps) });
  try {
    guests = guestSystemsOf(env.sim.cluster);
  } catch {
    guests = undefined;
  }
});
afterAll(async () => {
  await worker?.shutdown();
  await (await deps?.pve('home'))?.close();
  await env?.stop();
});

const NOT_HOOKED =
  "the simulator's node SSH does not forward to guests through sim/guest-ssh.ts yet (see the lifecycle report)";

describe('a stateful PXE install', () => {
  it('boots from the network, installs Alpine to disk, and comes back from disk', async (ctx) => {
    if (!guests) return ctx.skip(NOT_HOOKED);
    const handle = await startOperation(worker, 'create-stateful-vm', {
      service: 'alpine',
      packages: ['docker'],
      liveImageHostKey: guests.liveImageHostKey,
      memoryMb: 1024,
      diskGb: 8,
    });
    const { result, plan } = await handle.result();
    expect(plan.steps.map((s: { id: string }) => s.id)).toEqual([
      'create',
      'start',
      'discover-ip',
      'install',
      'boot-from-disk',
      'reboot',
      'verify',
      'cleanup',
    ]);
    const vm = env.sim.state.guests.get(result.vmid)!;
    expect(vm).toMatchObject({ status: 'running', name: `auto-alpine-${result.vmid}` });
    expect(vm.config['boot']).toBe('order=scsi0;net0');
    expect(result.address).toBe(vm.ip);
    const installed = guests.installedOn(result.vmid)!;
    expect([...installed.packages]).toEqual(expect.arrayContaining(['qemu-guest-agent', 'docker']));
    expect(installed.services.has('qemu-guest-agent')).toBe(true);
    expect(installed.files.get('/etc/proxmox-manager-install')).toContain(handle.workflowId);
    expect(result.hostKey).not.toBe(guests.liveImageHostKey);
    const status = await waitForPhase(handle, 'completed');
    expect(status.steps.find((s) => s.id === 'cleanup')).toMatchObject({ state: 'skipped' });
  });

  it('removes the VM when the install fails part-way, and says which step failed', async (ctx) => {
    if (!guests) return ctx.skip(NOT_HOOKED);
    const handle = await startOperation(
      worker,
      'create-stateful-vm',
      { service: 'flaky', liveImageHostKey: guests.liveImageHostKey, diskGb: 8 },
      { autoApprove: ['low'] },
    );
    const vmid = (await waitForPhase(handle, 'awaiting-approval')).plan!.vmids[0]!;
    guests.failInstall(vmid);
    await approve(handle);
    const failure = failureOfType(await failureOf(handle), 'InstallFailed');
    expect(failure.message).toMatch(
      new RegExp(
        `^install failed: .*Failed to create partitions on /dev/sda.*; VM ${vmid} 'auto-flaky-${vmid}' was removed$`,
      ),
    );
    expect(env.sim.state.guests.has(vmid)).toBe(false);
  });

  it('refuses to log in to a live image whose host key is not the pinned one, and keeps the VM when asked', async (ctx) => {
    if (!guests) return ctx.skip(NOT_HOOKED);
    const impostor = 'SHA256:' + 'A'.repeat(43);
    const handle = await startOperation(worker, 'create-stateful-vm', {
      service: 'pinned',
      liveImageHostKey: impostor,
      keepOnFailure: true,
      diskGb: 8,
    });
    const failure = failureOfType(await failureOf(handle), 'InstallFailed');
    expect(failure.message).toMatch(
      /^install failed: refusing SSH to .* host key SHA256:.* does not match the pinned SHA256:A{43}/,
    );
    const vmid = Number(/VM (\d+) '/.exec(failure.message)![1]);
    expect(failure.message).toMatch(/kept for inspection$/);
    expect(env.sim.state.guests.get(vmid)?.status).toBe('running');
    expect(guests.installedOn(vmid)).toBeUndefined();
  });
});

describe('refusals', () => {
  const plan = (config: AppConfig, body: Record<string, unknown>) =>
    createStatefulVmActivities({ ...deps, config }).planStatefulVm({
      ...statefulVmOperation.body.parse({ environment: 'home', service: 'x', ...body }),
      meta: meta(),
    });

  it('refuses an environment without PXE infrastructure', async () => {
    await expect(plan(env.config, { liveImageHostKey: 'SHA256:' + 'B'.repeat(43) })).rejects.toThrow(
      /has no pxe section/,
    );
  });

  it('refuses to install without the live image’s host key to pin', async () => {
    await expect(plan(deps.config, {})).rejects.toThrow(
      /liveImageHostKey: the live image's SSH host key must be pinned/,
    );
  });
});
