/**
 * The worker's dependencies, built once from configuration. Credentials are resolved here,
 * inside the worker process, and reach activities only as ready-made clients.
 */
import type { AppConfig } from '../lib/config/schema.js';
import { createAuditLog, type AuditLog } from '../lib/audit/log.js';
import { createPveClientForEnvironment, type PveClient } from '../lib/pve/client.js';
import { resolveSecret } from '../lib/config/secrets.js';
import type { SshTarget } from '../lib/ssh/client.js';

export interface WorkerDeps {
  config: AppConfig;
  /** The Proxmox client of an environment, created on first use and then shared. */
  pve: (environment: string) => Promise<PveClient>;
  audit: AuditLog;
  /** How to reach a node over SSH: its pinned host key and the configured private key. */
  sshTarget: (environment: string, node: string) => Promise<SshTarget>;
}

export class SshNotConfiguredError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SshNotConfiguredError';
  }
}

export class UnknownEnvironmentError extends Error {
  constructor(environment: string, known: string[]) {
    super(`unknown environment '${environment}' (configured: ${known.join(', ')})`);
    this.name = 'UnknownEnvironmentError';
  }
}

export function buildWorkerDeps(config: AppConfig): WorkerDeps {
  // Own keys only: a workflow input naming `constructor` or `__proto__` is not an environment.
  const configured = (environment: string) =>
    Object.hasOwn(config.environments, environment) ? config.environments[environment] : undefined;
  const clients = new Map<string, Promise<PveClient>>();
  const pve = (environment: string) => {
    const env = configured(environment);
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
  const sshTarget = async (environment: string, nodeName: string): Promise<SshTarget> => {
    const env = configured(environment);
    if (!env) throw new UnknownEnvironmentError(environment, Object.keys(config.environments));
    const node = env.cluster.nodes.find((n) => n.name === nodeName);
    if (!node) throw new SshNotConfiguredError(`node '${nodeName}' is not in environment '${environment}'`);
    if (!node.ssh_host_key) {
      throw new SshNotConfiguredError(
        `node '${nodeName}' has no ssh_host_key: pin it (ssh-keyscan ${node.host} | ssh-keygen -lf -)`,
      );
    }
    if (!env.credentials.ssh_key) {
      throw new SshNotConfiguredError(`environment '${environment}' has no credentials.ssh_key`);
    }
    return {
      host: node.host,
      port: node.ssh_port,
      username: env.credentials.ssh_user,
      privateKey: await resolveSecret(env.credentials.ssh_key),
      hostKeySha256: node.ssh_host_key,
    };
  };
  return { config, pve, sshTarget, audit: createAuditLog(config.audit.path) };
}
