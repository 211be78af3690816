/**
 * PVE's parameter types, as zod schemas that also remember PVE's own description of them.
 *
 * Every parameter of lib/pve/<resource>/endpoints.ts is built here, so one definition yields both the
 * TypeScript type the client works with and PVE's verification rules (pve-common
 * JSONSchema.pm): the client checks what it is about to put on the wire, the simulator checks
 * what arrived, and both produce PVE's exact messages.
 */
import { z } from 'zod';
import { namedFormats } from './formats/named.js';
import {
  propertyKeys,
  PropertyStringSyntaxError,
  splitPropertyString,
  type PropertyFormat,
} from './property-string.js';

export type PveParamType = 'integer' | 'number' | 'boolean' | 'string';

/** PVE's schema for one parameter, in PVE's own vocabulary (compared against the official schema in tests). */
export interface PveParamSpec {
  type: PveParamType;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  enum?: readonly string[];
  /** PVE's regex, unanchored, as the schema states it; PVE anchors it with ^...$. */
  pattern?: string;
  /** A named PVE format (`pve-node`, `pve-configid-list`, ...) or the keys of a property string. */
  format?: string | PropertyFormat;
  /** Another parameter that must be present when this one is. */
  requires?: string;
  /** A password: never shown in a plan, a log or an answer (not part of PVE's schema). */
  secret?: boolean;
}

export const pveParamSpecs = z.registry<PveParamSpec>();

/** PVE's split_list: items separated by whitespace, commas, semicolons or NULs. */
function splitList(value: string): string[] {
  return value.split(/[\s,;\0]+/).filter(Boolean);
}

/**
 * pve-common check_format: the message PVE gives when `value` does not have `format`, or
 * undefined when it does (or the format is not verified here). `path` names the value in
 * messages about the keys of a property string (`net0.macaddr`).
 */
export function checkFormat(format: string | PropertyFormat, value: string, path: string): string | undefined {
  if (typeof format !== 'string') return checkPropertyString(format, value, path);
  const list = /^(.*)-a?list$/.exec(format);
  const named = namedFormats[list ? list[1]! : format];
  if (!named) return undefined;
  if ('properties' in named) return checkPropertyString(named.properties, value, path);
  for (const item of list ? splitList(value) : [value]) {
    const error = named.check(item);
    if (error) return error;
  }
  return undefined;
}

/**
 * parse_property_string with check_object: a value that is no property string of the format
 * gets PVE's one-line reason; bad keys give `format error` followed by one `<path>.<key>:
 * <reason>` line per key.
 */
function checkPropertyString(format: PropertyFormat, value: string, path: string): string | undefined {
  let values: Record<string, string>;
  try {
    values = splitPropertyString(format, value);
  } catch (err) {
    if (err instanceof PropertyStringSyntaxError) return err.message;
    throw err;
  }
  const lines: string[] = [];
  for (const [name, spec] of propertyKeys(format).sort(([a], [b]) => a.localeCompare(b))) {
    const at = path ? `${path}.${name}` : name;
    const raw = values[name];
    if (raw === undefined) {
      if (spec.optional !== true) lines.push(`${at}: property is missing and it is not optional`);
      continue;
    }
    const result = verify(spec, raw, at);
    if ('error' in result) lines.push(`${at}: ${result.error}`);
  }
  return lines.length > 0 ? ['format error', ...lines].join('\n') : undefined;
}

/** PVE patterns use Perl syntax in places (`(?^:...)`); this is the JavaScript equivalent, anchored as PVE anchors it. */
export function pveRegex(pattern: string): RegExp {
  // Perl also reads `{,N}` as `{0,N}`.
  return new RegExp(`^(?:${pattern.replaceAll('(?^:', '(?:').replaceAll('{,', '{0,')})$`);
}

function register<T extends z.ZodType>(schema: T, spec: PveParamSpec): T {
  pveParamSpecs.add(schema, spec);
  return schema;
}

interface NumberOpts {
  minimum?: number;
  maximum?: number;
  format?: string;
}

interface StringOpts {
  format?: string | PropertyFormat;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  requires?: string;
  secret?: boolean;
}

