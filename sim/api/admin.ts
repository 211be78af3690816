/**
 * The simulator's own control endpoints on every listener, outside PVE's API and authorised
 * with a separate bearer secret: counters, faults, clock.
 *
 *   GET    /_sim/counters            calls per endpoint, tasks per type, SSH commands
 *   DELETE /_sim/counters            reset them
 *   GET    /_sim/faults              current faults
 *   POST   /_sim/faults              add faults (JSON, see AdminFaults)
 *   DELETE /_sim/faults              clear faults, bring nodes back online
 *   GET    /_sim/clock               {now, speed}
 *   PUT    /_sim/clock               {speed}
 *   GET    /_sim/downloads           the scenario's downloads: url, size, sha256, sha512
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Cluster } from '../cluster.js';
import { offeredDownloads } from '../downloads.js';
import { PveError } from '../errors.js';

const AdminFaults = z.strictObject({
  api_error_rate: z.number().min(0).max(1).optional(),
  api_error_status: z.number().int().min(500).max(599).optional(),
  latency_ms: z.number().min(0).optional(),
  reset_rate: z.number().min(0).max(1).optional(),
  fail_calls: z
    .array(
      z.strictObject({
        kind: z.enum(['error', 'reset', 'reset-after']),
        match: z.string().optional(),
        status: z.number().int().min(400).max(599).optional(),
        message: z.string().optional(),
        times: z.number().int().min(1).default(1),
      }),
    )
    .default([]),
  task_failures: z
    .array(
      z.strictObject({
        type: z.string().min(1),
        vmid: z.number().int().optional(),
        message: z.string().optional(),
        when: z.enum(['before', 'after']).default('before'),
        times: z.number().int().min(1).optional(),
      }),
    )
    .default([]),
  offline_nodes: z.array(z.string()).default([]),
  online_nodes: z.array(z.string()).default([]),
});

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function authorised(req: IncomingMessage, secret: string): boolean {
  const given = Buffer.from(req.headers.authorization ?? '');
  const expected = Buffer.from(`Bearer ${secret}`);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

async function jsonBody(readBody: () => Promise<string>): Promise<unknown> {
  const text = await readBody();
  try {
    return text ? JSON.parse(text) : {};
  } catch {
    throw new PveError(400, 'body is not JSON');
  }
}

export async function handleAdmin(
  cluster: Cluster,
  secret: string,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  readBody: () => Promise<string>,
): Promise<void> {
  if (!authorised(req, secret))
    return reply(res, 401, { error: 'admin secret required (Authorization: Bearer <secret>)' });
  const route = `${req.method} ${url.pathname}`;
  switch (route) {
    case 'GET /_sim/counters':
      return reply(res, 200, { data: cluster.counters.snapshot() });
    case 'DELETE /_sim/counters':
      cluster.counters.reset();
      return reply(res, 200, { data: null });
    case 'GET /_sim/faults':
      return reply(res, 200, { data: cluster.faults.snapshot() });
    case 'DELETE /_sim/faults':
      await cluster.faults.clear();
      return reply(res, 200, { data: null });
    case 'POST /_sim/faults': {
      const parsed = AdminFaults.safeParse(await jsonBody(readBody));
      if (!parsed.success) {
        return reply(res, 400, {
          errors: parsed.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`),
        });
      }
      const f = parsed.data;
      for (const node of [...f.offline_nodes, ...f.online_nodes]) {
        if (!cluster.state.nodes.has(node))
          return reply(res, 400, { errors: [`offline_nodes: unknown node '${node}'`] });
      }
      cluster.faults.setApi({
        ...(f.api_error_rate !== undefined ? { errorRate: f.api_error_rate } : {}),
        ...(f.api_error_status !== undefined ? { errorStatus: f.api_error_status } : {}),
        ...(f.latency_ms !== undefined ? { latencyMs: f.latency_ms } : {}),
        ...(f.reset_rate !== undefined ? { resetRate: f.reset_rate } : {}),
      });
      for (const c of f.fail_calls) cluster.faults.failCalls(c);
      for (const t of f.task_failures) cluster.faults.failTask(t);
      // Answer first: taking this very listener's node offline closes the connection.
      reply(res, 200, { data: cluster.faults.snapshot() });
      for (const node of f.online_nodes) await cluster.faults.nodeOnline(node);
      for (const node of f.offline_nodes) await cluster.faults.nodeOffline(node);
      return;
    }
    case 'GET /_sim/clock':
      return reply(res, 200, { data: { now: cluster.clock.now(), speed: cluster.clock.speed } });
    case 'PUT /_sim/clock': {
      const parsed = z.strictObject({ speed: z.number().positive() }).safeParse(await jsonBody(readBody));
      if (!parsed.success) return reply(res, 400, { errors: ['speed: must be a positive number'] });
      cluster.clock.setSpeed(parsed.data.speed);
      return reply(res, 200, { data: { now: cluster.clock.now(), speed: cluster.clock.speed } });
    }
    case 'GET /_sim/downloads':
      return reply(res, 200, { data: offeredDownloads(cluster.state.downloads) });
    default:
      return reply(res, 404, { error: `no admin route ${route}` });
  }
}
