/**
 * Running one command on a node over SSH, with the node's host key pinned. A host whose key
 * does not match the configured fingerprint is refused before authentication, so the private
 * key is never offered to it. Messages name hosts and fingerprints (public) and never the key.
 */
import { createHash } from 'node:crypto';
import { Client } from 'ssh2';

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  privateKey: string | Buffer;
  /** The host key's fingerprint as OpenSSH prints it: `SHA256:<base64, unpadded>`. */
  hostKeySha256: string;
}

export interface RunCommandOptions {
  /** Whole run: connect, authenticate, execute. */
  timeoutMs: number;
  onOutput?: (chunk: string, stream: 'stdout' | 'stderr') => void;
  /** Return non-zero exits instead of throwing SshCommandError. */
  allowNonZeroExit?: boolean;
  /** How the command is named in errors (commands may carry secrets, so never the command line itself). */
  label?: string;
}

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** OpenSSH's `SHA256:` fingerprint of a raw host key blob. */
export function sshFingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

export class SshError extends Error {
  constructor(
    message: string,
    readonly host: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The host offered a key other than the pinned one: possibly a reinstalled node, possibly an attacker. */
export class SshHostKeyError extends SshError {
  constructor(
    host: string,
    readonly expected: string,
    readonly offered: string,
  ) {
    super(
      `refusing SSH to ${host}: host key ${offered} does not match the pinned ${expected}. ` +
        'If the node was reinstalled, verify its key out of band and update ssh_host_key.',
      host,
      false,
    );
  }
}

/** The connection could not be made or dropped before the command ran. */
export class SshConnectError extends SshError {
  constructor(host: string, detail: string) {
    super(`SSH to ${host} failed: ${detail}`, host, true);
  }
}

export class SshAuthError extends SshError {
  constructor(host: string, username: string) {
    super(`SSH to ${host} as ${username}: the configured private key was not accepted`, host, false);
  }
}

/** The command exited non-zero (or was killed); `stderrTail` holds its last stderr lines. */
export class SshCommandError extends SshError {
  constructor(
    host: string,
    readonly label: string,
    readonly exitCode: number | null,
    readonly signal: string | undefined,
    readonly stderrTail: string,
  ) {
    const how = exitCode === null ? `was killed (${signal ?? 'no exit status'})` : `exited ${exitCode}`;
    super(`${label} on ${host} ${how}${stderrTail ? `: ${stderrTail}` : ''}`, host, false);
  }
}

/** The command started but did not finish in time; it may have had effects, so this is not retried. */
export class SshTimeoutError extends SshError {
  constructor(host: string, label: string, timeoutMs: number, started: boolean) {
    super(
      started
        ? `${label} on ${host} did not finish within ${timeoutMs} ms`
        : `SSH to ${host} did not become ready within ${timeoutMs} ms`,
      host,
      !started,
    );
  }
}

const MAX_CAPTURE = 4 * 1024 * 1024;

function tail(text: string, lines = 10): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

export function runCommand(target: SshTarget, command: string, opts: RunCommandOptions): Promise<CommandResult> {
  const expected = target.hostKeySha256.replace(/=+$/, '');
  const label = opts.label ?? `command '${command.split(/\s+/)[0] ?? ''}'`;
  const where = `${target.host}:${target.port}`;

  return new Promise<CommandResult>((resolve, reject) => {
    const conn = new Client();
    let offered: string | undefined;
    let started = false;
    let settled = false;
    const finish = (outcome: { ok: CommandResult } | { err: Error }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      conn.end();
      if ('ok' in outcome) resolve(outcome.ok);
      else reject(outcome.err);
    };
    const timer = setTimeout(() => {
      finish({ err: new SshTimeoutError(where, label, opts.timeoutMs, started) });
      conn.destroy();
    }, opts.timeoutMs);

    conn.on('error', (err: Error & { level?: string }) => {
      if (offered !== undefined && offered !== expected)
        return finish({ err: new SshHostKeyError(where, expected, offered) });
      if (err.level === 'client-authentication') return finish({ err: new SshAuthError(where, target.username) });
      const code = (err as { code?: string }).code;
      finish({ err: new SshConnectError(where, [code, err.message].filter(Boolean).join(' ')) });
    });
    conn.on('close', () => {
      if (!settled) finish({ err: new SshConnectError(where, 'connection closed before the command finished') });
    });
    conn.on('ready', () => {
      conn.exec(command, (err, stream) => {
        if (err) return finish({ err: new SshConnectError(where, `could not start ${label}: ${err.message}`) });
        started = true;
        let stdout = '';
        let stderr = '';
        stream.on('data', (chunk: Buffer) => {
          const text = chunk.toString('utf8');
          if (stdout.length < MAX_CAPTURE) stdout += text;
          opts.onOutput?.(text, 'stdout');
        });
        stream.stderr.on('data', (chunk: Buffer) => {
          const text = chunk.toString('utf8');
          stderr = (stderr + text).slice(-MAX_CAPTURE);
          opts.onOutput?.(text, 'stderr');
        });
        stream.on('close', (code: number | null, signal?: string) => {
          if (code === 0 || (opts.allowNonZeroExit && code !== null)) {
            return finish({ ok: { exitCode: code, stdout, stderr } });
          }
          finish({ err: new SshCommandError(where, label, code ?? null, signal, tail(stderr)) });
        });
      });
    });

    conn.connect({
      host: target.host,
      port: target.port,
      username: target.username,
      privateKey: target.privateKey,
      readyTimeout: opts.timeoutMs,
      hostVerifier: (key: Buffer) => {
        offered = sshFingerprint(key);
        return offered === expected;
      },
    });
  });
}
