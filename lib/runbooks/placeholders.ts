/**
 * `{{name}}` placeholders in runbook steps, and how a value is written into each place it
 * can appear: as an API parameter (typed when the placeholder is the whole value), into a
 * shell command (quoted, so a parameter can never become shell syntax), or into an
 * expected-output pattern (regex-escaped, so it matches literally).
 *
 * Booleans are written 1/0 inside strings, as PVE's property strings want them.
 *
 * Pure and deterministic: the planning activity renders what it knows, and the step
 * activity renders what only becomes known while applying (an allocated VMID, a captured
 * disk name), with the same functions.
 */

export type Value = string | number | boolean;
export type Vars = Readonly<Record<string, Value | undefined>>;

/** Where a rendered string goes decides how values are escaped. */
export type Context = 'text' | 'shell' | 'regex';

const PLACEHOLDER = /\{\{\s*([a-z][a-z0-9_]*)\s*\}\}/g;
const WHOLE = /^\{\{\s*([a-z][a-z0-9_]*)\s*\}\}$/;

/** Names used by `{{...}}` in a string, in order of appearance. */
export function placeholdersIn(text: string): string[] {
  return [...text.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}

/** Characters that mean nothing to a POSIX shell in an unquoted word. */
const SHELL_SAFE = /^[A-Za-z0-9_./:=@%+,-]+$/;

export function shellQuote(value: string): string {
  if (value !== '' && SHELL_SAFE.test(value)) return value;
  return `'${value.replaceAll("'", `'\\''`)}'`;
}

export function regexEscape(value: string): string {
  return value.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Inside text, booleans are written as PVE writes them: 1 and 0. */
function escapeFor(context: Context, value: Value): string {
  const text = typeof value === 'boolean' ? (value ? '1' : '0') : String(value);
  if (context === 'shell') return shellQuote(text);
  if (context === 'regex') return regexEscape(text);
  return text;
}

export class UnresolvedPlaceholderError extends Error {
  constructor(readonly names: string[]) {
    super(`no value for ${names.map((n) => `{{${n}}}`).join(', ')}`);
    this.name = 'UnresolvedPlaceholderError';
  }
}

/**
 * Replaces the placeholders that have values. Those named in `later` stay as they are
 * (filled in when applying); any other placeholder without a value is an error.
 */
export function renderString(
  text: string,
  vars: Vars,
  context: Context,
  later: ReadonlySet<string> = new Set(),
): string {
  const missing: string[] = [];
  const out = text.replace(PLACEHOLDER, (whole, name: string) => {
    const value = vars[name];
    if (value !== undefined) return escapeFor(context, value);
    if (!later.has(name)) missing.push(name);
    return whole;
  });
  if (missing.length > 0) throw new UnresolvedPlaceholderError(missing);
  return out;
}

/**
 * An API parameter. A value that is exactly one placeholder keeps the parameter's type
 * (`{{cores}}` -> 2), and is left out altogether when an optional parameter has no value
 * (`undefined`), so a runbook can pass optional settings through without conditionals.
 */
export function renderParam(
  raw: Value,
  vars: Vars,
  later: ReadonlySet<string> = new Set(),
  optional: ReadonlySet<string> = new Set(),
): Value | undefined {
  if (typeof raw !== 'string') return raw;
  const whole = WHOLE.exec(raw);
  if (whole) {
    const name = whole[1]!;
    const value = vars[name];
    if (value !== undefined) return value;
    if (later.has(name)) return raw;
    if (optional.has(name)) return undefined;
    throw new UnresolvedPlaceholderError([name]);
  }
  return renderString(raw, vars, 'text', later);
}