/** Builders for parameters; `.optional()` is applied by the caller exactly where PVE's schema says optional. */
export const pve = {
  integer(opts: NumberOpts = {}) {
    let s = z.int();
    if (opts.minimum !== undefined) s = s.min(opts.minimum);
    if (opts.maximum !== undefined) s = s.max(opts.maximum);
    return register(s, { type: 'integer', ...opts });
  },
  number(opts: NumberOpts = {}) {
    let s = z.number();
    if (opts.minimum !== undefined) s = s.min(opts.minimum);
    if (opts.maximum !== undefined) s = s.max(opts.maximum);
    return register(s, { type: 'number', ...opts });
  },
  boolean(opts: { requires?: string } = {}) {
    return register(z.boolean(), { type: 'boolean', ...opts });
  },
  string(opts: StringOpts = {}) {
    let s = z.string();
    if (opts.minLength !== undefined) s = s.min(opts.minLength);
    if (opts.maxLength !== undefined) s = s.max(opts.maxLength);
    if (opts.pattern !== undefined) s = s.regex(pveRegex(opts.pattern));
    const format = opts.format;
    // Outside a request (config files, typed calls) the issue carries PVE's reason on one line.
    const checked = format
      ? s.superRefine((v, ctx) => {
          const error = checkFormat(format, v, '');
          if (error) ctx.addIssue({ code: 'custom', message: `PVE refuses it: ${error.replaceAll('\n', '; ')}` });
        })
      : s;
    return register(checked, { type: 'string', ...opts });
  },
  enum<const T extends readonly [string, ...string[]]>(values: T, opts: { format?: string; requires?: string } = {}) {
    return register(z.enum(values), { type: 'string', enum: values, ...opts });
  },

  node: () => pve.string({ format: 'pve-node' }),
  vmid: () => pve.integer({ minimum: 100, maximum: 999_999_999, format: 'pve-vmid' }),
  storageId: () => pve.string({ format: 'pve-storage-id' }),
  configId: () => pve.string({ format: 'pve-configid', maxLength: 40 }),
  digest: () => pve.string({ maxLength: 40 }),
};

/** 0 | 1 | ... | N-1 */
type Indices<N extends number, Acc extends number[] = []> = Acc['length'] extends N
  ? Acc[number]
  : Indices<N, [...Acc, Acc['length']]>;

/** `net0..net31` style parameters, which PVE's schema writes as `net[n]`. */
export function indexed<P extends string, N extends number, S extends z.ZodType>(
  prefix: P,
  count: N,
  schema: () => S,
): { [K in `${P}${Indices<N>}`]: S } {
  return Object.fromEntries(Array.from({ length: count }, (_, i) => [`${prefix}${i}`, schema()])) as {
    [K in `${P}${Indices<N>}`]: S;
  };
}

export interface ParamInfo {
  optional: boolean;
  spec: PveParamSpec;
}

/** Optionality and PVE spec of one parameter of an endpoint's params object. */
export function paramInfo(field: z.ZodType): ParamInfo {
  const optional = field instanceof z.ZodOptional;
  const inner = optional ? (field.unwrap() as z.ZodType) : field;
  const spec = pveParamSpecs.get(inner);
  if (!spec) throw new Error('parameter was not built with lib/pve/params.ts builders');
  return { optional, spec };
}

/** The parameters of an endpoint's params object that hold secrets. */
export function secretParams(params: z.ZodObject): Set<string> {
  const shape = params.shape as Record<string, z.ZodType>;
  return new Set(Object.keys(shape).filter((name) => paramInfo(shape[name]!).spec.secret));
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; errors: Record<string, string> };

const INTEGER_RE = /^[+-]?\d+$/;
const NUMBER_RE = /^[+-]?(\d+\.\d+|\d+\.|\.\d+|\d+)([eE][+-]?\d+)?$/;

/** PVE's check_type: form values arrive as strings, JSON bodies may carry numbers and booleans. */
function coerce(type: PveParamType, raw: unknown): { value: unknown } | { error: string } {
  const shown = typeof raw === 'string' ? raw : JSON.stringify(raw);
  const fail = { error: `type check ('${type}') failed - got '${shown}'` };
  if (typeof raw === 'object' && raw !== null) {
    return { error: `type check ('${type}') failed - got ${Array.isArray(raw) ? 'ARRAY' : 'HASH'}` };
  }
  switch (type) {
    case 'string':
      return { value: String(raw) };
    case 'boolean':
      if (raw === true || raw === 1 || raw === '1') return { value: true };
      if (raw === false || raw === 0 || raw === '0') return { value: false };
      return fail;
    case 'integer':
      if (typeof raw === 'number') return Number.isInteger(raw) ? { value: raw } : fail;
      return typeof raw === 'string' && INTEGER_RE.test(raw) ? { value: Number(raw) } : fail;
    case 'number':
      if (typeof raw === 'number') return Number.isFinite(raw) ? { value: raw } : fail;
      return typeof raw === 'string' && NUMBER_RE.test(raw) ? { value: Number(raw) } : fail;
  }
}

