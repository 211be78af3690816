/**
 * The worker's dependencies, built once from configuration. Credentials are resolved here,
 * inside the worker process, and reach activities only as ready-made clients.
 */
import type { AppConfig } from '../lib/config/schema.js';
import { createAuditLog, type AuditLog } from '../lib/audit/log.js';
import { createPveClientForEnvironment, type PveClient } from '../lib/pve/client.js';

export interface WorkerDeps {
  config: AppConfig;
  /** The Proxmox client of an environment, created on first use and then shared. */
  pve: (environment: string) => Promise<PveClient>;
  audit: AuditLog;
}

export class UnknownEnvironmentError extends Error {
  constructor(environment: string, known: string[]) {
    super(`unknown environment '${environment}' (configured: ${known.join(', ')})`);
    this.name = 'UnknownEnvironmentError';
  }
}

export function buildWorkerDeps(config: AppConfig): WorkerDeps {
  const clients = new Map<string, Promise<PveClient>>();
  const pve = (environment: string) => {
    const env = config.environments[environment];
    if (!env) return Promise.reject(new UnknownEnvironmentError(environment, Object.keys(config.environments)));
    let client = clients.get(environment);
    if (!client) {
      client = createPveClientForEnvironment(env);
      // A failed credential lookup should be retried on the next call, not cached.
      client.catch(() => clients.delete(environment));
      clients.set(environment, client);
    }
    return client;
  };
  return { config, pve, audit: createAuditLog(config.audit.path) };
}
