/**
 * The hash chain under the audit log: each record's hash covers its own fields and the
 * previous record's hash, so changing, dropping, inserting or reordering any line breaks
 * every hash after it.
 */
import { createHash } from 'node:crypto';

/** `prev` of the first record. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * JSON with object keys sorted at every depth and `undefined` members left out: the same
 * record always serializes to the same bytes, whatever order its fields were built in.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    // JSON.stringify maps non-finite numbers to null and throws on bigint; both are fine here.
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) {
    return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  }
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    return canonicalJson((value as { toJSON: () => unknown }).toJSON());
  }
  const members = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined && typeof v !== 'function')
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`);
  return `{${members.join(',')}}`;
}

/** sha256 (hex) of a record's canonical JSON without its own `hash` (its `prev` included). */
export function recordHash(record: Record<string, unknown>): string {
  const { hash: _ignored, ...rest } = record;
  return createHash('sha256').update(canonicalJson(rest)).digest('hex');
}
