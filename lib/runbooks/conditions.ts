/**
 * The `when:` / `unless:` conditions of runbook steps: a deliberately small language, so a
 * runbook reader can see at a glance which path a step is on.
 *
 *   when: pve_version >= 8 and image_storage supports import
 *   when: not replace_existing
 *   when: image_type == cloudinit
 *
 * Clauses are `name`, `not <clause>`, `name <op> literal` (`==`, `!=`, `>=`, `<=`, `>`, `<`;
 * dotted numbers such as PVE versions compare part by part) and `storage_param supports
 * <content>`, joined by one kind of connective (`and` or `or`, not mixed). Conditions are
 * decided while planning, from facts read from the cluster, so the plan shows which steps run.
 */
import type { Value } from './placeholders.js';

type Op = '==' | '!=' | '>=' | '<=' | '>' | '<';

export type Clause =
  | { kind: 'truthy'; name: string }
  | { kind: 'not'; clause: Clause }
  | { kind: 'compare'; name: string; op: Op; literal: string }
  | { kind: 'supports'; name: string; content: string };

export interface Condition {
  connective: 'and' | 'or';
  clauses: Clause[];
}

export class ConditionSyntaxError extends Error {}

const TOKEN = /\s*(==|!=|>=|<=|>|<|'[^']*'|"[^"]*"|[A-Za-z0-9_.-]+)/y;
const NAME = /^[a-z][a-z0-9_]*$/;

function tokenize(text: string): string[] {
  const tokens: string[] = [];
  TOKEN.lastIndex = 0;
  let rest = text.trim();
  while (rest.length > 0) {
    TOKEN.lastIndex = 0;
    const m = TOKEN.exec(rest);
    if (!m) throw new ConditionSyntaxError(`unexpected '${rest[0]}' in condition '${text}'`);
    tokens.push(m[1]!);
    rest = rest.slice(m[0].length).trimStart();
  }
  return tokens;
}

function unquote(token: string): string {
  return /^(['"]).*\1$/.test(token) ? token.slice(1, -1) : token;
}

export function parseCondition(text: string): Condition {
  const tokens = tokenize(text);
  if (tokens.length === 0) throw new ConditionSyntaxError('a condition cannot be empty');
  let i = 0;
  const next = () => tokens[i++];
  const name = (what: string): string => {
    const token = next();
    if (token === undefined || !NAME.test(token)) {
      throw new ConditionSyntaxError(
        `expected a parameter or fact name ${what}, got ${token === undefined ? 'the end' : `'${token}'`}`,
      );
    }
    return token;
  };
  const clause = (): Clause => {
    if (tokens[i] === 'not') {
      i++;
      return { kind: 'not', clause: clause() };
    }
    const subject = name(`in '${text}'`);
    const op = tokens[i];
    if (op === 'supports') {
      i++;
      const content = next();
      if (content === undefined)
        throw new ConditionSyntaxError(`'supports' needs a content type, e.g. 'supports import'`);
      return { kind: 'supports', name: subject, content };
    }
    if (op === '==' || op === '!=' || op === '>=' || op === '<=' || op === '>' || op === '<') {
      i++;
      const literal = next();
      if (literal === undefined) throw new ConditionSyntaxError(`'${op}' needs a value to compare with`);
      return { kind: 'compare', name: subject, op, literal: unquote(literal) };
    }
    return { kind: 'truthy', name: subject };
  };

  const clauses = [clause()];
  let connective: 'and' | 'or' | undefined;
  while (i < tokens.length) {
    const word = next();
    if (word !== 'and' && word !== 'or') throw new ConditionSyntaxError(`expected 'and' or 'or', got '${word}'`);
    if (connective && word !== connective) {
      throw new ConditionSyntaxError(`mixes 'and' with 'or'; split the step or use one connective`);
    }
    connective = word;
    clauses.push(clause());
  }
  return { connective: connective ?? 'and', clauses };
}

/** Names a condition reads, and which of them must name storages. */
export function conditionNames(condition: Condition): { names: string[]; storages: string[] } {
  const names: string[] = [];
  const storages: string[] = [];
  const visit = (c: Clause) => {
    if (c.kind === 'not') return visit(c.clause);
    names.push(c.name);
    if (c.kind === 'supports') storages.push(c.name);
  };
  condition.clauses.forEach(visit);
  return { names, storages };
}

export interface ConditionFacts {
  values: Readonly<Record<string, Value | undefined>>;
  /** Content types a storage is configured for on the target node; undefined when it is not there. */
  storageContent(storage: string): readonly string[] | undefined;
}

const DOTTED = /^\d+(\.\d+)*$/;

function compareDotted(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let k = 0; k < Math.max(pa.length, pb.length); k++) {
    const d = (pa[k] ?? 0) - (pb[k] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

function compare(value: Value | undefined, op: Op, literal: string, name: string): boolean {
  const text = value === undefined ? '' : String(value);
  if (DOTTED.test(text) && DOTTED.test(literal)) {
    const d = compareDotted(text, literal);
    return { '==': d === 0, '!=': d !== 0, '>=': d >= 0, '<=': d <= 0, '>': d > 0, '<': d < 0 }[op];
  }
  if (op === '==') return text === literal;
  if (op === '!=') return text !== literal;
  throw new ConditionSyntaxError(
    `cannot order '${name}' (${text || 'no value'}) against '${literal}': both must be numbers`,
  );
}

function holds(c: Clause, facts: ConditionFacts): boolean {
  switch (c.kind) {
    case 'not':
      return !holds(c.clause, facts);
    case 'truthy': {
      const v = facts.values[c.name];
      return v !== undefined && v !== false && v !== '' && v !== 0;
    }
    case 'compare':
      return compare(facts.values[c.name], c.op, c.literal, c.name);
    case 'supports': {
      const storage = facts.values[c.name];
      return storage !== undefined && (facts.storageContent(String(storage)) ?? []).includes(c.content);
    }
  }
}

export function evaluateCondition(condition: Condition, facts: ConditionFacts): boolean {
  return condition.connective === 'and'
    ? condition.clauses.every((c) => holds(c, facts))
    : condition.clauses.some((c) => holds(c, facts));
}
