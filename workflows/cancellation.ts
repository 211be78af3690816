/**
 * How a cancelled workflow stops without abandoning PVE work half-way.
 *
 * Temporal cancels a workflow by cancelling its root scope: every activity, timer and child it
 * awaits would be abandoned at once — a migration left running with nobody following it, a
 * clone never checked. Workflows that act on PVE therefore run their work in a non-cancellable
 * scope and turn the cancel request into a flag: no new step starts, the steps already sent
 * are followed to their end, and then the workflow ends as cancelled. Only what is safe to
 * abandon (a child that handles the request itself, a pause) runs in `cancellable`.
 */
import { CancellationScope, CancelledFailure } from '@temporalio/workflow';

export interface Cancellation {
  /** The workflow was asked to cancel: start nothing new. */
  readonly requested: boolean;
  /** Runs `fn` in a scope cancelled when (or if already) the workflow is asked to cancel. */
  cancellable<T>(fn: () => Promise<T>): Promise<T>;
  /** Throws the cancellation when it was requested, naming what is not started. */
  throwIfRequested(what: string): void;
}

/** The failure a cancelled workflow ends with: `isCancellation` recognises it everywhere. */
export function notStarted(what: string): CancelledFailure {
  return new CancelledFailure(`${what} not started: the operation was cancelled`);
}

/** Call in the workflow's root scope, before its work starts in a non-cancellable one. */
export function watchCancellation(onRequest: () => void = () => {}): Cancellation {
  let requested = false;
  const scopes = new Set<CancellationScope>();
  CancellationScope.current().cancelRequested.catch(() => {
    requested = true;
    for (const scope of scopes) scope.cancel();
    onRequest();
  });
  return {
    get requested() {
      return requested;
    },
    async cancellable(fn) {
      const scope = new CancellationScope();
      scopes.add(scope);
      if (requested) scope.cancel();
      try {
        return await scope.run(fn);
      } finally {
        scopes.delete(scope);
      }
    },
    throwIfRequested(what) {
      if (requested) throw notStarted(what);
    },
  };
}
