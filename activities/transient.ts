/**
 * Telling a passing hiccup from an answer. PVE's refusals carry a reason ("VM 101 is locked",
 * "Configuration file ... does not exist"); a request that got no answer, a lock timeout or a
 * bare server error line says nothing about the request itself and may go differently a moment
 * later. Reads are repeated on such hiccups; a write is repeated only by a caller that has
 * first checked that the write did not happen.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isTransient } from '../lib/pve/errors.js';

export { isTransient };

const READ_ATTEMPTS = 5;

/** Runs a read, repeating it a few times (with growing pauses) while it fails transiently. */
export async function read<T>(fn: () => Promise<T>, pauseMs = 200): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransient(err) || attempt >= READ_ATTEMPTS) throw err;
      await sleep(pauseMs * attempt);
    }
  }
}
