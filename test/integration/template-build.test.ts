/**
 * Building VM templates from the shipped template runbooks, on a real Temporal dev server and
 * the simulated homelab (PVE 9.1): each template built with the cluster's conventions and
 * verified, re-runs reported instead of duplicated, replacement only when asked, VMIDs never
 * shared by concurrent builds, and a build that breaks half-way cleaning up after itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { downloadChecksum } from '../../sim/downloads.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { startTestWorker, type TestWorker } from '../support/temporal.js';
import { approve, cancelWhen, failureOf, startOperation, stepRunning, waitForPhase } from './lifecycle-helpers.js';
import { homelabWithShippedRole } from './runbook-helpers.js';

const urls = {
  ubuntu: 'https://cloud-images.ubuntu.com/releases/noble/release/ubuntu-24.04-server-cloudimg-amd64.img',
  debian: 'https://cloud.debian.org/images/cloud/trixie/latest/debian-13-genericcloud-amd64.qcow2',
  talos:
    'https://factory.talos.dev/image/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515/v1.10.6/nocloud-amd64.raw.xz',
};

let env: SimulatedEnvironment;
let worker: TestWorker;

beforeAll(async () => {
  env = await startSimulatedEnvironment({ scenario: homelabWithShippedRole(), speed: 400 });
  worker = await startTestWorker({ activities: createActivities(env.deps) });
});
afterAll(async () => {
  await worker?.shutdown();
  await env?.stop();
});

const guest = (vmid: number) => env.sim.state.guests.get(vmid);
const named = (name: string) => [...env.sim.state.guests.values()].filter((g) => g.config['name'] === name);

async function build(runbook: string, parameters: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const handle = await startOperation(worker, 'template-build', {
    runbook,
    parameters: { node: 'pve01', ...parameters },
    ...extra,
  });
  return { handle, result: await handle.result() };
}

/** What every template must hold: the cluster's conventions, as the inventory and its config show them. */
async function expectConventions(vmid: number, extraTags: string[]) {
  const config = guest(vmid)!.config;
  expect(config).toMatchObject({
    template: '1',
    bios: 'ovmf',
    machine: 'q35',
    scsihw: 'virtio-scsi-single',
    agent: '1',
    serial0: 'socket',
  });
  expect(config['scsi0']).toMatch(/^local-lvm:base-\d+-disk-\d+,.*iothread=1/);
  expect(config['efidisk0']).toMatch(/^local-lvm:base-\d+-disk-\d+,efitype=4m,pre-enrolled-keys=0/);
  expect(config['net0']).toMatch(/^virtio(=[0-9A-F:]+)?,bridge=vmbr0/);
  const pve = await env.deps.pve('home');
  const listed = (await pve.cluster.resources({ type: 'vm' })).find((r) => r.vmid === vmid);
  expect(listed).toMatchObject({ template: true, node: 'pve01' });
  expect(listed!.tags!.split(';')).toEqual(expect.arrayContaining(['template', ...extraTags]));
  expect(vmid).toBeGreaterThanOrEqual(100);
  expect(vmid).toBeLessThanOrEqual(999);
}

