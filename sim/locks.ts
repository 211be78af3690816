/**
 * Guest config lock files (`/var/lock/qemu-server/lock-<vmid>.conf`), which PVE takes with a
 * timeout around config changes, clones and migrations. A second holder waits on the
 * simulated clock and gives up with PVE's message.
 */
import type { SimClock } from './clock.js';
import { fail } from './errors.js';

interface Waiter {
  grant: () => void;
}

interface LockFile {
  held: boolean;
  waiters: Waiter[];
}

export type Release = () => void;

export class LockFiles {
  readonly #files = new Map<string, LockFile>();

  constructor(private readonly clock: SimClock) {}

  isHeld(path: string): boolean {
    return this.#files.get(path)?.held ?? false;
  }

  /**
   * Takes the lock file, waiting up to `timeoutMs` of simulated time; then fails with
   * `can't lock file '<path>' - got timeout`.
   */
  acquire(path: string, timeoutMs: number): Promise<Release> {
    const file = this.#files.get(path) ?? { held: false, waiters: [] };
    this.#files.set(path, file);
    const release: Release = () => this.#release(path, file);
    if (!file.held) {
      file.held = true;
      return Promise.resolve(once(release));
    }
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = {
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

  #release(path: string, file: LockFile): void {
    const next = file.waiters.shift();
    if (next) next.grant();
    else {
      file.held = false;
      this.#files.delete(path);
    }
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
