import { createHash } from 'node:crypto';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { downloadContent } from '../../sim/downloads.js';
import { startSimulator, type SimulatedCluster } from '../../sim/index.js';
import { generateSshKeyPair } from '../../sim/ssh/server.js';
import { GiB, smallScenario } from './sim-fixtures.js';

let sim: SimulatedCluster;

beforeAll(async () => {
  const scenario = smallScenario();
  scenario.nodes![0] = {
    name: 'pve1',
    memory: '64G',
    reboot_seconds: 60,
    upgrade: {
      pveversion: '9.1.4',
      kernel: '6.17.4-1-pve',
      packages: [{ name: 'pve-manager', from: '9.1.2', to: '9.1.4' }],
    },
  };
  sim = await startSimulator({ scenario, speed: 500, authFailureDelayMs: 0 });
});
afterAll(() => sim.stop());

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function connect(node: string, privateKey = sim.sshClientKey.privateKey): Promise<ssh2.Client> {
  const n = sim.nodes.find((x) => x.name === node)!;
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client
      .on('ready', () => resolve(client))
      .on('error', reject)
      .connect({
        host: n.host,
        port: n.sshPort,
        username: 'root',
        privateKey,
        hostVerifier: (key: Buffer) =>
          `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}` === n.sshHostKey,
      });
  });
}

async function run(node: string, command: string): Promise<Result> {
  const client = await connect(node);
  try {
    return await new Promise<Result>((resolve, reject) => {
      client.exec(command, (err, stream) => {
        if (err) return reject(err);
        let stdout = '';
        let stderr = '';
        let code = -1;
        stream.on('data', (d: Buffer) => (stdout += d.toString()));
        stream.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        stream.on('exit', (c: number) => (code = c));
        stream.on('close', () => resolve({ code, stdout, stderr }));
      });
    });
  } finally {
    client.end();
  }
}

describe('SSH endpoints', () => {
  it('authenticate root by key and present the pinned host key', async () => {
    expect(await run('pve2', 'hostname')).toEqual({ code: 0, stdout: 'pve2\n', stderr: '' });
  });

  it('refuse keys that are not authorised', async () => {
    await expect(connect('pve1', generateSshKeyPair('stranger').privateKey)).rejects.toThrow(/authentication/i);
  });

  it('answer unknown commands like bash', async () => {
    expect(await run('pve1', 'frobnicate --now')).toEqual({
      code: 127,
      stdout: '',
      stderr: 'bash: frobnicate: command not found\n',
    });
  });

  it('report the PVE version', async () => {
    const result = await run('pve2', 'pveversion');
    expect(result.stdout).toMatch(/^pve-manager\/9\.1\.2\/[0-9a-f]{16} \(running kernel: 6\.17\.2-1-pve\)\n$/);
  });
});

describe('template building over SSH', () => {
  it('downloads an image into node storage, imports it as a disk, attaches it and converts to a template', async () => {
    const url = 'https://cloud.example.org/debian-13-genericcloud-amd64.qcow2';
    const image = '/var/lib/vz/import/debian-13.qcow2';
    const fetched = await run('pve1', `wget -q -O ${image} ${url} && sha256sum ${image}`);
    expect(fetched.code).toBe(0);
    expect(fetched.stdout).toBe(`${createHash('sha256').update(downloadContent(url)).digest('hex')}  ${image}\n`);
    expect(sim.state.volume('local:import/debian-13.qcow2', 'pve1')).toBeDefined();

    const imported = await run('pve1', `qm importdisk 104 ${image} local-lvm --format raw`);
    expect(imported.code).toBe(0);
    expect(imported.stdout).toMatch(/Successfully imported disk as 'unused0:local-lvm:vm-104-disk-1'\n$/);

    const set = await run('pve1', "qm set 104 --scsi1 local-lvm:vm-104-disk-1 --boot 'order=scsi1' --agent 1");
    expect(set).toMatchObject({ code: 0, stderr: '' });
    const config = sim.state.guests.get(104)!.config;
    expect(config['scsi1']).toMatch(/^local-lvm:vm-104-disk-1,size=\d+G$/);
    expect(config['unused0']).toBeUndefined();

    expect((await run('pve1', 'qm template 104')).code).toBe(0);
    expect(sim.state.guests.get(104)!.template).toBe(true);
    expect(sim.state.guests.get(104)!.config['scsi1']).toMatch(/^local-lvm:base-104-disk-1/);
  });

  it('gives qm errors PVE wording and exit status 255', async () => {
    const bad = await run('pve1', 'qm set 101 --cores many');
    expect(bad).toEqual({
      code: 255,
      stdout: '',
      stderr: "400 Parameter verification failed.\ncores: type check ('integer') failed - got 'many'\n",
    });
    const missing = await run('pve2', 'qm set 101 --cores 2');
    expect(missing.stderr).toBe("Configuration file 'nodes/pve2/qemu-server/101.conf' does not exist\n");
  });

  it('fails downloads the server refuses, with wget and curl exit codes', async () => {
    sim.state.downloads.set('https://example.org/gone.iso', {
      url: 'https://example.org/gone.iso',
      size: GiB,
      http_status: 404,
    });
    expect((await run('pve2', 'wget -O /tmp/gone.iso https://example.org/gone.iso')).code).toBe(8);
    expect(await run('pve2', 'curl -fsSL -o /tmp/gone.iso https://example.org/gone.iso')).toMatchObject({
      code: 22,
      stderr: 'curl: (22) The requested URL returned error: 404\n',
    });
  });
});

describe('rolling maintenance over SSH', () => {
  it('upgrades packages after apt-get update, then reboots onto the new kernel', async () => {
    const nothing = await run('pve1', 'apt-get -y dist-upgrade');
    expect(nothing.stdout).toContain('0 upgraded');
    expect((await run('pve1', 'apt-get update')).code).toBe(0);
    const upgrade = await run('pve1', 'DEBIAN_FRONTEND=noninteractive apt-get -y dist-upgrade');
    expect(upgrade.stdout).toContain('Setting up pve-manager (9.1.4) ...');
    const node = sim.state.node('pve1');
    expect([node.pveversion, node.kernel]).toEqual(['9.1.4', '6.17.2-1-pve']);

    expect((await run('pve1', 'reboot')).code).toBe(0);
    await waitUntil(() => !node.online);
    expect(sim.state.guests.get(101)!.status).toBe('stopped');
    await expect(connect('pve1')).rejects.toThrow(/ECONNREFUSED/);
    await waitUntil(() => node.online);
    expect(node.kernel).toBe('6.17.4-1-pve');
    expect((await run('pve1', 'pveversion')).stdout).toContain('pve-manager/9.1.4/');
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
