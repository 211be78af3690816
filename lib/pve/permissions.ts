/**
 * PVE's permission checks (pve-access-control RPCEnvironment.pm), as data on each endpoint
 * and one evaluator, so the simulator denies exactly what PVE denies with PVE's message.
 */

export type PermissionCheck =
  /** Privileges on an ACL path; `{vmid}`-style placeholders are filled from the request parameters. */
  | { kind: 'perm'; path: string; privs: readonly string[]; any?: boolean; requireParam?: string }
  | { kind: 'and' | 'or'; checks: readonly PermissionCheck[] }
  /** Any authenticated user (the handler may filter what it returns). */
  | { kind: 'user-all' }
  /** The `userid` parameter is absent, names the caller, or names one of the calling user's tokens. */
  | { kind: 'userid-param' }
  /** The caller started the task named by the `upid` parameter. */
  | { kind: 'task-owner' };

export interface PermissionSubject {
  /** `user@realm`, or `user@realm!token` for an API token. */
  userid: string;
  /** Effective privileges at an ACL path (after propagation and token privilege separation). */
  privilegesAt(path: string): ReadonlySet<string>;
  /** Owner (`user@realm` or token id) of a task, when the subject can know it. */
  taskOwner?(upid: string): string | undefined;
}

export type PermissionResult = { allowed: true } | { allowed: false; message: string };

class PermissionDenied {
  constructor(readonly detail?: string) {}
}

/** PVE's template_replace + normalize_path: `/vms/{vmid}` -> `/vms/101`, no duplicate or trailing slashes. */
export function permissionPath(template: string, params: Readonly<Record<string, unknown>>): string {
  const filled = template.replace(/\{(\w+)\}/g, (_, name: string) => String(params[name] ?? ''));
  return `/${filled.split('/').filter(Boolean).join('/')}`;
}

function ownerUser(id: string): string {
  return id.split('!')[0]!;
}

/** One check; `noerr` mirrors PVE: inside and/or a failure is a plain false, at top level it names the path. */
function evaluate(
  check: PermissionCheck,
  params: Readonly<Record<string, unknown>>,
  subject: PermissionSubject,
  noerr: boolean,
): boolean {
  switch (check.kind) {
    case 'user-all':
      return true;
    case 'and':
      return check.checks.every((c) => evaluate(c, params, subject, true));
    case 'or':
      return check.checks.some((c) => evaluate(c, params, subject, true));
    case 'userid-param': {
      const userid = params['userid'];
      if (userid === undefined || userid === subject.userid) return true;
      // A user may also ask about its own tokens (not a token about its user).
      if (typeof userid === 'string' && ownerUser(userid) === subject.userid) return true;
      if (noerr) return false;
      throw new PermissionDenied();
    }
    case 'task-owner': {
      const owner = typeof params['upid'] === 'string' ? subject.taskOwner?.(params['upid']) : undefined;
      if (owner !== undefined && (owner === subject.userid || owner === ownerUser(subject.userid))) return true;
      if (noerr) return false;
      throw new PermissionDenied();
    }
    case 'perm': {
      if (check.requireParam !== undefined && params[check.requireParam] === undefined) {
        if (noerr) return false;
        throw new PermissionDenied();
      }
      const path = permissionPath(check.path, params);
      const held = subject.privilegesAt(path);
      if (check.any) {
        if (check.privs.some((p) => held.has(p))) return true;
        if (noerr) return false;
        throw new PermissionDenied(`${path}, ${check.privs.join('|')}`);
      }
      const missing = check.privs.find((p) => !held.has(p));
      if (missing === undefined) return true;
      if (noerr) return false;
      throw new PermissionDenied(`${path}, ${missing}`);
    }
  }
}

/**
 * Evaluates an endpoint's check for a caller. Denials carry PVE's 403 message:
 * `Permission check failed (/vms/101, VM.Migrate)` for a single check, a bare
 * `Permission check failed` when a compound check fails.
 */
export function checkPermission(
  check: PermissionCheck,
  params: Readonly<Record<string, unknown>>,
  subject: PermissionSubject,
): PermissionResult {
  try {
    if (evaluate(check, params, subject, false)) return { allowed: true };
    return { allowed: false, message: 'Permission check failed' };
  } catch (err) {
    if (!(err instanceof PermissionDenied)) throw err;
    return {
      allowed: false,
      message: err.detail ? `Permission check failed (${err.detail})` : 'Permission check failed',
    };
  }
}
