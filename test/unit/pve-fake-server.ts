/**
 * A scripted HTTPS server standing in for one PVE node in client tests: it records what
 * arrives and answers whatever the test says PVE would.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { X509Certificate } from 'node:crypto';
import { generate } from 'selfsigned';

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface ScriptedAnswer {
  status?: number;
  /** HTTP reason phrase; PVE puts the first line of its message here. */
  statusText?: string;
  /** JSON body; omitted for an empty body. */
  json?: unknown;
}

export type Script = (req: ReceivedRequest) => ScriptedAnswer | Promise<ScriptedAnswer>;

export interface KeyAndCert {
  key: string;
  cert: string;
  /** SHA-256 fingerprint as PVE shows it. */
  fingerprint: string;
}

export async function selfSignedCert(commonName = 'pve-test'): Promise<KeyAndCert> {
  const pems = await generate([{ name: 'commonName', value: commonName }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
  });
  return { key: pems.private, cert: pems.cert, fingerprint: new X509Certificate(pems.cert).fingerprint256 };
}

/** A CA and a leaf for 127.0.0.1 signed by it. */
export async function caSignedCert(): Promise<{ caCert: string; leaf: KeyAndCert }> {
  const ca = await generate([{ name: 'commonName', value: 'pve-test-ca' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    ],
  });
  const leaf = await generate([{ name: 'commonName', value: 'pve1' }], {
    keyType: 'ec',
    algorithm: 'sha256',
    ca: { key: ca.private, cert: ca.cert },
    extensions: [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }],
  });
  return {
    caCert: ca.cert,
    leaf: { key: leaf.private, cert: leaf.cert, fingerprint: new X509Certificate(leaf.cert).fingerprint256 },
  };
}

export interface FakePveNode {
  port: number;
  received: ReceivedRequest[];
  /** TCP connections accepted, whether or not a request followed. */
  connections: number;
  /** Of those, connections closed again (everything they carried has been processed). */
  closedConnections: number;
  script: Script;
  close(): Promise<void>;
}

export async function startFakePveNode(
  tls: KeyAndCert,
  script: Script = () => ({ json: { data: null } }),
): Promise<FakePveNode> {
  const node: FakePveNode = {
    port: 0,
    received: [],
    connections: 0,
    closedConnections: 0,
    script,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  const respond = async (req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    for await (const chunk of req) body += chunk;
    const received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body };
    node.received.push(received);
    const answer = await node.script(received);
    res.statusCode = answer.status ?? 200;
    if (answer.statusText) res.statusMessage = answer.statusText;
    if (answer.json === undefined) return res.end();
    res.setHeader('content-type', 'application/json;charset=UTF-8');
    res.end(JSON.stringify(answer.json));
  };
  const server: Server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    respond(req, res).catch((err: unknown) => {
      // A script that throws is a bug in the test: the call fails, and the output says why.
      console.error('pve-fake-server: the script failed:', err);
      res.destroy();
    });
  });
  server.on('connection', (socket) => {
    node.connections++;
    socket.on('close', () => node.closedConnections++);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  node.port = (server.address() as AddressInfo).port;
  return node;
}

/** A loopback port with nothing listening (connection refused). */
export async function closedPort(): Promise<number> {
  const { createServer: createTcp } = await import('node:net');
  const probe = createTcp();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}