/** PVE's check_prop for a present value, in PVE's order; the first failure is the message. */
function verify(spec: PveParamSpec, raw: unknown, path: string): { value: unknown } | { error: string } {
  const typed = coerce(spec.type, raw);
  if ('error' in typed) return typed;
  const value = typed.value;
  if (typeof value === 'boolean') return typed;
  const text = String(value);
  if (spec.format) {
    const formatError = checkFormat(spec.format, text, path);
    if (formatError) return { error: `invalid format - ${formatError}` };
  }
  if (spec.pattern && !pveRegex(spec.pattern).test(text)) return { error: 'value does not match the regex pattern' };
  if (spec.maxLength !== undefined && text.length > spec.maxLength) {
    return { error: `value may only be ${spec.maxLength} characters long` };
  }
  if (spec.minLength !== undefined && text.length < spec.minLength) {
    return { error: `value must be at least ${spec.minLength} characters long` };
  }
  if (NUMBER_RE.test(text)) {
    const n = Number(text);
    if (spec.maximum !== undefined && n > spec.maximum)
      return { error: `value must have a maximum value of ${spec.maximum}` };
    if (spec.minimum !== undefined && n < spec.minimum)
      return { error: `value must have a minimum value of ${spec.minimum}` };
  }
  if (spec.enum && !spec.enum.includes(text)) {
    return { error: `value '${text}' does not have a value in the enumeration '${spec.enum.join(', ')}'` };
  }
  return typed;
}

/**
 * Verifies raw parameters (form/query strings, or a JSON body) the way PVE does and returns
 * them typed. Errors are keyed by bare parameter name with PVE's messages.
 */
export function decodeParams<P extends z.ZodObject>(
  params: P,
  raw: Readonly<Record<string, unknown>>,
): DecodeResult<z.infer<P>> {
  const errors: Record<string, string> = {};
  const decoded: Record<string, unknown> = {};
  const shape = params.shape as Record<string, z.ZodType>;

  for (const [name, field] of Object.entries(shape)) {
    const { optional, spec } = paramInfo(field);
    const value = raw[name];
    if (value === undefined || value === null) {
      if (!optional) errors[name] = 'property is missing and it is not optional';
      continue;
    }
    const result = verify(spec, value, name);
    if ('error' in result) errors[name] = result.error;
    else decoded[name] = result.value;
  }
  for (const name of Object.keys(raw)) {
    if (raw[name] === undefined) continue;
    const field = shape[name];
    if (!field) {
      errors[name] = 'property is not defined in schema and the schema does not allow additional properties';
      continue;
    }
    const requires = paramInfo(field).spec.requires;
    if (requires && (raw[requires] === undefined || raw[requires] === null)) {
      errors[requires] ??= `missing property - '${name}' requires this property`;
    }
  }
  if (Object.keys(errors).length > 0) return { ok: false, errors };

  // PVE's rules passed; zod produces the typed value (and would catch a builder out of step with its spec).
  const parsed = params.safeParse(decoded);
  if (parsed.success) return { ok: true, value: parsed.data };
  for (const issue of parsed.error.issues) errors[String(issue.path[0] ?? '_root')] ??= issue.message;
  return { ok: false, errors };
}

/** Wire form of a typed value: booleans as 0/1 (all PVE accepts), numbers and strings as text. */
export function encodeValue(value: string | number | boolean): string {
  if (typeof value === 'boolean') return value ? '1' : '0';
  return String(value);
}

/**
 * Parameters of a guest's create and config calls that address or steer the call rather than
 * set a config key: PVE stores none of them in the guest's config.
 */
export const CONTROL_KEYS = new Set([
  'node',
  'vmid',
  'digest',
  'delete',
  'revert',
  'background_delay',
  'skiplock',
  'pool',
  'storage',
  'start',
  'ostemplate',
  'ssh-public-keys',
  'password',
  'force',
  'archive',
  'bwlimit',
  'ha-managed',
  'import-working-storage',
  'live-restore',
  'unique',
  'restore',
  'ignore-unpack-errors',
]);
