/**
 * One SSH endpoint per node (ssh2 server, ed25519 host key per node, public-key auth for
 * root), running exec requests through the simulated shell. Like the API listeners, a node's
 * endpoint closes while the node is offline.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import ssh2, { type Connection } from 'ssh2';
import type { Cluster } from '../cluster.js';
import { attachGuestSystems, type GuestSystems } from '../guest-ssh.js';
import { Shell } from './shell.js';

const { Server, utils } = ssh2;

export interface SshKeyPair {
  /** OpenSSH private key. */
  privateKey: string;
  /** `ssh-ed25519 AAAA... comment` */
  publicKey: string;
}

export function generateSshKeyPair(comment: string): SshKeyPair {
  // ssh2 occasionally (about 1 in 200) writes an ed25519 key its own parser rejects as
  // "Malformed OpenSSH private key": keep only pairs that read back.
  for (;;) {
    const pair = utils.generateKeyPairSync('ed25519', { comment });
    if (!(utils.parseKey(pair.private) instanceof Error) && !(utils.parseKey(pair.public) instanceof Error)) {
      return { privateKey: pair.private, publicKey: pair.public };
    }
  }
}

/** OpenSSH's `SHA256:...` fingerprint of a public key. */
export function sshFingerprint(key: string | Buffer): string {
  const parsed = utils.parseKey(key);
  if (parsed instanceof Error) throw parsed;
  const blob = parsed.getPublicSSH();
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

interface Endpoint {
  node: string;
  port: number;
  hostKey: SshKeyPair;
  server: InstanceType<typeof Server> | undefined;
  clients: Set<Connection>;
}

export interface SshServerOptions {
  host: string;
  /** OpenSSH public keys allowed to log in as root. */
  authorizedKeys: readonly string[];
}

export class SshServer {
  readonly #endpoints = new Map<string, Endpoint>();
  readonly #allowed: { algo: string; blob: Buffer; key: ReturnType<typeof utils.parseKey> }[];
  readonly #guests: GuestSystems;

  constructor(
    private readonly cluster: Cluster,
    private readonly options: SshServerOptions,
  ) {
    this.#guests = attachGuestSystems(cluster, { authorizedKeys: options.authorizedKeys });
    this.#allowed = options.authorizedKeys.map((line) => {
      const key = utils.parseKey(line);
      if (key instanceof Error) throw new Error(`invalid authorized key '${line.slice(0, 40)}...': ${key.message}`);
      return { algo: key.type, blob: key.getPublicSSH(), key };
    });
  }

  /** Opens every node's endpoint; returns node -> {port, host key fingerprint, host public key}. */
  async listen(): Promise<Map<string, { port: number; hostKey: string; hostPublicKey: string }>> {
    for (const node of this.cluster.state.nodes.values()) {
      const endpoint: Endpoint = {
        node: node.name,
        port: 0,
        hostKey: generateSshKeyPair(`root@${node.name}`),
        server: undefined,
        clients: new Set(),
      };
      this.#endpoints.set(node.name, endpoint);
      await this.#open(endpoint);
      if (!node.online) await this.#close(endpoint);
    }
    this.cluster.onPowerChange(async (node, online) => {
      const endpoint = this.#endpoints.get(node);
      if (!endpoint) return;
      if (online) await this.#open(endpoint);
      else await this.#close(endpoint);
    });
    return new Map(
      [...this.#endpoints.values()].map((e) => [
        e.node,
        { port: e.port, hostKey: sshFingerprint(e.hostKey.publicKey), hostPublicKey: e.hostKey.publicKey },
      ]),
    );
  }

  async close(): Promise<void> {
    for (const endpoint of this.#endpoints.values()) await this.#close(endpoint);
  }

  #authorised(algo: string, data: Buffer, signature?: Buffer, blob?: Buffer, hashAlgo?: string): boolean {
    const match = this.#allowed.find(
      (k) => k.algo === algo && k.blob.length === data.length && timingSafeEqual(k.blob, data),
    );
    if (!match) return false;
    if (!signature || !blob) return true; // the client only asks whether this key would do
    const key = match.key;
    return !(key instanceof Error) && key.verify(blob, signature, hashAlgo) === true;
  }

  async #open(endpoint: Endpoint): Promise<void> {
    if (endpoint.server) return;
    const server = new Server({ hostKeys: [endpoint.hostKey.privateKey] }, (client) => {
      endpoint.clients.add(client);
      client.on('close', () => endpoint.clients.delete(client));
      client.on('error', () => undefined);
      client.on('authentication', (ctx) => {
        if (
          ctx.method === 'publickey' &&
          ctx.username === 'root' &&
          this.#authorised(ctx.key.algo, ctx.key.data, ctx.signature, ctx.blob, ctx.hashAlgo)
        ) {
          return ctx.accept();
        }
        ctx.reject(['publickey']);
      });
      client.on('ready', () => {
        client.on('tcpip', (accept, reject, info) => this.#guests.forward(endpoint.node, info, accept, reject));
        client.on('session', (acceptSession) => {
          const session = acceptSession();
          session.on('exec', (accept, _reject, info) => {
            const stream = accept();
            const shell = new Shell(this.cluster, endpoint.node);
            // An exec handler cannot be awaited: the command's failure becomes exit status 255.
            void shell
              .run(info.command, {
                stdout: (text) => stream.write(text),
                stderr: (text) => stream.stderr.write(text),
              })
              .catch((err: unknown) => {
                stream.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
                return 255;
              })
              .then((code) => {
                if (stream.destroyed) return;
                stream.exit(code);
                stream.end();
              });
          });
          session.on('shell', (_accept, reject) => reject());
          session.on('pty', (accept) => accept());
        });
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(endpoint.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    endpoint.port = (server.address() as AddressInfo).port;
    endpoint.server = server;
  }

  async #close(endpoint: Endpoint): Promise<void> {
    const server = endpoint.server;
    if (!server) return;
    endpoint.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const client of endpoint.clients) client.end();
    endpoint.clients.clear();
    await closed;
  }
}
