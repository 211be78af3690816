/** A bare HTTPS client for speaking to the simulator the way any PVE client would. */
import { request } from 'node:https';
import type { SimulatedCluster } from '../../sim/index.js';

export interface Reply {
  status: number;
  reason: string;
  text: string;
  /** Parsed body, when it is JSON. */
  body: { data?: unknown; message?: string; errors?: Record<string, string>; total?: number } | undefined;
}

export interface CallOptions {
  /** Authorization header value; none when undefined. */
  auth?: string;
  /** Form body (POST/PUT). */
  form?: Record<string, string>;
  json?: unknown;
  /** Node whose listener to call (default: the first). */
  via?: string;
}

export const tokenAuth = (sim: SimulatedCluster, tokenId: string) => {
  const t = sim.tokens.find((x) => x.tokenId === tokenId);
  if (!t) throw new Error(`no token ${tokenId}`);
  return `PVEAPIToken=${t.tokenId}=${t.secret}`;
};

export function call(sim: SimulatedCluster, method: string, path: string, opts: CallOptions = {}): Promise<Reply> {
  const node = opts.via ? sim.nodes.find((n) => n.name === opts.via)! : sim.nodes[0]!;
  const payload =
    opts.json !== undefined
      ? JSON.stringify(opts.json)
      : opts.form
        ? new URLSearchParams(opts.form).toString()
        : undefined;
  const headers: Record<string, string> = {};
  if (opts.auth !== undefined) headers['Authorization'] = opts.auth;
  if (payload !== undefined)
    headers['Content-Type'] = opts.json !== undefined ? 'application/json' : 'application/x-www-form-urlencoded';
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: node.host,
        port: node.port,
        method,
        path: path.startsWith('/_sim') ? path : `/api2/json${path}`,
        ca: sim.caPem,
        headers,
        agent: false,
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', () => {
          let body: Reply['body'];
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = undefined;
          }
          resolve({ status: res.statusCode!, reason: res.statusMessage ?? '', text, body });
        });
      },
    );
    req.on('error', reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** Polls a task over the API until it stops. */
export async function waitForTask(sim: SimulatedCluster, auth: string, upid: string): Promise<Record<string, unknown>> {
  const node = upid.split(':')[1]!;
  for (let i = 0; i < 500; i++) {
    const reply = await call(sim, 'GET', `/nodes/${node}/tasks/${encodeURIComponent(upid)}/status`, {
      auth,
      via: node,
    });
    const status = reply.body?.data as Record<string, unknown> | undefined;
    if (status?.['status'] === 'stopped') return status;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`task ${upid} did not stop`);
}
