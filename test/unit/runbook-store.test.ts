import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RunbookError } from '../../lib/runbooks/markdown.js';
import {
  listRunbookNames,
  loadRunbook,
  RunbookConflictError,
  RunbookNotFoundError,
  saveRunbook,
  sha256,
} from '../../lib/runbooks/store.js';

const valid = (name: string) => `---
name: ${name}
description: Reads the cluster version
image_type: none
requires: [api]
steps:
  - { id: version, description: Ask PVE its version, api: version }
---
# ${name}
`;

describe('the runbooks directory', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pm-runbooks-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('lists runbooks, not the format template or other files', async () => {
    await writeFile(join(dir, 'b-one.md'), valid('b-one'));
    await writeFile(join(dir, 'a-two.md'), valid('a-two'));
    await writeFile(join(dir, '_template.md'), valid('procedure-name'));
    await writeFile(join(dir, 'notes.txt'), 'x');
    await writeFile(join(dir, 'Bad Name.md'), 'x');
    expect(await listRunbookNames(dir)).toEqual(['a-two', 'b-one']);
  });

  it('loads a runbook whose name matches its file, and says which exist when one does not', async () => {
    await writeFile(join(dir, 'one.md'), valid('one'));
    await writeFile(join(dir, 'two.md'), valid('other'));
    expect((await loadRunbook(dir, 'one')).runbook.name).toBe('one');
    await expect(loadRunbook(dir, 'two')).rejects.toThrow(RunbookError);
    await expect(loadRunbook(dir, 'three')).rejects.toThrow(new RunbookNotFoundError('three', ['one', 'two']));
  });

  it('creates a runbook once and never overwrites one unasked', async () => {
    expect(await saveRunbook(dir, 'one', valid('one'))).toBe('created');
    expect(await saveRunbook(dir, 'one', valid('one'))).toBe('unchanged');
    await expect(saveRunbook(dir, 'one', `${valid('one')}more\n`)).rejects.toThrow(RunbookConflictError);
    expect(await readFile(join(dir, 'one.md'), 'utf8')).toBe(valid('one'));
  });

  it('replaces a runbook only if it is still the one that was reviewed', async () => {
    await saveRunbook(dir, 'one', valid('one'));
    const reviewed = sha256(valid('one'));
    await writeFile(join(dir, 'one.md'), `${valid('one')}edited by hand\n`);
    await expect(saveRunbook(dir, 'one', `${valid('one')}v2\n`, { previousSha256: reviewed })).rejects.toThrow(
      /changed since the plan/,
    );
    await writeFile(join(dir, 'one.md'), valid('one'));
    expect(await saveRunbook(dir, 'one', `${valid('one')}v2\n`, { previousSha256: reviewed })).toBe('replaced');
    expect(await readFile(join(dir, 'one.md'), 'utf8')).toBe(`${valid('one')}v2\n`);
    expect(await readdir(dir)).toEqual(['one.md']);
  });
});
