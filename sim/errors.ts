/**
 * The failures the simulated API answers with, shaped like PVE's: an HTTP status, a message
 * (its first line becomes the reason phrase) and, for 400, per-parameter `errors`.
 */
export class PveError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly errors?: Record<string, string>,
  ) {
    super(message);
    this.name = 'PveError';
  }
}

/** A handler failure: PVE answers `die "...\n"` with 500 and the message. */
export function fail(message: string): PveError {
  return new PveError(500, message);
}

export function parameterError(errors: Record<string, string>): PveError {
  return new PveError(400, 'Parameter verification failed.', errors);
}
