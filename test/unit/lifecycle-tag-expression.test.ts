import { describe, expect, it } from 'vitest';
import { matchesTags, parseTagExpression, tagExpressionProblem } from '../../lib/lifecycle/tag-expression.js';

const matches = (expression: string, tags: string[]) => matchesTags(parseTagExpression(expression), tags);

describe('tag expressions', () => {
  it('select by one tag, whole and case-insensitively', () => {
    expect(matches('web', ['prod', 'web'])).toBe(true);
    expect(matches('web', ['webserver'])).toBe(false);
    expect(matches('Web', ['web'])).toBe(true);
  });

  it('combine with & (and), | (or) and ! (not), ! binding tightest and & before |', () => {
    expect(matches('web & !prod', ['web', 'dev'])).toBe(true);
    expect(matches('web & !prod', ['web', 'prod'])).toBe(false);
    expect(matches('a|b', ['b'])).toBe(true);
    expect(matches('a | b & c', ['a'])).toBe(true);
    expect(matches('a | b & c', ['b'])).toBe(false);
    expect(matches('(a | b) & c', ['a'])).toBe(false);
    expect(matches('!!web', ['web'])).toBe(true);
  });

  it('accept the characters PVE allows in tags', () => {
    expect(matches('k8s-worker.v1+x', ['k8s-worker.v1+x'])).toBe(true);
  });

  it('say where an expression goes wrong', () => {
    expect(tagExpressionProblem('web &')).toBe("expected a tag at the end of 'web &'");
    expect(tagExpressionProblem('web prod')).toBe("unexpected 'prod' at character 5 of 'web prod'");
    expect(tagExpressionProblem('(web')).toBe("expected ')' at the end of '(web'");
    expect(tagExpressionProblem('web & $x')).toBe("unexpected '$' at character 7 of 'web & $x'");
    expect(tagExpressionProblem('  ')).toBe("expected a tag at the end of '  '");
    expect(tagExpressionProblem('web & !prod')).toBeUndefined();
  });
});

describe('tag expressions past their bounds', () => {
  const nested = (levels: number) => '('.repeat(levels) + 'web' + ')'.repeat(levels);

  it('refuse an expression longer than 1024 characters, saying so, before parsing it', () => {
    expect(tagExpressionProblem(nested(3000))).toBe(
      'a tag expression is at most 1024 characters long (this one has 6003)',
    );
    expect(tagExpressionProblem('!'.repeat(10_000) + 'web')).toBe(
      'a tag expression is at most 1024 characters long (this one has 10003)',
    );
  });

  it('refuse nesting deeper than 32 levels of parentheses or !, saying where', () => {
    expect(tagExpressionProblem(nested(32))).toBeUndefined();
    expect(tagExpressionProblem(nested(33))).toMatch(/^nested deeper than 32 levels at character 33 of/);
    expect(tagExpressionProblem('!'.repeat(1000) + 'web')).toMatch(/^nested deeper than 32 levels at character 33 of/);
    expect(matches('!'.repeat(32) + 'web', ['web'])).toBe(true);
  });
});
