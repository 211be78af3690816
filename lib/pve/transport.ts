/**
 * HTTPS to the PVE API: token auth, PVE's encodings and envelope, error mapping, verified TLS,
 * one keep-alive pool per node and failover between nodes.
 *
 * Any node answers for the whole cluster (pveproxy forwards `/nodes/{node}/...` to the right
 * one), so a request goes to the last node that answered and moves on only when a node cannot
 * be connected to. It never moves on after PVE answered, nor after the request may have been
 * written, so a POST is never sent twice.
 */
import type { TLSSocket } from 'node:tls';
import { buildConnector, fetch, Pool } from 'undici';
import type { WireRequest } from './endpoint.js';
import {
  PveApiError,
  PveError,
  PveAuthError,
  PvePermissionError,
  PveTlsError,
  PveUnavailableError,
  PveValidationError,
  type PveRequestInfo,
} from './errors.js';

export interface PveNodeAddress {
  name: string;
  host: string;
  port: number;
  /** SHA-256 fingerprint of this node's own certificate; overrides `PveTlsOptions.fingerprint`. */
  fingerprint?: string;
}

export interface PveTlsOptions {
  /** PEM of the CA that signed the nodes' certificates. */
  ca?: string;
  /** SHA-256 fingerprint of a leaf certificate every node presents, `AB:CD:...` (any case). */
  fingerprint?: string;
  /** Skip verification. Warned about loudly; never a default. */
  insecure?: boolean;
}

export interface PveCredential {
  /** `user@realm!tokenid` */
  tokenId: string;
  secret: string;
}

export interface PveEnvelope {
  data: unknown;
  /** Present on paged answers such as task logs. */
  total?: number;
}

export interface PveTransport {
  send(req: WireRequest): Promise<PveEnvelope>;
  close(): Promise<void>;
}

export interface HttpTransportOptions {
  nodes: readonly PveNodeAddress[];
  tls: PveTlsOptions;
  credential: PveCredential;
  /** Whole-request timeout per attempt. */
  timeoutMs?: number;
  /** TCP+TLS connect timeout per node; a node that does not connect in time is skipped. */
  connectTimeoutMs?: number;
  /** Node to try first (e.g. the one the caller expects to be up). */
  preferredNode?: string;
}

const TOKEN_ID_RE = /^[^\s:/]+@[A-Za-z][A-Za-z0-9.\-_]+![A-Za-z][A-Za-z0-9.\-_]+$/;
const SECRET_RE = /^[\x21-\x7e]+$/;

/** Errors raised before a request could be written: the next node may be tried. */
const CONNECT_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
]);

class TlsPinMismatch extends Error {
  readonly code = 'PVE_TLS_PIN_MISMATCH';
}

let insecureWarned = false;

function warnInsecure(nodes: readonly PveNodeAddress[]): void {
  if (insecureWarned) return;
  insecureWarned = true;
  console.warn(
    `WARNING: TLS verification to PVE is DISABLED (tls.insecure: true) for ${nodes.map((n) => n.host).join(', ')}. ` +
      "Anyone on the network path can read the API token. Pin each node's tls_fingerprint or set tls.ca_file instead.",
  );
}

/**
 * Connections are verified during the handshake, before undici writes anything: a CA chain
 * through Node's own checks, a pinned fingerprint by comparing the leaf certificate on every
 * new connection (TLS session reuse is off so each connection presents its certificate).
 */
function connectorFor(tls: PveTlsOptions, node: PveNodeAddress, connectTimeoutMs: number): buildConnector.connector {
  const pin = (node.fingerprint ?? tls.fingerprint)?.toUpperCase();
  const base = buildConnector({
    timeout: connectTimeoutMs,
    maxCachedSessions: 0,
    ...(tls.ca ? { ca: tls.ca, rejectUnauthorized: true } : { rejectUnauthorized: !(pin || tls.insecure) }),
  });
  if (!pin) return base;
  return (options, callback) =>
    base(options, (err, socket) => {
      if (err) return callback(err, null);
      const offered = (socket as TLSSocket).getPeerCertificate().fingerprint256;
      if (offered !== pin) {
        socket!.destroy();
        return callback(
          new TlsPinMismatch(`certificate fingerprint ${offered ?? '(none)'} does not match the pinned ${pin}`),
          null,
        );
      }
      callback(null, socket!);
    });
}

function errorCode(err: unknown): string | undefined {
  const e = err as { code?: unknown; cause?: unknown } | undefined;
  if (typeof e?.code === 'string') return e.code;
  return e?.cause === undefined ? undefined : errorCode(e.cause);
}

function rootCause(err: unknown): Error | undefined {
  let e = err as { cause?: unknown } | undefined;
  while (e && e.cause !== undefined) e = e.cause as { cause?: unknown };
  return e instanceof Error ? e : undefined;
}

function isTlsVerificationError(err: unknown): boolean {
  const code = errorCode(err) ?? '';
  return (
    code === 'PVE_TLS_PIN_MISMATCH' ||
    code.startsWith('ERR_TLS_') ||
    /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code)
  );
}

function describeError(err: unknown): string {
  const root = rootCause(err);
  const code = errorCode(err);
  if (root?.name === 'TimeoutError') return 'timed out';
  return [code, root?.message].filter(Boolean).join(' ') || 'unknown error';
}

function pveMessage(body: unknown, statusText: string, status: number): string {
  const message = (body as { message?: unknown } | undefined)?.message;
  const text = typeof message === 'string' && message.trim() ? message : statusText;
  return text.trim() || `HTTP ${status}`;
}

