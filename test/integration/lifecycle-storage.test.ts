/**
 * Storage content on a real Temporal dev server and the simulator: an ISO brought in by URL
 * with its checksum verified by PVE, and images no guest uses removed — never one a guest,
 * or a guest's snapshot, still names.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { offeredDownloads } from '../../sim/downloads.js';
import { loadScenarioFile } from '../../sim/scenario.js';
import type { StoragePool } from '../../sim/state.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { startTestWorker, type TestWorker } from '../support/temporal.js';
import { approve, failureOf, startOperation, waitForPhase } from './lifecycle-helpers.js';

let env: SimulatedEnvironment;
let worker: TestWorker;

const ISO_URL = 'https://releases.ubuntu.com/24.04/ubuntu-24.04.3-live-server-amd64.iso';
/** The image's SHA-256 as the simulator lists it (the digest of the bytes it serves). */
let ISO_SHA256: string;

beforeAll(async () => {
  const homelab = await loadScenarioFile(fileURLToPath(new URL('../../sim/scenarios/homelab.yaml', import.meta.url)));
  // Removing volumes needs Datastore.Allocate, which the everyday role leaves out on purpose.
  const scenario = {
    ...homelab,
    roles: { ...homelab.roles, ProxmoxManager: [...homelab.roles['ProxmoxManager']!, 'Datastore.Allocate'] },
  };
  env = await startSimulatedEnvironment({ scenario, speed: 400 });
  ISO_SHA256 = offeredDownloads(env.sim.state.downloads).find((d) => d.url === ISO_URL)!.sha256;
  worker = await startTestWorker({ activities: createActivities(env.deps) });
});
afterAll(async () => {
  await worker?.shutdown();
  await env?.stop();
});

const pool = (sid: string, node: string) => env.sim.state.pool(sid, node) as StoragePool;

describe('importing an ISO', () => {
  it('downloads it into the storage and checks it is there', async () => {
    const handle = await startOperation(worker, 'iso-import', {
      node: 'pve02',
      storage: 'local',
      url: ISO_URL,
      filename: 'ubuntu-24.04.3.iso',
      checksum: ISO_SHA256,
    });
    const { result } = await handle.result();
    expect(result).toEqual({ volid: 'local:iso/ubuntu-24.04.3.iso', size: Math.round(3.1 * 1024 ** 3) });
    expect(pool('local', 'pve02').volumes.get('local:iso/ubuntu-24.04.3.iso')?.sha256).toBe(ISO_SHA256);
  });

  it('waits for a person when the URL is outside the download policy, instead of approving it by policy', async () => {
    const url = 'http://127.0.0.1:8006/api2/json/x.iso';
    const handle = await startOperation(worker, 'iso-import', {
      node: 'pve02',
      storage: 'local',
      url,
      filename: 'inside.iso',
      checksum: ISO_SHA256,
    });
    const { plan } = await waitForPhase(handle, 'awaiting-approval');
    expect(plan).toMatchObject({
      risk: 'high',
      reasons: expect.arrayContaining([
        expect.stringMatching(
          /outside the environment's download policy \(127\.0\.0\.1 is a loopback, link-local or private address/,
        ),
      ]),
    });
    await handle.cancel();
    expect(pool('local', 'pve02').volumes.has('local:iso/inside.iso')).toBe(false);
  });

  it('keeps nothing when the checksum does not match', async () => {
    const wrong = 'f'.repeat(64);
    const handle = await startOperation(worker, 'iso-import', {
      node: 'pve01',
      storage: 'local',
      url: ISO_URL,
      filename: 'tampered.iso',
      checksum: wrong,
    });
    expect((await failureOf(handle)).message).toMatch(
      new RegExp(`checksum mismatch: got '${ISO_SHA256}' != expect '${wrong}'`),
    );
    expect(pool('local', 'pve01').volumes.has('local:iso/tampered.iso')).toBe(false);
  });

  it('refuses a storage that holds no ISOs, and a name that is taken', async () => {
    const body = { node: 'pve01', url: ISO_URL, checksum: ISO_SHA256 };
    expect(
      await failureOf(await startOperation(worker, 'iso-import', { ...body, storage: 'local-lvm', filename: 'x.iso' })),
    ).toMatchObject({
      type: 'PlanRefused',
      message: "storage: 'local-lvm' does not hold ISO images (content: images,rootdir)",
    });
    expect(
      await failureOf(
        await startOperation(worker, 'iso-import', {
          ...body,
          storage: 'local',
          filename: 'debian-13.1.0-amd64-netinst.iso',
        }),
      ),
    ).toMatchObject({
      type: 'PlanRefused',
      message:
        'filename: local:iso/debian-13.1.0-amd64-netinst.iso already exists; remove it first or choose another name',
    });
  });
});

describe('removing unused images', () => {
  it('removes orphans after approval, never what a guest or a snapshot names, and re-checks right before', async () => {
    const now = env.sim.clock.now();
    const lvm3 = pool('local-lvm', 'pve03');
    // Left behind by a guest that no longer exists, and by one that still does but dropped it.
    const orphan = env.sim.state.allocateDisk(lvm3, 4242, 10 * 1024 ** 3, { now }).volid;
    const dropped = env.sim.state.allocateDisk(lvm3, 1023, 5 * 1024 ** 3, { now }).volid;
    const reattached = env.sim.state.allocateDisk(lvm3, 1024, 5 * 1024 ** 3, { now }).volid;
    // Named only by a snapshot of gitlab: a rollback would need it.
    const lvm1 = pool('local-lvm', 'pve01');
    const inSnapshot = env.sim.state.allocateDisk(lvm1, 1005, 1024 ** 3, { now }).volid;
    env.sim.state.guests.get(1005)!.snapshots.get('before-upgrade')!.config['scsi1'] = `${inSnapshot},size=1G`;

    const handle = await startOperation(worker, 'storage-cleanup', { storage: 'local-lvm' });
    const status = await waitForPhase(handle, 'awaiting-approval');
    expect(status.plan!.risk).toBe('high');
    const planned = (status.plan!.details as { volumes: { volid: string }[] }).volumes.map((v) => v.volid);
    expect(planned.sort()).toEqual([dropped, orphan, reattached].sort());

    // Someone attaches one of them again while the plan waits.
    const pve = await env.deps.pve('home');
    await pve.qemu.updateConfig({ node: 'pve03', vmid: 1024, scsi1: reattached });
    await approve(handle);
    const failure = await failureOf(handle);
    expect(failure.chain.find((f) => f.type === 'CleanupIncomplete')!.message).toBe(
      `1 of 3 volumes not removed: ${reattached} (${reattached} is in use again; not removing it)`,
    );
    expect(lvm3.volumes.has(orphan) || lvm3.volumes.has(dropped)).toBe(false);
    expect(lvm3.volumes.has(reattached)).toBe(true);
    expect(lvm1.volumes.has(inSnapshot)).toBe(true);
    for (const g of env.sim.state.guests.values())
      for (const d of g.drives) expect(env.sim.state.volume(d.volid, g.node)).toBeDefined();
  });
});
