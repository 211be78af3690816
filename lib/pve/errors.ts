/**
 * What can go wrong talking to PVE, as types callers can act on. Messages say what happened
 * and what to do; they never carry credentials or request headers.
 */
import type { Method } from './endpoint.js';

export interface PveRequestInfo {
  method: Method;
  /** Path below /api2/json. */
  path: string;
}

export class PveError extends Error {
  readonly method: Method;
  readonly path: string;
  /** HTTP status, when PVE answered at all. */
  readonly status: number | undefined;
  /** Whether sending the same request again may succeed. */
  readonly retryable: boolean;

  constructor(message: string, req: PveRequestInfo, opts: { status?: number; retryable: boolean }) {
    super(message);
    this.name = new.target.name;
    this.method = req.method;
    this.path = req.path;
    this.status = opts.status;
    this.retryable = opts.retryable;
  }

  toJSON() {
    return {
      name: this.name,
      message: this.message,
      method: this.method,
      path: this.path,
      status: this.status,
      retryable: this.retryable,
    };
  }
}

/**
 * A request our own code built wrongly, refused before anything was sent (the endpoint's
 * path template stands in for the path). Never retryable: it would fail the same way.
 */
export class InvalidRequestError extends PveError {
  readonly endpoint: string;
  readonly errors: Record<string, string>;

  constructor(endpoint: { name: string; method: Method; path: string }, errors: Record<string, string>) {
    const detail = Object.entries(errors)
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ');
    super(`invalid ${endpoint.name} request (a bug in the caller, nothing was sent): ${detail}`, endpoint, {
      retryable: false,
    });
    this.endpoint = endpoint.name;
    this.errors = errors;
  }
}

/** 401: the token is unknown, revoked, expired or its secret is wrong (PVE does not say which). */
export class PveAuthError extends PveError {
  constructor(req: PveRequestInfo, tokenId: string, reason: string) {
    super(
      `PVE rejected API token ${tokenId} (401 ${reason}) on ${req.method} ${req.path}: check that the token exists, ` +
        'has not expired, and that the configured secret belongs to it',
      req,
      { status: 401, retryable: false },
    );
  }
}

/** 403: `Permission check failed (/vms/101, VM.Migrate)`; `privileges` lists alternatives when PVE joined them with `|`. */
export class PvePermissionError extends PveError {
  readonly aclPath: string | undefined;
  readonly privileges: string[];

  constructor(req: PveRequestInfo, pveMessage: string) {
    const m = /Permission check failed \(([^,]+), ([^)]+)\)/.exec(pveMessage);
    const aclPath = m?.[1];
    const privileges = m ? m[2]!.split('|') : [];
    super(
      m
        ? `token lacks ${privileges.join(' or ')} on ${aclPath} (${req.method} ${req.path})`
        : `token lacks a privilege required for ${req.method} ${req.path} (${pveMessage})`,
      req,
      { status: 403, retryable: false },
    );
    this.aclPath = aclPath;
    this.privileges = privileges;
  }
}

/** 400: PVE refused the parameters; `errors` is keyed by parameter name. */
export class PveValidationError extends PveError {
  readonly errors: Record<string, string>;

  constructor(req: PveRequestInfo, pveMessage: string, errors: Record<string, string>) {
    const detail = Object.entries(errors)
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ');
    super(`PVE rejected ${req.method} ${req.path}: ${pveMessage}${detail ? ` ${detail}` : ''}`, req, {
      status: 400,
      retryable: false,
    });
    this.errors = errors;
  }
}

/** Lock contention PVE reports when another operation holds a guest or cluster lock briefly. */
const TRANSIENT_MESSAGES = [
  /can't lock file '[^']*' - got timeout/,
  /got lock request timeout/,
  /cfs-lock '[^']*' error: got lock timeout/,
];

/** Any other refusal (mostly 500), with PVE's own message, e.g. `VM 100 is running - destroy failed`. */
export class PveApiError extends PveError {
  readonly pveMessage: string;

  constructor(req: PveRequestInfo, status: number, pveMessage: string) {
    super(`${req.method} ${req.path} failed (${status}): ${pveMessage}`, req, {
      status,
      retryable: TRANSIENT_MESSAGES.some((re) => re.test(pveMessage)),
    });
    this.pveMessage = pveMessage;
  }
}

/**
 * PVE could not be reached or did not answer in time (connection refused/reset, timeouts,
 * 502-504, 595/596 from pveproxy forwarding to another node). The underlying error is
 * summarised in the message rather than attached, so nothing from the request travels with it.
 * Retryable unless the request
 * may already have reached PVE and was not a read: repeating a POST that PVE may have acted on
 * is the caller's decision, made after checking the world.
 */
export class PveUnavailableError extends PveError {
  readonly requestMayHaveBeenSent: boolean;

  constructor(req: PveRequestInfo, detail: string, opts: { status?: number; requestMayHaveBeenSent: boolean }) {
    super(`PVE unavailable for ${req.method} ${req.path}: ${detail}`, req, {
      status: opts.status,
      retryable: req.method === 'GET' || !opts.requestMayHaveBeenSent,
    });
    this.requestMayHaveBeenSent = opts.requestMayHaveBeenSent;
  }
}

/** The node's TLS certificate did not match the pinned fingerprint or configured CA: nothing was sent. */
export class PveTlsError extends PveError {
  constructor(req: PveRequestInfo, host: string, detail: string) {
    super(`refusing ${host} for ${req.method} ${req.path}: ${detail}`, req, { retryable: false });
  }
}

/**
 * Whether a failed call may go differently a moment later: no answer, a lock timeout, or a
 * bare server error line (which says nothing about the request itself). A read is repeated on
 * such hiccups; a write only by a caller that first checked the write did not happen.
 */
export function isTransient(err: unknown): boolean {
  if (err instanceof PveUnavailableError) return true;
  return err instanceof PveApiError && (err.retryable || BARE_SERVER_ERROR.test(err.pveMessage.trim()));
}

const BARE_SERVER_ERROR = /^(Internal Server Error|Service Unavailable|Bad Gateway|Gateway Timeout)$/;

/** A PVE task ended with an error exit status. */
export class PveTaskFailedError extends Error {
  readonly upid: string;
  readonly exitstatus: string;
  readonly logTail: string[];
  readonly retryable = false;

  constructor(upid: string, exitstatus: string, logTail: string[], what?: string) {
    const tail = logTail.length > 0 ? `\n${logTail.join('\n')}` : '';
    super(`${what ?? `task ${upid}`} failed: ${exitstatus}${tail}`);
    this.name = 'PveTaskFailedError';
    this.upid = upid;
    this.exitstatus = exitstatus;
    this.logTail = logTail;
  }

  toJSON() {
    return {
      name: this.name,
      message: this.message,
      upid: this.upid,
      exitstatus: this.exitstatus,
      logTail: this.logTail,
    };
  }
}

/** Waiting for a task ended before the task did (timeout or cancellation); the task may still be running. */
export class PveTaskWaitError extends Error {
  readonly retryable = true;

  constructor(
    readonly upid: string,
    reason: string,
  ) {
    super(`stopped waiting for task ${upid}: ${reason}; the task may still be running`);
    this.name = 'PveTaskWaitError';
  }
}
