/**
 * Tag expressions select guests by their PVE tags: `web`, `web & !prod`, `a | b`,
 * `(web | api) & !canary`. `!` binds tightest, then `&`, then `|`; tags match whole and
 * case-insensitively, as PVE compares them.
 */

/** Bounds that keep the recursive parser and matcher far from the stack's limit. */
export const TAG_EXPRESSION_LIMITS = { length: 1024, depth: 32 } as const;

export type TagExpression =
  | { kind: 'tag'; tag: string }
  | { kind: 'not'; operand: TagExpression }
  | { kind: 'and' | 'or'; operands: TagExpression[] };

export class TagExpressionError extends Error {
  constructor(
    readonly expression: string,
    /** Where it goes wrong; -1 when it is the expression as a whole. */
    readonly position: number,
    reason: string,
  ) {
    super(
      position < 0
        ? reason
        : `${reason} ${position >= expression.length ? 'at the end' : `at character ${position + 1}`} of '${expression}'`,
    );
    this.name = 'TagExpressionError';
  }
}

type Token = { kind: 'tag'; text: string; at: number } | { kind: '&' | '|' | '!' | '(' | ')'; at: number };

/** PVE's tag characters (pve-tag format). */
const TAG = /[a-z0-9_][a-z0-9_\-+.]*/iy;

function tokenize(source: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '&' || c === '|' || c === '!' || c === '(' || c === ')') {
      tokens.push({ kind: c, at: i });
      i++;
    } else {
      TAG.lastIndex = i;
      const m = TAG.exec(source);
      if (!m) throw new TagExpressionError(source, i, `unexpected '${c}'`);
      tokens.push({ kind: 'tag', text: m[0].toLowerCase(), at: i });
      i += m[0].length;
    }
  }
  return tokens;
}

export function parseTagExpression(source: string): TagExpression {
  if (source.length > TAG_EXPRESSION_LIMITS.length) {
    const reason = `a tag expression is at most ${TAG_EXPRESSION_LIMITS.length} characters long (this one has ${source.length})`;
    throw new TagExpressionError(source, -1, reason);
  }
  const tokens = tokenize(source);
  let pos = 0;
  let depth = 0;
  const peek = () => tokens[pos];
  const at = () => peek()?.at ?? source.length;
  /** Each '(' and '!' nests one level deeper; past the limit the expression is refused. */
  const nested = <T>(token: Token, parse: () => T): T => {
    if (++depth > TAG_EXPRESSION_LIMITS.depth) {
      throw new TagExpressionError(source, token.at, `nested deeper than ${TAG_EXPRESSION_LIMITS.depth} levels`);
    }
    const result = parse();
    depth--;
    return result;
  };

  const primary = (): TagExpression => {
    const token = tokens[pos++];
    if (!token) throw new TagExpressionError(source, source.length, 'expected a tag');
    if (token.kind === 'tag') return { kind: 'tag', tag: token.text };
    if (token.kind === '!') return { kind: 'not', operand: nested(token, primary) };
    if (token.kind === '(') {
      const inner = nested(token, or);
      if (peek()?.kind !== ')') throw new TagExpressionError(source, at(), "expected ')'");
      pos++;
      return inner;
    }
    throw new TagExpressionError(source, token.at, `expected a tag, found '${token.kind}'`);
  };
  const chain = (op: '&' | '|', operand: () => TagExpression) => (): TagExpression => {
    const operands = [operand()];
    while (peek()?.kind === op) {
      pos++;
      operands.push(operand());
    }
    return operands.length === 1 ? operands[0]! : { kind: op === '&' ? 'and' : 'or', operands };
  };
  const and = chain('&', primary);
  const or = chain('|', and);

  if (tokens.length === 0) throw new TagExpressionError(source, source.length, 'expected a tag');
  const expression = or();
  if (pos < tokens.length) throw new TagExpressionError(source, at(), `unexpected '${tokenText(tokens[pos]!)}'`);
  return expression;
}

function tokenText(token: Token): string {
  return token.kind === 'tag' ? token.text : token.kind;
}

export function matchesTags(expression: TagExpression, tags: readonly string[]): boolean {
  switch (expression.kind) {
    case 'tag':
      return tags.some((t) => t.toLowerCase() === expression.tag);
    case 'not':
      return !matchesTags(expression.operand, tags);
    case 'and':
      return expression.operands.every((e) => matchesTags(e, tags));
    case 'or':
      return expression.operands.some((e) => matchesTags(e, tags));
  }
}

/** Why `source` is not a tag expression, or undefined when it is (for request validation). */
export function tagExpressionProblem(source: string): string | undefined {
  try {
    parseTagExpression(source);
    return undefined;
  } catch (err) {
    if (err instanceof TagExpressionError) return err.message;
    throw err;
  }
}
