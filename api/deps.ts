/**
 * What the API is built from. Everything it touches outside its own process comes in here,
 * so tests build the app with the real Temporal dev server or with fakes, and main.ts with
 * the configured environments.
 */
import type { PveClient } from '../lib/pve/client.js';
import type { Client } from '@temporalio/client';
import type { AuditLog } from '../lib/audit/log.js';
import type { AppConfig } from '../lib/config/schema.js';
import type { Inventory } from '../lib/inventory.js';

export interface NodeReachability {
  node: string;
  /** ok: answered 200 with the environment's token; unauthorized: 401/403; unreachable: no answer. */
  status: 'ok' | 'unauthorized' | 'unreachable';
  detail?: string;
}

/**
 * The read-only view of Proxmox the API needs. Changes never go through here: they are
 * workflows. Implementations resolve credentials themselves and never put them in errors.
 */
export interface ReadOnlyProxmox {
  /** Nodes and guests, from one `GET /cluster/resources`. */
  inventory(environment: string): Promise<Inventory>;
  /** Every configured node of the environment, asked for its version with the environment's token. */
  ping(environment: string): Promise<NodeReachability[]>;
  /** The environment's client, for read-only routes (node health, storage listings). */
  client(environment: string): Promise<PveClient>;
}

export interface ApiTimeouts {
  /** How long an approval waits for the workflow's answer before falling back to a signal. */
  updateMs: number;
  /** How long the status query may take (it needs a worker). */
  queryMs: number;
  /** How long a dry run waits for its plan before answering 202. */
  dryRunMs: number;
  /** Per readiness check (Temporal, each environment). */
  readinessMs: number;
}

export interface ApiDeps {
  config: AppConfig;
  temporal: { client: Client; taskQueue: string; uiUrl: string; namespace: string };
  audit: AuditLog;
  proxmox: ReadOnlyProxmox;
  now?: () => Date;
  timeouts?: Partial<ApiTimeouts>;
  /** Server-side log for unexpected failures; stderr by default. */
  log?: (line: string) => void;
}

/** ApiDeps with every default filled in. */
export interface Services extends Required<Omit<ApiDeps, 'timeouts'>> {
  timeouts: ApiTimeouts;
}
