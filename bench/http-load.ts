/**
 * Closed-loop HTTP load: N keep-alive connections each sending requests back to back for a
 * fixed time. Used by bench:load and by the production check, so their figures compare.
 */
import type { Pool } from 'undici';
import { percentile } from '../testkit/stack/stack.js';

export interface LoadFigures {
  endpoint: string;
  requests: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
}

export interface LoadRequest {
  path: string;
  token: string;
  label: string;
  connections: number;
  seconds: number;
  /** Sent with every request besides the token (e.g. If-None-Match). */
  headers?: Record<string, string>;
}

/** Every answer but a 2xx or a 304 (not modified), and every connection error, counts as an error. */
export async function hammer(pool: Pool, request: LoadRequest): Promise<LoadFigures> {
  const latencies: number[] = [];
  let errors = 0;
  const deadline = performance.now() + request.seconds * 1000;
  const began = performance.now();
  await Promise.all(
    Array.from({ length: request.connections }, async () => {
      while (performance.now() < deadline) {
        const t = performance.now();
        try {
          const { statusCode, body } = await pool.request({
            method: 'GET',
            path: request.path,
            headers: { ...request.headers, authorization: `Bearer ${request.token}` },
          });
          await body.dump();
          if ((statusCode < 200 || statusCode >= 300) && statusCode !== 304) errors++;
        } catch {
          errors++;
        }
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsedS = (performance.now() - began) / 1000;
  return {
    endpoint: request.label,
    requests: latencies.length,
    rps: Math.round(latencies.length / elapsedS),
    p50Ms: Number(percentile(latencies, 50).toFixed(1)),
    p99Ms: Number(percentile(latencies, 99).toFixed(1)),
    errors,
  };
}
