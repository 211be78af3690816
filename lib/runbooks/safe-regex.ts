/**
 * Regular expressions written by runbook authors (a parameter's `pattern`, a step's
 * `expect.output`) run on the worker, against values and command output from elsewhere. A
 * backtracking regex such as `(a+)+` takes exponential time on a near-miss and blocks the
 * worker's event loop, so these expressions are:
 *
 * - checked when the runbook is read, and refused with the reason when they use what only a
 *   backtracking engine can do (backreferences, lookaround) or repeat a repetition;
 * - always run by V8's linear-time engine (the `l` flag: an automaton, like RE2), so even an
 *   expression the check let through cannot take more than time linear in its input.
 */
import { setFlagsFromString } from 'node:v8';

// Enables the `l` flag; it changes nothing for other regular expressions.
setFlagsFromString('--enable-experimental-regexp-engine');

/** Why `source` may not be a runbook regex, or undefined when it may. */
export function regexProblem(source: string): string | undefined {
  const construct = backtrackingConstruct(source);
  if (construct)
    return `uses ${construct}, which only a backtracking matcher supports; runbook regexes must run in linear time`;
  const nested = nestedQuantifier(source);
  if (nested !== undefined) {
    return `repeats a group that itself repeats (at character ${nested + 1}), which backtracks exponentially on a near-miss (e.g. (a+)+); repeat a character class instead`;
  }
  try {
    linearRegExp(source);
  } catch (err) {
    return `is not a regular expression the linear-time matcher accepts (${(err as Error).message.replace(/^Invalid regular expression: /, '')})`;
  }
  return undefined;
}

/** `source` compiled for V8's linear-time engine; throws as `new RegExp` does for one it cannot run. */
export function linearRegExp(source: string, flags = ''): RegExp {
  return new RegExp(splitCountedRepeats(source), `${flags}l`);
}

/** The engine unrolls counted repetitions and takes at most this many copies of one. */
const MAX_COPIES = 16;
const SIMPLE_ATOM = /\\[^cux]|\[(?:\\.|[^\]\\])*\]|[^\\()|^$*+?{}[\]]/y;
const COUNTED = /\{(\d+)(,(\d*))?\}(\??)/y;

/**
 * `[A-Za-z0-9+/]{43}` written as `[A-Za-z0-9+/]{16}[A-Za-z0-9+/]{16}[A-Za-z0-9+/]{11}`, which
 * the linear engine accepts and which matches the same strings. Only single characters,
 * classes and escapes are split (a group would repeat its captures); others are left as written.
 */
function splitCountedRepeats(source: string): string {
  let out = '';
  for (let i = 0; i < source.length;) {
    SIMPLE_ATOM.lastIndex = i;
    const atom = SIMPLE_ATOM.exec(source);
    if (!atom) {
      const verbatim = source[i] === '\\' ? 2 : 1; // `\u0041`, `\x41`, `\cJ` go on as written
      out += source.slice(i, i + verbatim);
      i += verbatim;
      continue;
    }
    i += atom[0].length;
    COUNTED.lastIndex = i;
    const count = COUNTED.exec(source);
    if (!count) {
      out += atom[0];
      continue;
    }
    i += count[0].length;
    const min = Number(count[1]);
    const max = count[2] === undefined ? min : count[3] === '' ? Infinity : Number(count[3]);
    out += copies(atom[0], min, max, count[4]!);
  }
  return out;
}

function copies(atom: string, min: number, max: number, lazy: string): string {
  const parts: string[] = [];
  const chunk = (total: number, quantifier: (n: number) => string) => {
    for (let left = total; left > 0; left -= MAX_COPIES)
      parts.push(`${atom}${quantifier(Math.min(left, MAX_COPIES))}${lazy}`);
  };
  chunk(min, (n) => `{${n}}`);
  if (max === Infinity) parts.push(`${atom}*${lazy}`);
  else chunk(max - min, (n) => `{0,${n}}`);
  return parts.join('') || `${atom}{0}`;
}

const BACKTRACKING: [RegExp, string][] = [
  [/\\[1-9]|\\k</, 'a backreference'],
  [/\(\?<?[=!]/, 'a lookaround'],
];

function backtrackingConstruct(source: string): string | undefined {
  const plain = withoutEscapedBackslashes(source);
  return BACKTRACKING.find(([re]) => re.test(plain))?.[1];
}

/** `\\` pairs replaced, so `\\1` (a backslash, then 1) is not taken for a backreference. */
function withoutEscapedBackslashes(source: string): string {
  return source.replaceAll('\\\\', '__');
}

/**
 * Where a group that contains a quantifier is itself repeated (`*`, `+` or `{`), or undefined.
 * A scan over the source: escapes and character classes are skipped, one flag per open group.
 */
function nestedQuantifier(source: string): number | undefined {
  const groups: boolean[] = [];
  let closed: boolean | undefined; // whether the group that just closed held a quantifier
  for (let i = 0; i < source.length; i++) {
    const c = source[i]!;
    const previous = source[i - 1];
    if (c === '\\') {
      i++;
    } else if (c === '[') {
      while (i < source.length && source[i] !== ']') i += source[i] === '\\' ? 2 : 1;
    } else if (c === '(') {
      groups.push(false);
    } else if (c === ')') {
      closed = groups.pop() ?? false;
      continue;
    } else if (c === '*' || c === '+' || c === '{' || (c === '?' && previous !== '(' && !isQuantifier(previous))) {
      if (closed && c !== '?') return i;
      if (groups.length > 0) groups.fill(true);
    }
    closed = undefined;
  }
  return undefined;
}

function isQuantifier(c: string | undefined): boolean {
  return c === '*' || c === '+' || c === '?' || c === '}';
}
