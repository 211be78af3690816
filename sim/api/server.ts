/**
 * The PVE REST API over HTTPS: one listener per node (so clients can fail over when a node
 * goes away), any node answering any path, node-local calls "proxied" to their node.
 *
 * Order of a call, as in pve-manager's HTTPServer: injected faults -> authentication (401)
 * -> quorum for writes -> route (501) -> proxy to the path's node (595 when unreachable)
 * -> permission check (403) -> parameter verification (400) -> handler (its own status, 500
 * for anything else). Every answer uses PVE's envelope; the reason phrase carries the first
 * line of the message.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { decodeFormParams, type Endpoint } from '../../lib/pve/endpoint.js';
import { checkPermission } from '../../lib/pve/permissions.js';
import { matchEndpoint } from '../../lib/pve/registry.js';
import type { ApiToken } from '../access.js';
import type { Cluster } from '../cluster.js';
import { PveError } from '../errors.js';
import type { ApiCertificate } from '../tls.js';
import { handleAdmin } from './admin.js';
import { backupHandlers, withRestores } from './backup.js';
import { clusterHandlers, accessHandlers } from './cluster.js';
import { Envelope, type Handler, type HandlerContext } from './context.js';
import { lxcHandlers, qemuHandlers } from './guests.js';
import { nodeHandlers } from './nodes.js';
import { storageHandlers } from './storage.js';

/** Every endpoint of lib/pve/registry.ts the simulator serves, by endpoint name. */
export const apiHandlers: Record<string, Handler<never>> = {
  ...clusterHandlers,
  ...accessHandlers,
  ...nodeHandlers,
  ...qemuHandlers,
  ...lxcHandlers,
  ...storageHandlers,
  ...backupHandlers,
  // Create calls with a backup archive are restores (qemu `archive`, lxc `restore=1`).
  ...withRestores({ qemuCreate: qemuHandlers.qemuCreate!, lxcCreate: lxcHandlers.lxcCreate! }),
} as Record<string, Handler<never>>;

const API_PREFIX = '/api2/json';
const MAX_BODY_BYTES = 1024 * 1024;

export interface ApiServerOptions {
  host: string;
  /** Each node's own certificate, signed by the cluster CA. */
  certificates: ReadonlyMap<string, ApiCertificate>;
  /** Wall milliseconds before answering a failed authentication (PVE waits about 3 s). */
  authFailureDelayMs: number;
  /** Bearer secret for the /_sim admin endpoints. */
  adminSecret: string;
}

interface Listener {
  node: string;
  port: number;
  server: Server | undefined;
  sockets: Set<Socket>;
}

/** The body PVE sends for an error, and its reason phrase. */
function errorBody(err: PveError): { reason: string; body: string } {
  const message = err.message.endsWith('\n') ? err.message : `${err.message}\n`;
  return {
    reason: message.split('\n')[0]!,
    body: JSON.stringify({ data: null, message, ...(err.errors ? { errors: err.errors } : {}) }),
  };
}

/** Node refuses reason phrases with control characters. */
function safeReason(reason: string): string {
  return reason.replace(/[^\x20-\x7e]/g, ' ').slice(0, 200) || 'Error';
}

function send(res: ServerResponse, status: number, reason: string, body: string): void {
  res.writeHead(status, safeReason(reason), {
    'Content-Type': 'application/json;charset=UTF-8',
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'max-age=0',
    Server: 'pve-api-daemon/3.0',
  });
  res.end(body);
}

