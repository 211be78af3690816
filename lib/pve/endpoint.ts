/**
 * What one PVE API call is: its method, path, parameters, answer, permission check and whether
 * it starts a task. One definition serves the client (builds and checks requests, types
 * answers) and the simulator (verifies incoming requests and permissions). The definitions
 * live with their API resource (lib/pve/<resource>/endpoints.ts); registry.ts lists them all.
 *
 * Names, types, enums and optional flags follow the official PVE 9.1 schema;
 * test/unit/pve-schema-crosscheck.test.ts holds every definition against it. Config-style
 * endpoints (create, config) carry the subset of PVE's properties we use; every property
 * present is as PVE defines it.
 */
import { z } from 'zod';
import { InvalidRequestError } from './errors.js';
import { decodeParams, encodeValue, type DecodeResult } from './params.js';
import type { PermissionCheck } from './permissions.js';
import { parseUpid } from './upid.js';

export type Method = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface Endpoint<
  P extends z.ZodObject = z.ZodObject,
  R extends z.ZodType = z.ZodType,
  N extends string = string,
> {
  /** The call's name everywhere: runbooks' `api:`, the simulator's handlers and counters, error messages. */
  name: N;
  method: Method;
  /** PVE path below /api2/json, with `{param}` placeholders that are also members of `params`. */
  path: string;
  params: P;
  returns: R;
  permission: PermissionCheck;
  /**
   * Why `permission` is stricter than the schema's `user: all` (the check PVE runs inside the
   * handler rather than declaratively); required whenever it is.
   */
  permissionNote?: string;
  /** Returns a UPID to wait on (lib/pve/tasks/wait.ts). */
  async: boolean;
}

/** What a caller passes to a call. */
export type ParamsOfEndpoint<E extends Endpoint> = z.input<E['params']>;
/** What a call returns to the client, after parsing. */
export type ResultOfEndpoint<E extends Endpoint> = z.output<E['returns']>;

interface EndpointDef<S extends z.ZodRawShape, R extends z.ZodType, N extends string> extends Omit<
  Endpoint<z.ZodObject, R, N>,
  'params'
> {
  params: S;
}

export function defineEndpoint<S extends z.ZodRawShape, R extends z.ZodType, N extends string>(
  def: EndpointDef<S, R, N>,
): Endpoint<z.ZodObject<S, z.core.$strict>, R, N> {
  for (const [, name] of def.path.matchAll(/\{(\w+)\}/g)) {
    if (!(name! in def.params)) throw new Error(`${def.name}: path parameter {${name}} is not among its params`);
  }
  return { ...def, params: z.strictObject(def.params) };
}

// ---------------------------------------------------------------------------------------------
// Answer building blocks. PVE often renders booleans as 0/1 and adds fields over time, so
// answer objects are loose and booleans accept both spellings.

export const pveBoolean = z.union([z.boolean(), z.literal(0), z.literal(1)]).transform(Boolean);

export const UpidString = z.string().refine((s) => parseUpid(s) !== undefined, { message: 'must be a PVE UPID' });

// ---------------------------------------------------------------------------------------------
// Permission checks as the schema states them.

export const perm = (
  path: string,
  privs: string[],
  opts: { any?: boolean; requireParam?: string } = {},
): PermissionCheck => ({ kind: 'perm', path, privs, ...opts });

export const userAll: PermissionCheck = { kind: 'user-all' };

// ---------------------------------------------------------------------------------------------
// Requests.

/** Verifies raw request parameters (form/query strings or a JSON body, path parameters merged in) as PVE does. */
export function decodeFormParams<E extends Endpoint>(
  endpoint: E,
  raw: Readonly<Record<string, unknown>>,
): DecodeResult<z.output<E['params']>> {
  return decodeParams(endpoint.params, raw) as DecodeResult<z.output<E['params']>>;
}

export interface WireRequest {
  method: Method;
  /** Path below /api2/json, parameters substituted and URI-encoded. */
  path: string;
  /** Remaining parameters as PVE reads them: query string for GET/DELETE, form body for POST/PUT. */
  form: URLSearchParams;
}

/**
 * The wire form of a call. The encoded parameters are verified with the same rules the server
 * applies, so a request PVE would reject fails here, naming the parameter, before it is sent.
 */
export function buildRequest<E extends Endpoint>(endpoint: E, params: z.input<E['params']>): WireRequest {
  const strings: Record<string, string> = {};
  for (const [k, v] of Object.entries(params as Record<string, unknown>)) {
    if (v === undefined) continue;
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') {
      throw new InvalidRequestError(endpoint, { [k]: `cannot send a ${typeof v}` });
    }
    strings[k] = encodeValue(v);
  }
  const checked = decodeFormParams(endpoint, strings);
  if (!checked.ok) throw new InvalidRequestError(endpoint, checked.errors);

  const form = new URLSearchParams();
  const pathParams = new Set<string>();
  const path = endpoint.path.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = strings[name];
    if (value === undefined) throw new InvalidRequestError(endpoint, { [name]: 'path parameter is missing' });
    pathParams.add(name);
    return encodeURIComponent(value);
  });
  for (const [k, v] of Object.entries(strings)) if (!pathParams.has(k)) form.append(k, v);
  return { method: endpoint.method, path, form };
}
