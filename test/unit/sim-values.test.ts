/**
 * Values PVE refuses, and values it accepts that a narrower reading would refuse: the
 * simulator answers each as PVE 9.1 does (pve-common JSONSchema.pm, pve-manager HTTPServer.pm).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSimulator, type SimulatedCluster } from '../../sim/index.js';
import { smallScenario } from './sim-fixtures.js';
import { call, tokenAuth, waitForTask } from './sim-http.js';

let sim: SimulatedCluster;
let admin: string;

beforeAll(async () => {
  sim = await startSimulator({ speed: 200, authFailureDelayMs: 20, scenario: smallScenario() });
  admin = tokenAuth(sim, 'automation@pve!pm');
});

afterAll(() => sim.stop());

const setConfig = (form: Record<string, string>, vmid = 104) =>
  call(sim, 'PUT', `/nodes/pve1/qemu/${vmid}/config`, { auth: admin, form });
const config = async (vmid: number, type = 'qemu', node = 'pve1') =>
  (await call(sim, 'GET', `/nodes/${node}/${type}/${vmid}/config`, { auth: admin })).body?.data as Record<
    string,
    unknown
  >;

describe('property strings are verified key by key', () => {
  it.each([
    ['memory', 'abc', "invalid format - format error\nmemory.current: type check ('integer') failed - got 'abc'"],
    ['memory', 'current=8', 'invalid format - format error\nmemory.current: value must have a minimum value of 16'],
    ['net0', 'virtio,bridge=vmbr0,colour=red', 'invalid format - invalid key in comma-separated list property: colour'],
    [
      'net0',
      'virtio=01:00:00:00:00:01',
      'invalid format - format error\nnet0.macaddr: invalid format - value does not look like a valid unicast MAC address',
    ],
    ['tags', 'bad tag!', 'invalid format - invalid characters in tag'],
    [
      'ipconfig0',
      'ip=notanip',
      'invalid format - format error\nipconfig0.ip: invalid format - value does not look like a valid ipv4 network configuration',
    ],
    [
      'efidisk0',
      'local-lvm:1,efitype=5m',
      "invalid format - format error\nefidisk0.efitype: value '5m' does not have a value in the enumeration '2m, 4m'",
    ],
    [
      'boot',
      'order=floppy0',
      "invalid format - format error\nboot.order: invalid format - invalid boot device 'floppy0'",
    ],
    ['machine', 'pc-q99', 'invalid format - format error\nmachine.type: value does not match the regex pattern'],
    [
      'agent',
      'enabled=maybe',
      "invalid format - format error\nagent.enabled: type check ('boolean') failed - got 'maybe'",
    ],
    ['scsi1', 'size=32G', 'invalid format - format error\nscsi1.file: property is missing and it is not optional'],
  ])('%s=%s -> 400 naming the parameter and the key', async (name, value, message) => {
    const reply = await setConfig({ [name]: value });
    expect([reply.status, reply.reason]).toEqual([400, 'Parameter verification failed.']);
    expect(reply.body?.errors).toEqual({ [name]: message });
  });

  it('answers every bad parameter of one request, and stores none of them', async () => {
    const before = await config(104);
    const reply = await setConfig({ memory: 'abc', net0: 'bogus', cores: '2' });
    expect(Object.keys(reply.body?.errors ?? {}).sort()).toEqual(['memory', 'net0']);
    expect(await config(104)).toEqual(before);
  });

  it('accepts what PVE accepts: default keys written bare, aliases, booleans spelled on/off inside property strings', async () => {
    const reply = await setConfig({
      memory: '2048',
      net1: 'e1000=BC:24:11:00:00:01,bridge=vmbr0,firewall=on',
      agent: '1,fstrim_cloned_disks=yes',
      ipconfig1: 'ip=10.0.0.5/24,gw=10.0.0.1',
      tags: 'web;prod',
      boot: 'order=scsi0;net0',
      machine: 'pc-q35-9.2+pve1',
      startup: 'order=2,up=30',
    });
    expect(reply.status, reply.text).toBe(200);
    expect(await config(104)).toMatchObject({
      memory: '2048',
      net1: 'e1000=BC:24:11:00:00:01,bridge=vmbr0,firewall=1',
      machine: 'pc-q35-9.2+pve1',
    });
  });
});

describe('booleans', () => {
  it.each(['true', 'yes', 'on', '2'])('a parameter of type boolean refuses %s (only 0 and 1)', async (value) => {
    const reply = await setConfig({ onboot: value });
    expect(reply.body?.errors).toEqual({ onboot: `type check ('boolean') failed - got '${value}'` });
  });

  it('accepts 0 and 1, and JSON true/false', async () => {
    expect((await setConfig({ onboot: '1' })).status).toBe(200);
    const json = await call(sim, 'PUT', '/nodes/pve1/qemu/104/config', { auth: admin, json: { onboot: false } });
    expect(json.status, json.text).toBe(200);
    expect((await config(104))['onboot']).toBe(0);
  });
});

describe('path parameters repeated in the request', () => {
  it('the same value is accepted (PVE 9)', async () => {
    const reply = await call(sim, 'PUT', '/nodes/pve1/qemu/104/config', {
      auth: admin,
      form: { vmid: '104', node: 'pve1', cores: '2' },
    });
    expect(reply.status, reply.text).toBe(200);
  });

  it('a different value is refused, naming the parameter', async () => {
    const reply = await call(sim, 'PUT', '/nodes/pve1/qemu/104/config', {
      auth: admin,
      form: { vmid: '101', cores: '2' },
    });
    expect([reply.status, reply.body?.errors]).toEqual([
      400,
      { vmid: 'duplicate parameter (already defined in URI) with conflicting values!' },
    ]);
    const json = await call(sim, 'POST', '/nodes/pve1/qemu/104/status/start', { auth: admin, json: { node: 'pve2' } });
    expect([json.status, json.body?.errors]).toEqual([
      400,
      { node: 'duplicate parameter (already defined in URI) with conflicting values!' },
    ]);
  });
});

describe('NICs without a MAC', () => {
  it("get one with PVE's BC:24:11 prefix when a VM is created", async () => {
    const reply = await call(sim, 'POST', '/nodes/pve1/qemu', {
      auth: admin,
      form: {
        vmid: '300',
        name: 'nic-test',
        memory: '1024',
        net0: 'virtio,bridge=vmbr0',
        net1: 'model=e1000,bridge=vmbr0,tag=10',
      },
    });
    expect(reply.status, reply.text).toBe(200);
    await waitForTask(sim, admin, reply.body?.data as string);
    const cfg = await config(300);
    expect(cfg['net0']).toMatch(/^virtio=BC:24:11(:[0-9A-F]{2}){3},bridge=vmbr0$/);
    expect(cfg['net1']).toMatch(/^e1000=BC:24:11(:[0-9A-F]{2}){3},bridge=vmbr0,tag=10$/);
    const mac = (nic: unknown) => String(nic).split(/[=,]/)[1];
    expect(mac(cfg['net0'])).not.toBe(mac(cfg['net1']));
  });

  it('get one when added to a container, and a given MAC is kept', async () => {
    const reply = await call(sim, 'PUT', '/nodes/pve3/lxc/200/config', {
      auth: admin,
      form: { net1: 'name=eth1,bridge=vmbr0,ip=dhcp', net2: 'name=eth2,bridge=vmbr0,hwaddr=BC:24:11:AA:BB:CC' },
    });
    expect(reply.status, reply.text).toBe(200);
    const cfg = await config(200, 'lxc', 'pve3');
    expect(cfg['net1']).toMatch(/^bridge=vmbr0,hwaddr=BC:24:11(:[0-9A-F]{2}){3},ip=dhcp,name=eth1$/);
    expect(cfg['net2']).toBe('bridge=vmbr0,hwaddr=BC:24:11:AA:BB:CC,name=eth2');
  });
});

describe('PVE properties beyond what proxmox-manager sets', () => {
  it('are accepted and verified like the rest', async () => {
    const ok = await setConfig({
      kvm: '0',
      acpi: '1',
      keyboard: 'de',
      cpulimit: '1.5',
      rng0: 'source=/dev/urandom',
      vga: 'serial0',
    });
    expect(ok.status, ok.text).toBe(200);
    const bad = await setConfig({ kvm: 'maybe', keyboard: 'klingon', rng0: 'source=/dev/zero' });
    expect(Object.keys(bad.body?.errors ?? {}).sort()).toEqual(['keyboard', 'kvm', 'rng0']);
  });

  it("start takes PVE's machine parameter", async () => {
    const reply = await call(sim, 'POST', '/nodes/pve1/qemu/104/status/start', {
      auth: admin,
      form: { machine: 'q35' },
    });
    expect(reply.status, reply.text).toBe(200);
    await waitForTask(sim, admin, reply.body?.data as string);
  });

  it('cipassword is stored hashed: never answered or logged in plain text', async () => {
    const reply = await call(sim, 'POST', '/nodes/pve1/qemu/107/config', {
      auth: admin,
      form: { cipassword: 'hunter2-secret', ciuser: 'ops' },
    });
    expect(reply.status, reply.text).toBe(200);
    const upid = reply.body?.data as string;
    await waitForTask(sim, admin, upid);
    const cfg = await config(107);
    expect(cfg['cipassword']).toBe('**********');
    const log = await call(sim, 'GET', `/nodes/pve1/tasks/${encodeURIComponent(upid)}/log`, { auth: admin });
    expect(log.text).toContain('-ciuser ops');
    expect(log.text).not.toContain('hunter2-secret');
    expect(JSON.stringify(sim.cluster.state.guests.get(107)?.config)).not.toContain('hunter2-secret');
  });
});
