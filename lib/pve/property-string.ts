/**
 * PVE's property strings (`virtio=BC:24:11:00:00:01,bridge=vmbr0,firewall=1`): comma-separated
 * `key=value` pairs described by a format object, as PVE's schema states it. Each key has a
 * type and bounds like a parameter; one `default_key` may be written without its name
 * (`local-lvm:32` is `file=local-lvm:32`); an `alias` key stands for another (`volume` for
 * `file`), and with `keyAlias` also names a value for it (`virtio=<mac>` is
 * `model=virtio,macaddr=<mac>`).
 *
 * Splitting follows pve-common's parse_property_string; the per-key checks are the parameter
 * checks of params.ts, applied to each key.
 */
import type { PveParamType } from './params.js';

/** One key of a property string, in the schema's vocabulary. */
export interface PropertyKey {
  type: PveParamType;
  optional?: boolean;
  default_key?: boolean;
  enum?: readonly string[];
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  /** PVE's regex, unanchored. */
  pattern?: string;
  /** A named format the value must have (`mac-addr`, `pve-volume-id`, ...). */
  format?: string;
}

export interface PropertyAlias {
  alias: string;
  keyAlias?: string;
}

export type PropertyFormat = Readonly<Record<string, PropertyKey | PropertyAlias>>;

export function isAlias(spec: PropertyKey | PropertyAlias): spec is PropertyAlias {
  return 'alias' in spec;
}

/** The keys that hold values (aliases left out). */
export function propertyKeys(format: PropertyFormat): [string, PropertyKey][] {
  return Object.entries(format).filter((e): e is [string, PropertyKey] => !isAlias(e[1]));
}

export function defaultKey(format: PropertyFormat): string | undefined {
  return propertyKeys(format).find(([, spec]) => spec.default_key)?.[0];
}

/** A string that is not a property string of the format at all; the message is PVE's. */
export class PropertyStringSyntaxError extends Error {
  override name = 'PropertyStringSyntaxError';
}

/** pve-common parse_boolean: property strings also spell booleans on/off, yes/no, true/false. */
function parseBoolean(value: string): string | undefined {
  if (/^(1|on|yes|true)$/i.test(value)) return '1';
  if (/^(0|off|no|false)$/i.test(value)) return '0';
  return undefined;
}

/**
 * The keys and raw values of a property string, aliases resolved. Throws
 * PropertyStringSyntaxError for what PVE refuses before checking keys (unknown or duplicate
 * keys, a bare value where the format has no default key).
 */
export function splitPropertyString(format: PropertyFormat, value: string): Record<string, string> {
  const result: Record<string, string> = {};
  const set = (key: string, v: string) => {
    if (result[key] !== undefined)
      throw new PropertyStringSyntaxError(`duplicate key in comma-separated list property: ${key}`);
    result[key] = v;
  };
  for (const part of value.split(',')) {
    if (/^\s*$/.test(part)) continue;
    const pair = /^([^=]+)=(.+)$/s.exec(part);
    if (pair) {
      let [, key = '', v = ''] = pair;
      let spec = format[key];
      if (spec && isAlias(spec)) {
        if (spec.keyAlias) {
          if (result[spec.keyAlias] !== undefined)
            throw new PropertyStringSyntaxError(`key alias '${spec.keyAlias}' is already defined`);
          result[spec.keyAlias] = key;
        }
        key = spec.alias;
        spec = format[key];
      }
      if (!spec || isAlias(spec))
        throw new PropertyStringSyntaxError(`invalid key in comma-separated list property: ${key}`);
      set(key, spec.type === 'boolean' ? (parseBoolean(v) ?? v) : v);
    } else if (!part.includes('=')) {
      const key = defaultKey(format);
      if (!key) throw new PropertyStringSyntaxError('value without key, but schema does not define a default key');
      set(key, part);
    } else {
      throw new PropertyStringSyntaxError('missing key in comma-separated list property');
    }
  }
  return result;
}

/** PVE's print_property_string: the default key bare and first, then the others in key order. */
export function printPropertyString(
  format: PropertyFormat,
  values: Readonly<Record<string, string | number | boolean | undefined>>,
): string {
  const first = defaultKey(format);
  const text = (v: string | number | boolean) => (typeof v === 'boolean' ? (v ? '1' : '0') : String(v));
  const parts: string[] = [];
  const head = first === undefined ? undefined : values[first];
  if (head !== undefined) parts.push(text(head));
  for (const key of Object.keys(values).sort()) {
    const v = values[key];
    if (key !== first && v !== undefined) parts.push(`${key}=${text(v)}`);
  }
  return parts.join(',');
}
