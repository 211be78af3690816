/**
 * Probes. `/healthz`: the process is up. `/readyz`: Temporal answers, and every environment's
 * Proxmox API answers with its configured token — reported per node as ok, unauthorized
 * (the token is refused) or unreachable.
 */
import type { z } from 'zod';
import type { Services } from '../deps.js';
import type { Route } from '../route.js';
import { Liveness, Readiness } from '../schemas.js';

type ReadinessReport = z.infer<typeof Readiness>;

function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export function healthRoutes(s: Services): Route[] {
  const temporalReady = async (): Promise<ReadinessReport['temporal']> => {
    try {
      const deadline = Date.now() + s.timeouts.readinessMs;
      await s.temporal.client.withDeadline(deadline, () => s.temporal.client.workflowService.getSystemInfo({}));
      return { status: 'ok' };
    } catch {
      return { status: 'unreachable', detail: `Temporal did not answer within ${s.timeouts.readinessMs} ms` };
    }
  };

  const environmentReady = async (name: string): Promise<ReadinessReport['environments'][string]> => {
    const configured = s.config.environments[name]!.cluster.nodes.map((n) => n.name);
    let nodes: ReadinessReport['environments'][string]['nodes'];
    try {
      nodes = await withTimeout(s.proxmox.ping(name), s.timeouts.readinessMs, `the Proxmox API of ${name}`);
    } catch (err) {
      const detail = err instanceof Error ? err.message : 'check failed';
      nodes = configured.map((node) => ({ node, status: 'unreachable' as const, detail }));
    }
    const ok = nodes.filter((n) => n.status === 'ok').length;
    return { status: ok === nodes.length && ok > 0 ? 'ok' : ok > 0 ? 'degraded' : 'unavailable', nodes };
  };

  return [
    {
      method: 'GET',
      path: '/healthz',
      tag: 'health',
      summary: 'The API process is up',
      access: 'public',
      responses: { 200: { description: 'up', schema: Liveness } },
      handler: async (c) => c.json({ status: 'ok' } satisfies z.infer<typeof Liveness>),
    },
    {
      method: 'GET',
      path: '/readyz',
      tag: 'health',
      summary: 'Temporal and every environment’s Proxmox API are reachable',
      description:
        'Ready when Temporal answers and every environment has at least one node answering with its token. ' +
        'A node that refuses the token is reported `unauthorized`; one that does not answer, `unreachable`.',
      access: 'public',
      responses: {
        200: { description: 'ready', schema: Readiness },
        503: { description: 'not ready; the body says what is missing', schema: Readiness },
      },
      handler: async (c) => {
        const names = Object.keys(s.config.environments);
        const [temporal, ...environments] = await Promise.all([temporalReady(), ...names.map(environmentReady)]);
        const report: ReadinessReport = {
          status: 'ready',
          temporal,
          environments: Object.fromEntries(names.map((name, i) => [name, environments[i]!])),
        };
        const ready = temporal.status === 'ok' && environments.every((e) => e!.status !== 'unavailable');
        report.status = ready ? 'ready' : 'not-ready';
        return c.json(report, ready ? 200 : 503);
      },
    },
  ];
}
