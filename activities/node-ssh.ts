/**
 * SSH through PVE nodes to guests on networks only the nodes reach (PXE-booted VMs on the
 * node's bridge). Every hop is pinned: the node's host key from the configuration (the
 * worker's `sshTarget`), the guest's from the caller.
 */
import { createServer, type AddressInfo, type Server } from 'node:net';
import ssh2 from 'ssh2';
import type { EnvironmentConfig } from '../lib/config/schema.js';
import { SshAuthError, SshConnectError, SshHostKeyError, sshFingerprint, type SshTarget } from '../lib/ssh/client.js';

/** Why SSH to these nodes would be refused (nothing pinned, no key), without reading any secret. */
export function sshProblems(env: EnvironmentConfig, nodes: readonly string[]): string[] {
  const problems: string[] = [];
  if (!env.credentials.ssh_key) problems.push('credentials.ssh_key is not configured');
  for (const name of nodes) {
    const node = env.cluster.nodes.find((n) => n.name === name);
    if (!node) problems.push(`node ${name} is not listed in cluster.nodes`);
    else if (!node.ssh_host_key) problems.push(`node ${name} has no ssh_host_key pinned, so SSH to it is refused`);
  }
  return problems;
}

/**
 * Runs `fn` with a local port (127.0.0.1) forwarded through `via` to `destination`, as
 * `ssh -L` does. The connection to `via` is pinned and authenticated like any other; what
 * goes through the tunnel (an SSH session to the guest) is pinned by its own host key and
 * authenticated by the guest, so the short-lived loopback port lends nobody a login.
 */
export async function withTunnel<T>(
  via: SshTarget,
  destination: { host: string; port: number },
  timeoutMs: number,
  fn: (local: { host: string; port: number }) => Promise<T>,
): Promise<T> {
  const where = `${via.host}:${via.port}`;
  const expected = via.hostKeySha256.replace(/=+$/, '');
  const conn = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    let offered: string | undefined;
    const timer = setTimeout(() => {
      conn.destroy();
      reject(new SshConnectError(where, `not ready within ${timeoutMs} ms`));
    }, timeoutMs);
    conn.once('ready', () => {
      clearTimeout(timer);
      // Later failures of this connection reach the caller as failed forwards.
      conn.on('error', () => undefined);
      resolve();
    });
    conn.once('error', (err: Error & { level?: string }) => {
      clearTimeout(timer);
      if (offered !== undefined && offered !== expected) reject(new SshHostKeyError(where, expected, offered));
      else if (err.level === 'client-authentication') reject(new SshAuthError(where, via.username));
      else reject(new SshConnectError(where, err.message));
    });
    conn.connect({
      host: via.host,
      port: via.port,
      username: via.username,
      privateKey: via.privateKey,
      readyTimeout: timeoutMs,
      hostVerifier: (key: Buffer) => {
        offered = sshFingerprint(key);
        return offered === expected;
      },
    });
  });

  const server: Server = createServer((socket) => {
    conn.forwardOut('127.0.0.1', 0, destination.host, destination.port, (err, channel) => {
      if (err) return socket.destroy();
      socket.pipe(channel).pipe(socket);
      socket.on('error', () => channel.close());
      channel.on('error', () => socket.destroy());
    });
  });
  try {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return await fn({ host: '127.0.0.1', port });
  } finally {
    server.close();
    conn.end();
  }
}
