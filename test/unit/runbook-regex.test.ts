/**
 * Runbook regexes (parameter patterns, expected outputs) cannot stall the worker: the ones
 * that need a backtracking matcher are refused when the runbook is read, with the reason, and
 * every runbook regex runs in time linear in its input.
 */
import { describe, expect, it } from 'vitest';
import { parseRunbookMarkdown, RunbookError } from '../../lib/runbooks/markdown.js';
import { linearRegExp, regexProblem } from '../../lib/runbooks/safe-regex.js';
import { checkValue, type Parameter } from '../../lib/runbooks/schema.js';

function problems(parameters: string, steps = ''): string[] {
  const text = `---
name: demo
description: A demo
image_type: none
requires: [ssh]
parameters:
${parameters}
steps:
  - id: look
    description: Look
    ssh: { node: pve1, command: lsblk }
${steps}---
# Title
`;
  try {
    parseRunbookMarkdown(text, 'test.md');
    return [];
  } catch (err) {
    if (err instanceof RunbookError) return [...err.issues];
    throw err;
  }
}

describe('a runbook regex is refused when it is read', () => {
  it.each([
    ['(a+)+', /repeats a group that itself repeats \(at character 5\).*\(a\+\)\+/],
    ['(x|\\d*)*y', /repeats a group that itself repeats/],
    ['((ab)*c){2,}', /repeats a group that itself repeats/],
    ['(a)\\1', /uses a backreference, which only a backtracking matcher supports/],
    ['(?<w>a)\\k<w>', /uses a backreference/],
    ['a(?=b)', /uses a lookaround/],
    ['(?<!a)b', /uses a lookaround/],
    ['[a-', /is not a regular expression the linear-time matcher accepts/],
  ])('pattern %s, with the reason', (pattern, reason) => {
    const found = problems(`  label: { type: string, pattern: '${pattern}', description: Label }`);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^parameters\.label\.pattern: /);
    expect(found[0]).toMatch(reason);
  });

  it('in a step’s expected output too', () => {
    const found = problems('  label: { type: string, description: Label }', "    expect: { output: '(\\s+\\S+)+$' }\n");
    expect(found).toEqual([expect.stringMatching(/^steps\.0\.expect\.output: repeats a group that itself repeats/)]);
  });

  it.each(['[a-z][a-z0-9-]{0,30}', '(web|db)-[0-9]+', '(?<disk>sd[a-z]+)\\s+\\d+G?', 'a\\\\1', '(ab)+c*', 'x+?(?:y)?'])(
    'while %s is accepted',
    (pattern) => expect(regexProblem(pattern)).toBeUndefined(),
  );
});

describe('a runbook regex runs in linear time', () => {
  const near = 'a'.repeat(5_000) + '!';

  it('a parameter value is checked against its pattern without backtracking', () => {
    // Let through by hand (the check above refuses it): the matcher alone still answers at once.
    const p = { type: 'string', pattern: '(a+)+', description: 'x', required: false, allocate: false } as Parameter;
    expect(checkValue(p, near)).toBe('must match (a+)+');
    expect(checkValue(p, 'aaaa')).toBeUndefined();
  });

  it('named groups still capture, and multi-line output matches by line', () => {
    expect(linearRegExp('^disk (?<disk>\\w+)$', 'm').exec('x\ndisk sda1\ny')?.groups).toEqual({ disk: 'sda1' });
    expect(linearRegExp('(a|a)*b').test(near)).toBe(false);
  });
});

describe('counted repetitions', () => {
  it.each([
    ['SHA256:[A-Za-z0-9+/]{43}', 'SHA256:' + 'A'.repeat(43), 'SHA256:' + 'A'.repeat(42)],
    ['\\d{2,40}', '1'.repeat(40), '1'.repeat(41)],
    ['x{20,}y', 'x'.repeat(20) + 'y', 'x'.repeat(19) + 'y'],
  ])('%s runs on the linear engine, matching as written', (pattern, yes, no) => {
    expect(regexProblem(pattern)).toBeUndefined();
    const whole = linearRegExp(`^(?:${pattern})$`);
    expect([whole.test(yes), whole.test(no)]).toEqual([true, false]);
  });

  it('of a group past 16 copies are refused with the reason', () => {
    expect(regexProblem('(ab){20}')).toMatch(/^is not a regular expression the linear-time matcher accepts/);
  });
});
