/**
 * Guest config lock files (`/var/lock/qemu-server/lock-<vmid>.conf`), which PVE takes with a
 * timeout around config changes, clones and migrations. A second holder waits on the
 * simulated clock and gives up with PVE's message. Like PVE's flock, a lock is taken either
 * exclusively or shared: qemu-server clones a stopped source under a shared lock, so clones
 * of one template run side by side while a config change to it must wait for all of them.
 */
import type { SimClock } from './clock.js';
import { fail } from './errors.js';

type Mode = 'exclusive' | 'shared';

interface Waiter {
  mode: Mode;
  grant: () => void;
}

interface LockFile {
  /** Held exclusively. */
  held: boolean;
  /** Holders of a shared lock. */
  shared: number;
  waiters: Waiter[];
}

export type Release = () => void;

export class LockFiles {
  readonly #files = new Map<string, LockFile>();

  constructor(private readonly clock: SimClock) {}

  isHeld(path: string): boolean {
    const file = this.#files.get(path);
    return file !== undefined && (file.held || file.shared > 0);
  }

  /**
   * Takes the lock file exclusively, waiting up to `timeoutMs` of simulated time; then fails
   * with `can't lock file '<path>' - got timeout`.
   */
  acquire(path: string, timeoutMs: number): Promise<Release> {
    return this.#acquire(path, timeoutMs, 'exclusive');
  }

  /** Takes the lock file shared with other shared holders (the same timeout and message). */
  acquireShared(path: string, timeoutMs: number): Promise<Release> {
    return this.#acquire(path, timeoutMs, 'shared');
  }

  #acquire(path: string, timeoutMs: number, mode: Mode): Promise<Release> {
    const file = this.#files.get(path) ?? { held: false, shared: 0, waiters: [] };
    this.#files.set(path, file);
    const release: Release = () => this.#release(path, file, mode);
    const free = mode === 'exclusive' ? !file.held && file.shared === 0 : !file.held && file.waiters.length === 0;
    if (free) {
      this.#take(file, mode);
      return Promise.resolve(once(release));
    }
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = {
        mode,
        grant: () => {
          cancel();
          resolve(once(release));
        },
      };
      const cancel = this.clock.schedule(timeoutMs, () => {
        file.waiters.splice(file.waiters.indexOf(waiter), 1);
        reject(fail(`can't lock file '${path}' - got timeout`));
      });
      file.waiters.push(waiter);
    });
  }

  async with<T>(path: string, timeoutMs: number, fn: () => Promise<T> | T): Promise<T> {
    const release = await this.acquire(path, timeoutMs);
    try {
      return await fn();
    } finally {
      release();
    }
  }

  #take(file: LockFile, mode: Mode): void {
    if (mode === 'exclusive') file.held = true;
    else file.shared += 1;
  }

  #release(path: string, file: LockFile, mode: Mode): void {
    if (mode === 'exclusive') file.held = false;
    else file.shared -= 1;
    // Waiters are served in order: one exclusive holder, or every shared one up to the next exclusive.
    while (file.waiters.length > 0 && !file.held) {
      const next = file.waiters[0]!;
      if (next.mode === 'exclusive' && file.shared > 0) break;
      file.waiters.shift();
      this.#take(file, next.mode);
      next.grant();
      if (next.mode === 'exclusive') break;
    }
    if (!file.held && file.shared === 0 && file.waiters.length === 0) this.#files.delete(path);
  }
}

function once(fn: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    fn();
  };
}
