/**
 * The demo command, run the way a person runs it (a child process), non-interactively with
 * --once, on free ports and a scratch data directory so it never touches a running demo.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

const root = fileURLToPath(new URL('../../', import.meta.url));

function runDemo(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/dev-stack.ts', ...args], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error(`demo did not finish within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

const missing = ['sim/main.ts', 'sim/scenarios/homelab.yaml', 'worker/main.ts', 'api/main.ts'].filter(
  (f) => !existsSync(join(root, f)),
);

describe('the demo command', () => {
  const scratch: string[] = [];
  afterAll(async () => {
    for (const dir of scratch) await rm(dir, { recursive: true, force: true });
  });

  it('answers --help before any setup runs', async () => {
    const result = await new Promise<{ code: number | null; output: string }>((resolve) => {
      const child = spawn('bash', ['scripts/demo.sh', '--help'], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      child.once('exit', (code) => resolve({ code, output }));
    });
    // Setup would have said something (installing, or where the Temporal CLI is): only the usage.
    expect(result).toEqual({ code: 0, output: await readFile(join(root, 'scripts/demo-usage.txt'), 'utf8') });
  });

  it('says which port is taken instead of failing obscurely', async () => {
    const squatter: Server = createServer();
    await new Promise<void>((r) => squatter.listen(0, '127.0.0.1', r));
    const { port } = squatter.address() as { port: number };
    try {
      const { code, output } = await runDemo(
        ['--once', '--temporal-port', '0', '--ui-port', '0', '--api-port', String(port)],
        60_000,
      );
      expect(code).toBe(1);
      expect(output).toContain(`port ${port} on 127.0.0.1 (proxmox-manager API) is already in use`);
    } finally {
      squatter.close();
    }
  });

  it.skipIf(missing.length > 0)(
    `starts the whole stack, runs the inventory through the API and stops cleanly${missing.length ? ` (skipped: ${missing.join(', ')} not written yet)` : ''}`,
    async () => {
      const dataDir = await mkdtemp(join(tmpdir(), 'pm-demo-'));
      scratch.push(dataDir);
      const { code, output } = await runDemo(
        ['--once', '--temporal-port', '0', '--ui-port', '0', '--api-port', '0', '--data-dir', dataDir],
        240_000,
      );
      expect(output, output).toMatch(/completed: /);
      expect(code, output).toBe(0);

      // The generated config pins each node's own certificate and stores API tokens only as hashes; the tokens file is private.
      const config = parse(await readFile(join(dataDir, 'demo/proxmox-manager.yaml'), 'utf8'));
      // Every advertised operation can run: cluster-up's talosctl stand-in, PXE with the live
      // image's key pinned (and printed), the drift schedule on; each step ends with what to try next.
      expect(config.talosctl.binary).toBe(join(root, 'sim/bin/talosctl'));
      expect(config.environments.home.pxe.live_image_host_key).toMatch(/^SHA256:/);
      expect(output).toContain(config.environments.home.pxe.live_image_host_key);
      expect(config.manifests.drift_interval).toBe('2m');
      const steps = output.split(/^==> /m).slice(1);
      expect(steps.map((step) => step.split('\n')[0])).toEqual([
        expect.stringMatching(/^Temporal dev server/),
        expect.stringMatching(/^Simulated cluster/),
        expect.stringMatching(/^Config /),
        'proxmox-manager is up',
        expect.stringMatching(/^Main job/),
      ]);
      for (const step of steps) expect(step, step).toContain('try next:');
      expect(config.environments.home.tls).toBeUndefined();
      const pins = config.environments.home.cluster.nodes.map((n: { tls_fingerprint?: string }) => n.tls_fingerprint);
      for (const pin of pins) expect(pin).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      expect(new Set(pins).size).toBe(pins.length);
      const tokensFile = join(dataDir, 'demo/api-tokens.env');
      expect((await stat(tokensFile)).mode & 0o777).toBe(0o600);
      const tokens = (await readFile(tokensFile, 'utf8')).match(/^PM_TOKEN_\w+=(.+)$/gm)!;
      expect(tokens).toHaveLength(5);
      for (const line of tokens) expect(output).not.toContain(line.split('=')[1]);
      expect(JSON.stringify(config)).not.toContain(tokens[0]!.split('=')[1]);
      // Temporal kept its history on disk, so a restarted demo still shows past runs.
      expect(existsSync(join(dataDir, 'temporal/dev.sqlite'))).toBe(true);
    },
  );
});