export function createHttpTransport(opts: HttpTransportOptions): PveTransport {
  const { nodes, tls, credential } = opts;
  if (nodes.length === 0) throw new Error('PVE transport needs at least one node');
  if (!TOKEN_ID_RE.test(credential.tokenId)) {
    throw new Error(`PVE token id must look like user@realm!tokenid (got '${credential.tokenId}')`);
  }
  if (!SECRET_RE.test(credential.secret)) {
    throw new Error(`the secret of PVE token ${credential.tokenId} contains whitespace or control characters`);
  }
  const unverified = nodes.filter((n) => !tls.ca && !tls.fingerprint && !n.fingerprint);
  if (unverified.length > 0 && !tls.insecure) {
    throw new Error(
      `PVE TLS needs a CA (ca_file) or a pinned fingerprint for ${unverified.map((n) => n.name).join(', ')}; insecure must be chosen explicitly`,
    );
  }
  if (unverified.length > 0) warnInsecure(unverified);

  const timeoutMs = opts.timeoutMs ?? 30_000;
  const connectTimeoutMs = opts.connectTimeoutMs ?? Math.min(timeoutMs, 5_000);
  const authorization = `PVEAPIToken=${credential.tokenId}=${credential.secret}`;
  const origins = new Map(
    nodes.map((n) => [n.name, `https://${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`]),
  );
  // Idle connections are dropped well before pveproxy would close them, so a request is not
  // written onto a socket the server is closing (that would surface as "may have been sent").
  const pools = new Map(
    nodes.map((n) => [
      n.name,
      new Pool(origins.get(n.name)!, {
        connect: connectorFor(tls, n, connectTimeoutMs),
        keepAliveTimeout: 4_000,
        connections: 16,
      }),
    ]),
  );
  let preferred = Math.max(
    0,
    nodes.findIndex((n) => n.name === opts.preferredNode),
  );

  async function attempt(node: PveNodeAddress, req: WireRequest, info: PveRequestInfo): Promise<PveEnvelope> {
    const hasBody = req.method === 'POST' || req.method === 'PUT';
    const query = !hasBody && req.form.size > 0 ? `?${req.form.toString()}` : '';
    const headers: Record<string, string> = { authorization, accept: 'application/json' };
    if (hasBody) headers['content-type'] = 'application/x-www-form-urlencoded';

    const res = await fetch(`${origins.get(node.name)}/api2/json${req.path}${query}`, {
      method: req.method,
      headers,
      body: hasBody ? req.form.toString() : undefined,
      dispatcher: pools.get(node.name),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    let body: unknown;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = undefined;
    }
    return interpret(res.status, res.statusText, body, info, credential.tokenId);
  }

  return {
    async send(req) {
      const info: PveRequestInfo = { method: req.method, path: req.path };
      const tried: string[] = [];
      for (let i = 0; i < nodes.length; i++) {
        const index = (preferred + i) % nodes.length;
        const node = nodes[index]!;
        try {
          const envelope = await attempt(node, req, info);
          preferred = index;
          return envelope;
        } catch (err) {
          if (err instanceof PveError) throw err;
          if (isTlsVerificationError(err))
            throw new PveTlsError(info, `${node.name} (${node.host})`, describeError(err));
          const code = errorCode(err);
          if (code !== undefined && CONNECT_ERROR_CODES.has(code)) {
            tried.push(`${node.name}: ${describeError(err)}`);
            continue;
          }
          throw new PveUnavailableError(info, `${node.name}: ${describeError(err)}`, { requestMayHaveBeenSent: true });
        }
      }
      throw new PveUnavailableError(info, `no node could be reached (${tried.join('; ')})`, {
        requestMayHaveBeenSent: false,
      });
    },
    async close() {
      await Promise.all([...pools.values()].map((p) => p.close()));
    },
  };
}

/** PVE's answer as data or a typed error. PVE 8 before http-server 5.2 sent only the reason phrase. */
function interpret(
  status: number,
  statusText: string,
  body: unknown,
  info: PveRequestInfo,
  tokenId: string,
): PveEnvelope {
  if (status >= 200 && status < 300) {
    const envelope = body as { data?: unknown; total?: unknown } | undefined;
    if (envelope === undefined || typeof envelope !== 'object' || !('data' in envelope)) {
      throw new PveApiError(info, status, 'answer is not a PVE {"data": ...} envelope');
    }
    return typeof envelope.total === 'number'
      ? { data: envelope.data, total: envelope.total }
      : { data: envelope.data };
  }
  const message = pveMessage(body, statusText, status);
  switch (status) {
    case 400: {
      const errors = (body as { errors?: unknown } | undefined)?.errors;
      return throwing(new PveValidationError(info, message, isStringRecord(errors) ? errors : {}));
    }
    case 401:
      return throwing(new PveAuthError(info, tokenId, message));
    case 403:
      return throwing(new PvePermissionError(info, message));
    case 502:
    case 503:
    case 504:
    case 596:
      return throwing(new PveUnavailableError(info, `${status} ${message}`, { status, requestMayHaveBeenSent: true }));
    case 595:
      // pveproxy could not connect to the node that owns the path: nothing ran there.
      return throwing(new PveUnavailableError(info, `${status} ${message}`, { status, requestMayHaveBeenSent: false }));
    default:
      return throwing(new PveApiError(info, status, message));
  }
}

function throwing(err: Error): never {
  throw err;
}

function isStringRecord(v: unknown): v is Record<string, string> {
  return typeof v === 'object' && v !== null && Object.values(v).every((x) => typeof x === 'string');
}
