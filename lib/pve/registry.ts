/**
 * Every PVE API call the project makes, by name: the one list runbooks (`api: <name>`), the
 * role computation (lib/rbac.ts) and the simulator's router read. The calls themselves are
 * defined beside their API resource, lib/pve/<resource>/endpoints.ts.
 */
import type { z } from 'zod';
import { access } from './access/endpoints.js';
import { backup } from './backup/endpoints.js';
import { cluster } from './cluster/endpoints.js';
import type { Endpoint } from './endpoint.js';
import { ha } from './ha/endpoints.js';
import { lxc } from './lxc/endpoints.js';
import { nodes } from './nodes/endpoints.js';
import { pools } from './pools/endpoints.js';
import { qemu } from './qemu/endpoints.js';
import { storage, storageConfig } from './storage/endpoints.js';
import { tasks } from './tasks/endpoints.js';

const resources = { cluster, ha, nodes, tasks, qemu, lxc, storage, storageConfig, backup, access, pools };

type Resources = typeof resources;
type AnyEndpoint = { [R in keyof Resources]: Resources[R][keyof Resources[R]] }[keyof Resources];

export type Endpoints = { [E in AnyEndpoint as E['name']]: E };
export type EndpointName = keyof Endpoints;
export type ParamsOf<N extends EndpointName> = z.input<Endpoints[N]['params']>;
/** What a call returns to the client, after parsing. */
export type ResultOf<N extends EndpointName> = z.output<Endpoints[N]['returns']>;
/** What PVE (or the simulator) puts in `data` for a call. */
export type AnswerOf<N extends EndpointName> = z.input<Endpoints[N]['returns']>;

function byName(): Endpoints {
  const named: Record<string, Endpoint> = {};
  for (const endpoint of Object.values(resources).flatMap((r) => Object.values(r) as Endpoint[])) {
    if (named[endpoint.name]) throw new Error(`two PVE endpoints are named ${endpoint.name}`);
    named[endpoint.name] = endpoint;
  }
  return named as Endpoints;
}

export const endpoints = byName();

const routes = Object.values(endpoints).map((endpoint: Endpoint) => {
  const names: string[] = [];
  const source = endpoint.path.replace(/\{(\w+)\}/g, (_, name: string) => {
    names.push(name);
    return '([^/]+)';
  });
  return { endpoint, re: new RegExp(`^${source}$`), names };
});

/**
 * The endpoint a request addresses and its decoded path parameters, for the server side.
 * Undefined means PVE would answer 501 `Method '<METHOD> <path>' not implemented`.
 */
export function matchEndpoint(
  method: string,
  path: string,
): { endpoint: Endpoint; pathParams: Record<string, string> } | undefined {
  for (const route of routes) {
    if (route.endpoint.method !== method) continue;
    const m = route.re.exec(path);
    if (!m) continue;
    const pathParams = Object.fromEntries(route.names.map((n, i) => [n, decodeURIComponent(m[i + 1]!)]));
    return { endpoint: route.endpoint, pathParams };
  }
  return undefined;
}