function sendError(res: ServerResponse, err: PveError): void {
  const { reason, body } = errorBody(err);
  send(res, err.status, reason, body);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new PveError(413, 'Request Entity Too Large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Query string for every method, plus a form or JSON body for POST/PUT. */
async function readParams(req: IncomingMessage, url: URL): Promise<Record<string, unknown>> {
  const params: Record<string, unknown> = Object.fromEntries(url.searchParams);
  if (req.method !== 'POST' && req.method !== 'PUT') return params;
  const text = await readBody(req);
  if (!text) return params;
  const type = req.headers['content-type'] ?? '';
  if (type.includes('application/json')) {
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new PveError(400, 'Parameter verification failed.', { body: 'unable to parse JSON body' });
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new PveError(400, 'Parameter verification failed.', { body: 'body must be a JSON object' });
    }
    return { ...params, ...(body as Record<string, unknown>) };
  }
  return { ...params, ...Object.fromEntries(new URLSearchParams(text)) };
}

/**
 * Path parameters merged into the request's own. PVE 9 (HTTPServer.pm) accepts a path
 * parameter repeated in the query or body with the same value and refuses a different one.
 */
function withPathParams(params: Record<string, unknown>, pathParams: Record<string, string>): Record<string, unknown> {
  const conflicts: Record<string, string> = {};
  for (const [name, value] of Object.entries(pathParams)) {
    const repeated = params[name];
    if (repeated !== undefined && String(repeated) !== value) {
      conflicts[name] = 'duplicate parameter (already defined in URI) with conflicting values!';
    }
  }
  if (Object.keys(conflicts).length > 0) throw new PveError(400, 'Parameter verification failed.', conflicts);
  return { ...params, ...pathParams };
}

export class ApiServer {
  readonly #listeners = new Map<string, Listener>();

  constructor(
    private readonly cluster: Cluster,
    private readonly options: ApiServerOptions,
  ) {}

  /** Opens one listener per node; offline nodes get a port that refuses connections until they return. */
  async listen(): Promise<Map<string, number>> {
    for (const node of this.cluster.state.nodes.values()) {
      const listener: Listener = { node: node.name, port: 0, server: undefined, sockets: new Set() };
      this.#listeners.set(node.name, listener);
      await this.#open(listener);
      if (!node.online) await this.#close(listener);
    }
    this.cluster.onPowerChange(async (node, online) => {
      const listener = this.#listeners.get(node);
      if (!listener) return;
      if (online) await this.#open(listener);
      else await this.#close(listener);
    });
    return new Map([...this.#listeners.values()].map((l) => [l.node, l.port]));
  }

  async close(): Promise<void> {
    for (const listener of this.#listeners.values()) await this.#close(listener);
  }

  async #open(listener: Listener): Promise<void> {
    if (listener.server) return;
    const { key, cert } = this.#certificate(listener.node);
    const server = createServer({ key, cert }, (req, res) => {
      void this.#handle(listener.node, req, res);
    });
    server.on('connection', (socket: Socket) => {
      listener.sockets.add(socket);
      socket.on('close', () => listener.sockets.delete(socket));
    });
    // Connections that fail the TLS handshake (e.g. a client rejecting our certificate) are not our concern.
    server.on('tlsClientError', () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(listener.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    listener.port = (server.address() as AddressInfo).port;
    listener.server = server;
  }

  #certificate(node: string): ApiCertificate {
    const certificate = this.options.certificates.get(node);
    if (!certificate) throw new Error(`no TLS certificate for node '${node}'`);
    return certificate;
  }

  async #close(listener: Listener): Promise<void> {
    const server = listener.server;
    if (!server) return;
    listener.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of listener.sockets) socket.destroy();
    listener.sockets.clear();
    await closed;
  }

  async #handle(local: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.#dispatch(local, req, res);
    } catch (err) {
      if (res.headersSent || req.socket.destroyed) return;
      if (err instanceof AuthenticationFailed) return send(res, 401, err.message, '');
      sendError(
        res,
        err instanceof PveError ? err : new PveError(500, err instanceof Error ? err.message : String(err)),
      );
    }
  }

  async #dispatch(local: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { cluster } = this;
    const url = new URL(req.url ?? '/', 'https://localhost');
    const method = req.method ?? 'GET';
    if (url.pathname.startsWith('/_sim/')) {
      return handleAdmin(cluster, this.options.adminSecret, req, res, url, () => readBody(req));
    }
    const path = url.pathname.startsWith(`${API_PREFIX}/`) ? url.pathname.slice(API_PREFIX.length) : url.pathname;

    const fault = cluster.faults.forCall(method, path);
    if (fault?.kind === 'reset') return void req.socket.destroy();
    if (cluster.faults.api.latencyMs > 0) await delay(cluster.faults.api.latencyMs);
    if (fault?.kind === 'error') throw new PveError(fault.status, fault.message);

    const token = await this.#authenticate(req);
    if (method !== 'GET') cluster.requireQuorum();

    const route = url.pathname.startsWith(`${API_PREFIX}/`) ? matchEndpoint(method, path) : undefined;
    if (!route) throw new PveError(501, `Method '${method} ${path}' not implemented`);
    const raw = withPathParams(await readParams(req, url), route.pathParams);
    this.#proxy(local, route.endpoint, raw);

    const subject = {
      userid: token.tokenId,
      privilegesAt: (p: string) => cluster.access.privilegesAt(token, p),
      taskOwner: (upid: string) => {
        const t = cluster.tasks.get(upid);
        return t && (t.tokenid ? `${t.user}!${t.tokenid}` : t.user);
      },
    };
    const permission = checkPermission(route.endpoint.permission, raw, subject);
    if (!permission.allowed) throw new PveError(403, permission.message);

    const decoded = decodeFormParams(route.endpoint, raw);
    if (!decoded.ok) throw new PveError(400, 'Parameter verification failed.', decoded.errors);
    const params = decoded.value as Record<string, unknown>;
    cluster.counters.recordCall(route.endpoint.name, typeof params['vmid'] === 'number' ? params['vmid'] : undefined);

    const handler = apiHandlers[route.endpoint.name];
    if (!handler) throw new PveError(501, `Method '${method} ${path}' not implemented`);
    const privilegesAt = cluster.access.privilegesFor(token);
    const ctx: HandlerContext<unknown> = {
      cluster,
      caller: { authid: token.tokenId },
      params,
      local,
      fingerprintOf: (node) => this.#certificate(node).fingerprint,
      can: (p, privs) => {
        const held = privilegesAt(p);
        return privs.some((x) => held.has(x));
      },
    };
    let result: unknown;
    try {
      result = await (handler as Handler<never>)(ctx as never);
    } finally {
      if (fault?.kind === 'reset-after') req.socket.destroy();
    }
    if (req.socket.destroyed) return;
    const body = result instanceof Envelope ? result.body : { data: result ?? null };
    send(res, 200, 'OK', JSON.stringify(body));
  }

  async #authenticate(req: IncomingMessage): Promise<ApiToken> {
    const header = req.headers.authorization;
    if (!header) throw new PveError(401, 'No ticket');
    const token = this.cluster.access.authenticate(header);
    if (token) return token;
    await delay(this.options.authFailureDelayMs);
    throw new AuthenticationFailed();
  }

  /** Node-local calls go to their node; an unreachable node is PVE's 595. */
  #proxy(local: string, endpoint: Endpoint, raw: Record<string, unknown>): void {
    if (!endpoint.path.includes('{node}')) return;
    const name = String(raw['node']);
    const node = this.cluster.state.nodes.get(name);
    if (!node) {
      throw new PveError(
        500,
        `hostname lookup '${name}' failed - failed to get address info for: ${name}: Name or service not known`,
      );
    }
    if (name !== local && !node.online) throw new PveError(595, 'No route to host');
  }
}

/** PVE answers a bad token with 401 and an empty body. */
class AuthenticationFailed extends PveError {
  constructor() {
    super(401, 'Authentication failed!');
  }
}
