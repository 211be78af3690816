/**
 * The shipped least-privilege role against the simulator's permission checks: with exactly
 * that role a template builds; with one privilege taken away the build fails with a 403 that
 * names the privilege and the path, and what it had created is removed.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { ROLE_PRIVILEGES } from '../../lib/rbac.js';
import { downloadChecksum } from '../../sim/downloads.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { startTestWorker, type TestWorker } from '../support/temporal.js';
import { failureOf, startOperation } from './lifecycle-helpers.js';
import { homelabWithShippedRole } from './runbook-helpers.js';

const ubuntuImage = 'https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-amd64.img';
const running: { env: SimulatedEnvironment; worker: TestWorker }[] = [];

afterAll(async () => {
  for (const { env, worker } of running) {
    await worker.shutdown();
    await env.stop();
  }
});

/** A simulated homelab whose worker token holds the shipped role, minus `without`. */
async function clusterWithRole(without?: string) {
  const scenario = homelabWithShippedRole();
  const role = ROLE_PRIVILEGES.filter((p) => p !== without);
  const env = await startSimulatedEnvironment({
    scenario: {
      ...scenario,
      roles: { ...scenario.roles, Restricted: role },
      tokens: [
        { id: 'restricted@pve!pm', secret: 'restricted-secret-1234', acl: [{ path: '/', roles: ['Restricted'] }] },
      ],
    },
    speed: 400,
  });
  const worker = await startTestWorker({ activities: createActivities(env.deps) });
  running.push({ env, worker });
  return { env, worker };
}

const guestsNamed = (env: SimulatedEnvironment, name: string) =>
  [...env.sim.state.guests.values()].filter((g) => g.config['name'] === name);

describe('the shipped role', () => {
  it('is enough to build a template', async () => {
    const { env, worker } = await clusterWithRole();
    const handle = await startOperation(worker, 'template-build', {
      runbook: 'ubuntu-2404-cloudinit',
      parameters: { node: 'pve01', image_sha256: downloadChecksum(ubuntuImage) },
    });
    expect((await handle.result()).result.status).toBe('built');
    expect(guestsNamed(env, 'ubuntu-2404-cloudinit')[0]?.config['template']).toBe('1');
  });

  it('without VM.Config.Disk: the create that allocates the disk is refused with a 403 naming it, nothing is left', async () => {
    const { env, worker } = await clusterWithRole('VM.Config.Disk');
    const handle = await startOperation(worker, 'template-build', {
      runbook: 'ubuntu-2404-cloudinit',
      parameters: { node: 'pve01', image_sha256: downloadChecksum(ubuntuImage) },
    });
    const failure = await failureOf(handle);
    // PVE checks each property a create writes inside the handler: the disk needs VM.Config.Disk.
    expect(failure.message).toMatch(
      /^step create-vm failed: token lacks VM\.Config\.Disk on \/vms\/\d+ \(POST \/nodes\/pve01\/qemu\)\. Nothing needed cleaning up\.$/,
    );
    expect(guestsNamed(env, 'ubuntu-2404-cloudinit')).toEqual([]);
  });

  it('without Sys.Audit: refused while planning, before anything is created', async () => {
    const { env, worker } = await clusterWithRole('Sys.Audit');
    const before = env.sim.state.guests.size;
    const handle = await startOperation(worker, 'template-build', {
      runbook: 'alpine-pxe-gold',
      parameters: { node: 'pve01' },
    });
    const failure = await failureOf(handle);
    expect(failure.message).toContain('token lacks Sys.Audit on /nodes/pve01 (GET /nodes/pve01/status)');
    expect(env.sim.state.guests.size).toBe(before);
  });
});
