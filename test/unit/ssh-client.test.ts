import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  runCommand,
  SshAuthError,
  SshCommandError,
  SshConnectError,
  SshHostKeyError,
  type SshTarget,
  openSession,
} from '../../lib/ssh/client.js';

const { Server, utils } = ssh2;

/** The fingerprint OpenSSH prints for a public key line (`ssh-keygen -lf`). */
function openSshFingerprint(publicKeyLine: string): string {
  const blob = Buffer.from(publicKeyLine.split(' ')[1]!, 'base64');
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

const hostKey = utils.generateKeyPairSync('ed25519');
const otherHostKey = utils.generateKeyPairSync('ed25519');
const clientKey = utils.generateKeyPairSync('ed25519');
const strangerKey = utils.generateKeyPairSync('ed25519');

/** What the fake node's sshd runs for each command. */
const commands: Record<string, { stdout?: string; stderr?: string; exit: number }> = {
  pveversion: { stdout: 'pve-manager/9.1.3/1234abcd (running kernel: 6.14.8-2-pve)\n', exit: 0 },
  'qm unlock 101': { stderr: 'line 1\nline 2\nConfiguration file does not exist\n', exit: 2 },
};

let port: number;
let authAttempts = 0;
let server: InstanceType<typeof Server>;

beforeAll(async () => {
  const allowed = utils.parseKey(clientKey.public);
  if (allowed instanceof Error) throw allowed;
  server = new Server({ hostKeys: [hostKey.private] }, (conn) => {
    conn.on('authentication', (ctx) => {
      authAttempts++;
      if (ctx.method !== 'publickey' || !ctx.key.data.equals(allowed.getPublicSSH())) return ctx.reject(['publickey']);
      if (ctx.signature && !allowed.verify(ctx.blob!, ctx.signature, ctx.hashAlgo)) return ctx.reject(['publickey']);
      ctx.accept();
    });
    conn.on('ready', () => {
      conn.on('session', (accept) => {
        accept().once('exec', (acceptExec, _reject, info) => {
          const stream = acceptExec();
          // A node that goes away mid-command (a reboot, a dropped link).
          if (info.command === 'reboot') return conn.end();
          const run = commands[info.command] ?? { stderr: `${info.command}: not found\n`, exit: 127 };
          if (run.stdout) stream.write(run.stdout);
          if (run.stderr) stream.stderr.write(run.stderr);
          stream.exit(run.exit);
          stream.end();
        });
      });
    });
    conn.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const target = (overrides: Partial<SshTarget> = {}): SshTarget => ({
  host: '127.0.0.1',
  port,
  username: 'root',
  privateKey: clientKey.private,
  hostKeySha256: openSshFingerprint(hostKey.public),
  ...overrides,
});

describe('runCommand', () => {
  it('runs the command on a host presenting the pinned key', async () => {
    const chunks: string[] = [];
    const result = await runCommand(target(), 'pveversion', { timeoutMs: 5_000, onOutput: (c) => chunks.push(c) });
    expect(result).toEqual({ exitCode: 0, stdout: commands.pveversion!.stdout, stderr: '' });
    expect(chunks.join('')).toBe(commands.pveversion!.stdout);
  });

  it('runs several commands over one connection, authenticating once', async () => {
    const before = authAttempts;
    await runCommand(target(), 'pveversion', { timeoutMs: 5_000 });
    const perConnection = authAttempts - before;

    const session = await openSession(target(), 5_000);
    const results = [
      await session.run('pveversion', { timeoutMs: 5_000 }),
      await session.run('qm unlock 101', { timeoutMs: 5_000, allowNonZeroExit: true }),
      await session.run('pveversion', { timeoutMs: 5_000 }),
    ];
    session.close();

    expect(results.map((r) => r.exitCode)).toEqual([0, 2, 0]);
    expect(results[2]!.stdout).toBe(commands.pveversion!.stdout);
    expect(authAttempts - before).toBe(2 * perConnection);
  });

  it('fails the running command, and refuses the next, when the connection drops mid-command', async () => {
    const session = await openSession(target(), 5_000);

    const dropped = (await session.run('reboot', { timeoutMs: 5_000 }).catch((e: unknown) => e)) as SshConnectError;
    const next = (await session.run('pveversion', { timeoutMs: 5_000 }).catch((e: unknown) => e)) as SshConnectError;

    expect(dropped).toBeInstanceOf(SshConnectError);
    expect(dropped.retryable).toBe(true);
    expect(next).toBeInstanceOf(SshConnectError);
    expect(next.message).toMatch(/connection closed/);
    session.close();
  });

  it('refuses a host with a changed key before offering ours, naming both fingerprints', async () => {
    authAttempts = 0;
    const pinned = openSshFingerprint(otherHostKey.public);
    const err = (await runCommand(target({ hostKeySha256: pinned }), 'pveversion', { timeoutMs: 5_000 }).catch(
      (e: unknown) => e,
    )) as SshHostKeyError;

    expect(err).toBeInstanceOf(SshHostKeyError);
    expect(err.expected).toBe(pinned);
    expect(err.offered).toBe(openSshFingerprint(hostKey.public));
    expect(err.message).toContain(pinned);
    expect(err.message).toContain(err.offered);
    expect(err.retryable).toBe(false);
    expect(authAttempts).toBe(0);
  });

  it('turns a non-zero exit into SshCommandError with the tail of stderr', async () => {
    const err = (await runCommand(target(), 'qm unlock 101', { timeoutMs: 5_000, label: 'unlock of VM 101' }).catch(
      (e: unknown) => e,
    )) as SshCommandError;
    expect(err).toBeInstanceOf(SshCommandError);
    expect(err.exitCode).toBe(2);
    expect(err.message).toBe(
      `unlock of VM 101 on 127.0.0.1:${port} exited 2: line 1\nline 2\nConfiguration file does not exist`,
    );
  });

  it('returns a non-zero exit when the caller asks to judge it', async () => {
    const result = await runCommand(target(), 'qm unlock 101', { timeoutMs: 5_000, allowNonZeroExit: true });
    expect(result.exitCode).toBe(2);
  });

  it('reports a rejected key as an authentication error, without the key', async () => {
    const err = (await runCommand(target({ privateKey: strangerKey.private }), 'pveversion', {
      timeoutMs: 5_000,
    }).catch((e: unknown) => e)) as SshAuthError;
    expect(err).toBeInstanceOf(SshAuthError);
    for (const rendering of [err.message, String(err.stack), JSON.stringify(err), inspect(err)]) {
      expect(rendering).not.toContain('PRIVATE KEY');
      expect(rendering).not.toContain(strangerKey.private.split('\n')[1]!);
    }
  });

  it('reports an unreachable host as a retryable connection error', async () => {
    const closed = new Server({ hostKeys: [hostKey.private] }, () => {});
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));

    const err = (await runCommand(target({ port: deadPort }), 'pveversion', { timeoutMs: 5_000 }).catch(
      (e: unknown) => e,
    )) as SshConnectError;
    expect(err).toBeInstanceOf(SshConnectError);
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/ECONNREFUSED/);
  });
});