describe('building the shipped templates', () => {
  it('Ubuntu 24.04: downloaded through the API as .qcow2, checksum verified, imported with import-from', async () => {
    const { result } = await build('ubuntu-2404-cloudinit', { image_sha256: downloadChecksum(urls.ubuntu) });
    expect(result.outcome).toBe('completed');
    expect(result.result.status).toBe('built');
    const vmid: number = result.result.template.vmid;
    await expectConventions(vmid, ['cloudinit', 'ubuntu']);
    expect(guest(vmid)!.config).toMatchObject({
      cpu: 'host',
      ide2: expect.stringMatching(/cloudinit/),
      ipconfig0: 'ip=dhcp',
      boot: 'order=scsi0',
    });
    expect(guest(vmid)!.config['scsi0']).toContain('size=32G');
    expect(env.sim.state.volume('local:import/ubuntu-24.04-server-cloudimg-amd64.qcow2', 'pve01')).toBeDefined();
    expect(result.plan.steps.map((s: { id: string }) => s.id)).toEqual([
      'download-image',
      'create-vm',
      'import-disk',
      'grow-disk',
      'convert-to-template',
      'verify',
    ]);
    expect(result.result.template.checked).toEqual(
      expect.arrayContaining(['scsi0', 'efidisk0', 'net0', 'tags', 'scsihw']),
    );
  });

  it('Debian 13: SHA-512 verified by PVE', async () => {
    const { result } = await build('debian-13-cloudinit', { image_sha512: downloadChecksum(urls.debian, 'sha512') });
    await expectConventions(result.result.template.vmid, ['cloudinit', 'debian']);
  });

  it('Talos nocloud: fetched, checked and decompressed over SSH, x86-64-v2-AES or better, no memory hotplug', async () => {
    const { result } = await build('talos-nocloud', {
      image_sha256: downloadChecksum(urls.talos),
      cpu: 'x86-64-v2-AES',
    });
    const vmid: number = result.result.template.vmid;
    await expectConventions(vmid, ['talos', 'kubernetes']);
    expect(guest(vmid)!.config).toMatchObject({
      cpu: 'x86-64-v2-AES',
      hotplug: 'disk,network,usb',
      balloon: '0',
      citype: 'nocloud',
    });
    // The downloaded and decompressed files are cleaned up once imported.
    expect(env.sim.state.volume('local:import/talos-v1.10.6-nocloud-amd64.raw', 'pve01')).toBeUndefined();
  });

  it('Alpine PXE gold image: network boot first, an empty install disk', async () => {
    const { result } = await build('alpine-pxe-gold', {});
    const vmid: number = result.result.template.vmid;
    await expectConventions(vmid, ['pxe', 'alpine']);
    expect(guest(vmid)!.config['boot']).toBe('order=net0;scsi0');
  });

  it('reports a template that exists instead of building it again', async () => {
    const before = named('alpine-pxe-gold');
    expect(before).toHaveLength(1);
    const { result } = await build('alpine-pxe-gold', {});
    expect(result.outcome).toBe('nothing-to-do');
    expect(result.result).toEqual({ status: 'exists', vmid: before[0]!.vmid, node: 'pve01', name: 'alpine-pxe-gold' });
    expect(result.plan.steps).toEqual([]);
    expect(named('alpine-pxe-gold')).toHaveLength(1);
  });

  it('replaces a template only when asked, with a second person approving, and removes the old one after the new one is verified', async () => {
    const old = named('alpine-pxe-gold')[0]!.vmid;
    const handle = await startOperation(worker, 'template-build', {
      runbook: 'alpine-pxe-gold',
      parameters: { node: 'pve01' },
      replaceExisting: true,
    });
    const status = await approve(handle, 'bob');
    expect(status.plan!.risk).toBe('high');
    expect(status.plan!.steps.at(-1)).toMatchObject({ id: 'remove-previous', vmid: old });
    const { result } = await handle.result();
    expect(result.replaced).toBe(old);
    expect(guest(old)).toBeUndefined();
    expect(named('alpine-pxe-gold').map((g) => g.vmid)).toEqual([result.template.vmid]);
  });
});

describe('VMIDs', () => {
  it('never gives two builds running at once the same VMID', async () => {
    const names = ['gold-a', 'gold-b', 'gold-c'];
    const results = await Promise.all(names.map((name) => build('alpine-pxe-gold', { name })));
    const vmids = results.map(({ result }) => result.result.template.vmid as number);
    expect(new Set(vmids).size).toBe(3);
    for (const [i, vmid] of vmids.entries()) expect(guest(vmid)!.config['name']).toBe(names[i]);
  });

  it('takes a given VMID, and refuses one that exists', async () => {
    const { result } = await build('alpine-pxe-gold', { name: 'gold-given', vmid: 950 });
    expect(result.result.template.vmid).toBe(950);
    const handle = await startOperation(worker, 'template-build', {
      runbook: 'alpine-pxe-gold',
      parameters: { node: 'pve01', name: 'gold-again', vmid: 950 },
    });
    expect(await failureOf(handle)).toMatchObject({
      type: 'PlanRefused',
      message: "parameters.vmid: VMID 950 exists ('gold-given' on pve01)",
    });
  });
});

