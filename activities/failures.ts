/**
 * How a failure talking to Proxmox becomes a Temporal failure: retryable where repeating
 * the call is safe (PVE unreachable, a brief lock), non-retryable where it would only fail
 * again or could act twice (bad token, missing privilege, refused parameters, failed task).
 */
import { ApplicationFailure } from '@temporalio/activity';
import { PveError, PveTaskFailedError } from '../lib/pve/errors.js';
import { isTransient } from './transient.js';

export function toTemporalFailure(err: unknown): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof PveTaskFailedError) {
    return ApplicationFailure.create({
      type: err.name,
      message: err.message,
      nonRetryable: true,
      details: [{ upid: err.upid, exitstatus: err.exitstatus, logTail: err.logTail }],
    });
  }
  if (err instanceof PveError) {
    // A read that met a passing hiccup (a bare 5xx, a lock timeout) is safe to repeat; a write is not.
    const retryable = err.retryable || (err.method === 'GET' && isTransient(err));
    return ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: !retryable });
  }
  return err;
}

/** Runs an activity body and translates whatever it throws. */
export async function withPveFailures<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toTemporalFailure(err);
  }
}
