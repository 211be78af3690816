/**
 * A lock file shared by every process that appends to the same audit log (the API and the
 * workers): created exclusively with `open(..., 'wx')`, waited for with capped exponential
 * backoff, and taken over when its holder died without releasing it.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';

export interface FileLockOptions {
  /** Give up waiting after this long. */
  timeoutMs?: number;
  /**
   * A lock older than this is considered abandoned. Holders keep it for a few milliseconds,
   * so any age far beyond that means the holder crashed or hung.
   */
  staleMs?: number;
}

export class LockTimeoutError extends Error {
  constructor(lockPath: string, timeoutMs: number) {
    super(`could not lock ${lockPath} within ${timeoutMs} ms (another process holds it)`);
    this.name = 'LockTimeoutError';
  }
}

interface Holder {
  pid: number;
  host: string;
  token: string;
}

function parseHolder(text: string): Holder | undefined {
  try {
    const value = JSON.parse(text) as Partial<Holder>;
    return typeof value.pid === 'number' && typeof value.host === 'string' ? (value as Holder) : undefined;
  } catch {
    return undefined; // created but not yet written, or garbage
  }
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Moves an abandoned lock out of the way. Returns true when the caller should try to take
 * the lock again at once (it is gone), false when it is held by someone alive.
 */
async function clearIfAbandoned(lockPath: string, staleMs: number, ownToken: string): Promise<boolean> {
  let observed: string;
  let ageMs: number;
  try {
    [observed, ageMs] = await Promise.all([
      readFile(lockPath, 'utf8'),
      stat(lockPath).then((s) => Date.now() - s.mtimeMs),
    ]);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
  const holder = parseHolder(observed);
  const holderDied = holder !== undefined && holder.host === hostname() && !processIsAlive(holder.pid);
  if (!holderDied && ageMs <= staleMs) return false;

  // Rename first, then check we moved the lock we judged: between our look and the rename,
  // another waiter may have cleared it and a live process taken a fresh one.
  const aside = `${lockPath}.abandoned-${ownToken}`;
  try {
    await rename(lockPath, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw err;
  }
  const moved = await readFile(aside, 'utf8').catch(() => '');
  if (moved !== observed) {
    // A live lock: put it back (link fails if yet another process has locked meanwhile).
    await link(aside, lockPath).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
  return moved === observed;
}

/** Runs `fn` while holding the lock file at `lockPath`. */
export async function withFileLock<T>(
  lockPath: string,
  fn: () => Promise<T>,
  options: FileLockOptions = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const staleMs = options.staleMs ?? 10_000;
  const token = randomBytes(8).toString('hex');
  const content = JSON.stringify({ pid: process.pid, host: hostname(), token, at: new Date().toISOString() });
  const deadline = Date.now() + timeoutMs;
  let delayMs = 1;

  for (;;) {
    try {
      await writeFile(lockPath, content, { flag: 'wx' });
      break;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        await mkdir(dirname(lockPath), { recursive: true });
        continue;
      }
      if (code !== 'EEXIST') throw err;
    }
    if (await clearIfAbandoned(lockPath, staleMs, token)) continue;
    if (Date.now() >= deadline) throw new LockTimeoutError(lockPath, timeoutMs);
    await sleep(delayMs * (1 + Math.random()));
    delayMs = Math.min(delayMs * 2, 50);
  }

  try {
    return await fn();
  } finally {
    // Only remove the lock if it is still ours (a hung holder may have been taken over).
    const current = await readFile(lockPath, 'utf8').catch(() => undefined);
    if (current === content) await unlink(lockPath).catch(() => undefined);
  }
}