describe('a build that breaks', () => {
  it('removes what it created, and says which step failed and why', async () => {
    const before = new Set(env.sim.state.guests.keys());
    env.sim.faults.failTask({ type: 'qmtemplate', times: 1, message: 'simulated: converting to a template failed' });
    const { handle } = {
      handle: await startOperation(worker, 'template-build', {
        runbook: 'alpine-pxe-gold',
        parameters: { node: 'pve01', name: 'gold-broken' },
      }),
    };
    const failure = await failureOf(handle);
    expect(failure.message).toMatch(
      /^step convert-to-template failed: .*simulated: converting to a template failed.*\. Cleaned up: remove-vm\.$/s,
    );
    expect([...env.sim.state.guests.keys()].filter((v) => !before.has(v))).toEqual([]);
    expect(named('gold-broken')).toEqual([]);
  });

  it('when cancelled, finishes the step under way, starts no other, and removes what it built', async () => {
    // Every API call a little slower, so the cancel finds the VM being created.
    env.sim.faults.setApi({ latencyMs: 100 });
    try {
      const handle = await startOperation(worker, 'template-build', {
        runbook: 'alpine-pxe-gold',
        parameters: { node: 'pve01', name: 'gold-cancelled' },
      });
      const { status, runningAtCancel, approvalState } = await cancelWhen(handle, stepRunning('create-vm'));

      expect(status.phase).toBe('cancelled');
      expect(approvalState).toBe('auto-approved');
      expect(runningAtCancel).toEqual(['create-vm']);
      expect(status.cancelled).toMatchObject({
        done: ['create-vm', 'remove-vm'],
        failed: [],
        notStarted: ['convert-to-template', 'verify'],
      });
      expect(named('gold-cancelled')).toEqual([]);
      expect(env.sim.cluster.tasks.all().filter((t) => t.status === 'running')).toEqual([]);
    } finally {
      env.sim.faults.setApi({ latencyMs: 0 });
    }
  });

  it('keeps the half-built VM for debugging when asked to', async () => {
    env.sim.faults.failTask({ type: 'qmtemplate', times: 1 });
    const handle = await startOperation(worker, 'template-build', {
      runbook: 'alpine-pxe-gold',
      parameters: { node: 'pve01', name: 'gold-debug' },
      keepOnFailure: true,
    });
    expect((await failureOf(handle)).message).toMatch(/Kept for debugging \(cleanup not run: remove-vm\)\.$/);
    const kept = named('gold-debug');
    expect(kept).toHaveLength(1);
    expect(kept[0]!.config['template']).toBeUndefined();
  });

  it('stops at a checksum mismatch before anything is created', async () => {
    const before = env.sim.state.guests.size;
    const handle = await startOperation(worker, 'template-build', {
      runbook: 'debian-13-cloudinit',
      parameters: { node: 'pve01', name: 'debian-bad-sum', image_sha512: 'f'.repeat(128) },
    });
    const failure = await failureOf(handle);
    expect(failure.message).toMatch(/^step download-image failed: .*checksum mismatch/s);
    expect(failure.message).toMatch(/Nothing needed cleaning up\.$/);
    expect(env.sim.state.guests.size).toBe(before);
  });

  it('refuses to plan with a parameter that does not fit, naming it', async () => {
    const handle = await startOperation(worker, 'template-build', {
      runbook: 'talos-nocloud',
      parameters: { node: 'pve01', image_sha256: downloadChecksum(urls.talos), cpu: 'kvm64' },
    });
    expect(await failureOf(handle)).toMatchObject({
      type: 'PlanRefused',
      message: expect.stringContaining('parameters.cpu: must be one of host, x86-64-v2-AES, x86-64-v3, x86-64-v4, max'),
    });
  });
});

describe('where PVE cannot download into an import storage', () => {
  it('fetches and checks the image over SSH, and imports it with qm importdisk', async () => {
    // `shared` holds no import content: the runbook takes its SSH path.
    const { result } = await build('ubuntu-2404-cloudinit', {
      name: 'ubuntu-over-ssh',
      image_storage: 'shared',
      image_sha256: downloadChecksum(urls.ubuntu),
    });
    const ids = result.plan.steps.map((s: { id: string }) => s.id);
    expect(ids).toEqual([
      'fetch-image',
      'check-image',
      'create-vm',
      'import-disk-over-ssh',
      'attach-disk',
      'grow-disk',
      'convert-to-template',
      'verify',
    ]);
    await expectConventions(result.result.template.vmid, ['cloudinit']);
    expect(result.result.run.cleanup).toEqual([{ id: 'remove-fetched-image', state: 'succeeded' }]);
    expect(env.sim.state.node('pve01').files.has('/var/tmp/ubuntu-24.04-server-cloudimg-amd64.qcow2')).toBe(false);
  });

  it('fails the build when the fetched image does not match its checksum', async () => {
    const handle = await startOperation(worker, 'template-build', {
      runbook: 'ubuntu-2404-cloudinit',
      parameters: { node: 'pve01', name: 'ubuntu-bad-sum', image_storage: 'shared', image_sha256: '0'.repeat(64) },
    });
    expect((await failureOf(handle)).message).toMatch(
      /^step check-image failed: step check-image: output does not match/,
    );
    expect(named('ubuntu-bad-sum')).toEqual([]);
  });
});

describe('dry runs', () => {
  it('show the plan and build nothing', async () => {
    const before = env.sim.state.guests.size;
    const handle = await startOperation(worker, 'template-build', {
      runbook: 'alpine-pxe-gold',
      parameters: { node: 'pve02', name: 'gold-dry' },
      dryRun: true,
    });
    const { outcome, plan } = await handle.result();
    expect(outcome).toBe('dry-run');
    expect(plan.steps[0]).toMatchObject({ id: 'create-vm', action: 'api:qemuCreate', node: 'pve02' });
    expect(plan.steps[0].description).toMatch(/VMID: the next free one in 100-999/);
    expect(env.sim.state.guests.size).toBe(before);
    await waitForPhase(handle, 'completed');
  });
});

describe('image URLs and the download policy', () => {
  it('a build fetching from a private address is high risk, for a person to approve', async () => {
    const image_url = 'http://169.254.169.254/latest/ubuntu.img';
    const handle = await startOperation(worker, 'template-build', {
      runbook: 'ubuntu-2404-cloudinit',
      parameters: { node: 'pve01', name: 'ubuntu-internal', image_url, image_sha256: downloadChecksum(image_url) },
      dryRun: true,
    });
    const { plan } = await handle.result();
    expect(plan.risk).toBe('high');
    expect(plan.reasons).toContain(
      "downloads from outside the environment's download policy (169.254.169.254 is a loopback, link-local or private address, and downloads.allow does not name it): a person must approve",
    );
  });
});
