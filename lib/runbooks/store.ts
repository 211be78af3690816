/**
 * The runbooks directory: `<name>.md` per runbook. Files starting with `_` (the format
 * template) are documentation, not runbooks to run. Writes are atomic (temp file, rename)
 * and never replace a runbook unless asked to.
 */
import { createHash } from 'node:crypto';
import { link, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseRunbookMarkdown, RunbookError, type RunbookFile } from './markdown.js';
import { RUNBOOK_NAME } from './schema.js';

/** `PM_RUNBOOKS_DIR`, else the repository's runbooks/. */
export function defaultRunbooksDir(): string {
  return process.env.PM_RUNBOOKS_DIR ?? fileURLToPath(new URL('../../runbooks/', import.meta.url));
}

export class RunbookNotFoundError extends Error {
  constructor(
    readonly runbook: string,
    known: string[],
  ) {
    super(`no runbook '${runbook}' (available: ${known.join(', ') || 'none'})`);
    this.name = 'RunbookNotFoundError';
  }
}

export interface StoredRunbook extends RunbookFile {
  name: string;
  markdown: string;
  /** SHA-256 of the file, so a save can refuse when the file changed since it was reviewed. */
  sha256: string;
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export async function listRunbookNames(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return entries
    .filter((f) => f.endsWith('.md') && !f.startsWith('_') && RUNBOOK_NAME.test(f.slice(0, -3)))
    .map((f) => f.slice(0, -3))
    .sort();
}

export async function readRunbookText(dir: string, name: string): Promise<string | undefined> {
  if (!RUNBOOK_NAME.test(name)) return undefined;
  try {
    return await readFile(join(dir, `${name}.md`), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Reads and validates one runbook; its front matter must carry the name of its file. */
export async function loadRunbook(dir: string, name: string): Promise<StoredRunbook> {
  const markdown = await readRunbookText(dir, name);
  if (markdown === undefined) throw new RunbookNotFoundError(name, await listRunbookNames(dir));
  const file = parseRunbookMarkdown(markdown, `${name}.md`);
  if (file.runbook.name !== name) {
    throw new RunbookError(`${name}.md`, [`name: is '${file.runbook.name}' but the file is ${name}.md`]);
  }
  return { ...file, name, markdown, sha256: sha256(markdown) };
}

export type SaveOutcome = 'created' | 'replaced' | 'unchanged';

export class RunbookConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunbookConflictError';
  }
}

/**
 * Writes `<name>.md`. A new runbook never replaces a file that appeared meanwhile; a
 * replacement happens only if the file is still the one reviewed (`previousSha256`).
 * Saving the same content again is a no-op, so a retried save is harmless.
 */
export async function saveRunbook(
  dir: string,
  name: string,
  markdown: string,
  opts: { previousSha256?: string } = {},
): Promise<SaveOutcome> {
  if (!RUNBOOK_NAME.test(name)) throw new RunbookConflictError(`'${name}' is not a runbook name`);
  const path = join(dir, `${name}.md`);
  const current = await readRunbookText(dir, name);
  if (current === markdown) return 'unchanged';
  if (current !== undefined && opts.previousSha256 === undefined) {
    throw new RunbookConflictError(`runbook '${name}' exists; ingest it again with replace to change it`);
  }
  if (current !== undefined && sha256(current) !== opts.previousSha256) {
    throw new RunbookConflictError(`runbook '${name}' changed since the plan was made; ingest it again`);
  }
  if (current === undefined && opts.previousSha256 !== undefined) {
    throw new RunbookConflictError(`runbook '${name}' was removed since the plan was made; ingest it again`);
  }
  const temp = join(dir, `.${name}.md.${process.pid}.${Date.now()}.tmp`);
  await writeFile(temp, markdown, { mode: 0o644, flag: 'wx' });
  try {
    if (current === undefined) {
      // link() fails if the name exists: a runbook created meanwhile is never overwritten.
      await link(temp, path).catch((err: NodeJS.ErrnoException) => {
        if (err.code === 'EEXIST')
          throw new RunbookConflictError(`runbook '${name}' was created meanwhile; ingest it again`);
        throw err;
      });
      return 'created';
    }
    await rename(temp, path);
    return 'replaced';
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}
