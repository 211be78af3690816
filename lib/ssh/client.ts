/**
 * Running commands on a node over SSH, with the node's host key pinned. A host whose key
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
  /** The command's time; for `runCommand` also connecting and authenticating. */
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

/** Runs one command on its own connection; `timeoutMs` covers connecting, authenticating and the command. */
export async function runCommand(target: SshTarget, command: string, opts: RunCommandOptions): Promise<CommandResult> {
  const deadline = Date.now() + opts.timeoutMs;
  const session = await openSession(target, opts.timeoutMs);
  try {
    return await session.run(command, { ...opts, timeoutMs: Math.max(1, deadline - Date.now()) });
  } finally {
    session.close();
  }
}

/**
 * One connection for several commands run one after another: an upgrade asks for the version,
 * upgrades, checks for a reboot and asks again, and each connection of its own costs a key
 * exchange and an authentication (half a second of a loaded machine's time).
 */
export interface SshSession {
  /** Runs a command on the open connection; `timeoutMs` covers only the command. */
  run(command: string, opts: RunCommandOptions): Promise<CommandResult>;
  close(): void;
}

/** Connects (within `connectTimeoutMs`) and authenticates; the caller closes the session. */
export async function openSession(target: SshTarget, connectTimeoutMs: number): Promise<SshSession> {
  const where = `${target.host}:${target.port}`;
  let closed = false;
  /** Fails the command running when the connection breaks (commands run one at a time). */
  let broken: ((err: Error) => void) | undefined;
  const conn = await connect(target, connectTimeoutMs, {
    error: (err) => broken?.(new SshConnectError(where, err.message)),
    close: () => {
      closed = true;
      broken?.(new SshConnectError(where, 'connection closed before the command finished'));
    },
  });
  return {
    run: (command, opts) => {
      if (closed) return Promise.reject(new SshConnectError(where, 'connection closed'));
      return exec(conn, where, command, opts, (fail) => (broken = fail));
    },
    close: () => conn.end(),
  };
}

/**
 * A connection to the host presenting the pinned key, authenticated, or the reason why not;
 * once it is ready, `after` hears of its errors and its closing.
 */
function connect(
  target: SshTarget,
  timeoutMs: number,
  after: { error: (err: Error) => void; close: () => void },
): Promise<Client> {
  const expected = target.hostKeySha256.replace(/=+$/, '');
  const where = `${target.host}:${target.port}`;
  return new Promise((resolve, reject) => {
    const conn = new Client();
    let offered: string | undefined;
    let state: 'connecting' | 'ready' | 'failed' = 'connecting';
    const fail = (err: Error) => {
      if (state !== 'connecting') return;
      state = 'failed';
      clearTimeout(timer);
      conn.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new SshTimeoutError(where, 'connect', timeoutMs, false)), timeoutMs);
    conn.on('error', (err: Error & { level?: string }) => {
      if (state === 'ready') return after.error(err);
      if (offered !== undefined && offered !== expected) return fail(new SshHostKeyError(where, expected, offered));
      if (err.level === 'client-authentication') return fail(new SshAuthError(where, target.username));
      const code = (err as { code?: string }).code;
      fail(new SshConnectError(where, [code, err.message].filter(Boolean).join(' ')));
    });
    conn.on('close', () =>
      state === 'ready' ? after.close() : fail(new SshConnectError(where, 'connection closed before it was ready')),
    );
    conn.on('ready', () => {
      state = 'ready';
      clearTimeout(timer);
      resolve(conn);
    });
    conn.connect({
      host: target.host,
      port: target.port,
      username: target.username,
      privateKey: target.privateKey,
      readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer) => {
        offered = sshFingerprint(key);
        return offered === expected;
      },
    });
  });
}

/** Runs `command` on an open connection; `onBroken` is handed the way to fail it if the connection breaks. */
function exec(
  conn: Client,
  where: string,
  command: string,
  opts: RunCommandOptions,
  onBroken: (fail: (err: Error) => void) => void,
): Promise<CommandResult> {
  const label = opts.label ?? `command '${command.split(/\s+/)[0] ?? ''}'`;
  return new Promise<CommandResult>((resolve, reject) => {
    let started = false;
    let settled = false;
    const finish = (outcome: { ok: CommandResult } | { err: Error }) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if ('ok' in outcome) resolve(outcome.ok);
      else reject(outcome.err);
    };
    const timer = setTimeout(() => {
      finish({ err: new SshTimeoutError(where, label, opts.timeoutMs, started) });
      // The command may still be running there: this connection is done for.
      conn.destroy();
    }, opts.timeoutMs);
    onBroken((err) => finish({ err }));

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
}
