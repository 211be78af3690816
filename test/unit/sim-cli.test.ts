import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, stat } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseApiToken } from '../../lib/config/secrets.js';
import type { ConnectionFile } from '../../sim/main.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
let child: ChildProcess;
let output = '';
let dir: string;
let connection: ConnectionFile;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pm-sim-cli-'));
  child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'sim/main.ts',
      '--scenario',
      'sim/scenarios/homelab.yaml',
      '--speed',
      '50',
      '--connection-file',
      join(dir, 'connection.json'),
    ],
    { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const deadline = Date.now() + 15_000;
  while (!existsSync(join(dir, 'connection.json'))) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`simulator did not start:\n${output}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  connection = JSON.parse(await readFile(join(dir, 'connection.json'), 'utf8'));
}, 20_000);

afterAll(() => {
  if (child.exitCode === null) child.kill('SIGKILL');
});

describe('sim/main.ts', () => {
  it('writes a connection file naming nodes, their TLS fingerprints, host keys and secret files', () => {
    expect(connection).toMatchObject({
      cluster: 'homelab',
      speed: 50,
      ssh_user: 'root',
      nodes: [
        {
          name: 'pve01',
          host: '127.0.0.1',
          port: expect.any(Number),
          ssh_port: expect.any(Number),
          ssh_host_key: expect.stringMatching(/^SHA256:/),
          tls_fingerprint: expect.stringMatching(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/),
        },
        expect.objectContaining({ name: 'pve02' }),
        expect.objectContaining({ name: 'pve03' }),
      ],
      tls: { ca_file: join(dir, 'ca.pem') },
      token_file: join(dir, 'token-automation_pve_pm'),
      ssh_key_file: join(dir, 'ssh_client_ed25519'),
      admin_secret_file: join(dir, 'admin.secret'),
    });
  });

  it('keeps secrets in 0600 files and out of its output', async () => {
    for (const file of [
      connection.token_file,
      connection.ssh_key_file,
      connection.admin_secret_file,
      ...connection.tokens.map((t) => t.file),
    ]) {
      expect((await stat(file)).mode & 0o777).toBe(0o600);
    }
    const token = parseApiToken(await readFile(connection.token_file, 'utf8'), 'token file');
    expect(token.tokenId).toBe('automation@pve!pm');
    expect(output).not.toContain(token.secret);
    expect(output).not.toContain((await readFile(connection.admin_secret_file, 'utf8')).trim());
    for (const node of connection.nodes) expect(output).toContain(node.tls_fingerprint);
    expect(output).toContain(connection.nodes[0]!.ssh_host_key);
  });

  it('serves the API with the token from the file, verified against the CA file', async () => {
    const token = parseApiToken(await readFile(connection.token_file, 'utf8'), 'token file');
    const ca = await readFile(connection.tls.ca_file, 'utf8');
    const node = connection.nodes[1]!;
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(
        {
          host: node.host,
          port: node.port,
          path: '/api2/json/cluster/resources?type=node',
          ca,
          headers: { Authorization: `PVEAPIToken=${token.tokenId}=${token.secret}` },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode!);
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(200);
  });

  it('stops cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
