/**
 * How an activity's failure becomes a Temporal failure — the one classifier, by what the
 * activity does to the world:
 *
 * - `'read'`: it only looks, and whatever it met may go differently next time (evacuation and
 *   maintenance checks). Everything is retryable but what no repetition can cure:
 *   credentials, privileges, parameters PVE refused, TLS pinning, a failed task, SSH that is
 *   not configured.
 * - `'write'`: it acts, or plans an action from what PVE said. PVE's refusal with a reason is
 *   final; only a read that met a passing hiccup, or a request PVE itself calls retryable (a
 *   brief lock), is retried. A write whose answer was lost is for the activity to resolve
 *   (from the node's task list) before it ever reaches here.
 *
 * Reads inside either are repeated in place by the PVE client first (lib/pve/client.ts), so
 * an activity fails over a read only after the client's own attempts ran out.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { FailureType } from '../lib/operations/failures.js';
import {
  InvalidRequestError,
  isTransient,
  PveAuthError,
  PveError,
  PvePermissionError,
  PveTaskFailedError,
  PveTlsError,
  PveValidationError,
} from '../lib/pve/errors.js';
import { SshError } from '../lib/ssh/client.js';
import { SshNotConfiguredError } from '../worker/deps.js';

export type Access = 'read' | 'write';

/** A fact about the world or the request: reported as it is, never retried. */
export function fail(type: FailureType, message: string, details?: unknown): never {
  throw ApplicationFailure.create({
    type,
    message,
    nonRetryable: true,
    ...(details === undefined ? {} : { details: [details] }),
  });
}

/** Errors no repetition can cure: credentials, privileges, parameters, TLS pinning. */
export function isPermanent(err: unknown): boolean {
  return (
    err instanceof PveAuthError ||
    err instanceof PvePermissionError ||
    err instanceof PveValidationError ||
    err instanceof PveTlsError ||
    err instanceof InvalidRequestError
  );
}

function retryable(err: PveError, access: Access): boolean {
  if (access === 'read') return !isPermanent(err);
  // A read inside a writing activity that met a passing hiccup is safe to repeat; a write is not.
  return err.retryable || (err.method === 'GET' && isTransient(err));
}

export function toTemporalFailure(err: unknown, access: Access): unknown {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof PveTaskFailedError) {
    return ApplicationFailure.create({
      type: err.name,
      message: err.message,
      nonRetryable: true,
      details: [{ upid: err.upid, exitstatus: err.exitstatus, logTail: err.logTail }],
    });
  }
  if (err instanceof PveError)
    return ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: !retryable(err, access) });
  // SSH: retryable only where nothing ran yet (connection, readiness); missing configuration never is.
  if (err instanceof SshError)
    return ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: !err.retryable });
  if (err instanceof SshNotConfiguredError)
    return ApplicationFailure.create({ type: err.name, message: err.message, nonRetryable: true });
  return err;
}

/** Runs an activity body and classifies whatever it throws. */
export async function classified<T>(access: Access, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toTemporalFailure(err, access);
  }
}
