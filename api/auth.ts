/**
 * Who is calling, and what they may do. Identity comes only from the bearer token (never
 * from a header such as X-Actor-ID); tokens are configured as SHA-256 hashes, so the API
 * never holds a usable token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiToken, Role } from '../lib/config/schema.js';

/** What a route needs: reading, starting or cancelling operations, deciding on a plan. */
export type Permission = 'read' | 'start' | 'cancel' | 'decide';

const grants: Record<Role, readonly Permission[]> = {
  viewer: ['read'],
  operator: ['read', 'start', 'cancel'],
  approver: ['read', 'decide'],
  admin: ['read', 'start', 'cancel', 'decide'],
  // An automated requester (the MCP server): asks for plans, never decides or cancels.
  agent: ['read', 'start'],
};

export interface Identity {
  actor: string;
  roles: readonly Role[];
  /** Environments the actor may touch; all when absent. */
  environments?: readonly string[];
}

export type Authentication =
  { ok: true; identity: Identity } | { ok: false; reason: 'missing' | 'malformed' | 'unknown-token' };

/** RFC 6750 b64token. */
const bearer = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

export function createAuthenticator(
  tokens: readonly ApiToken[],
): (authorization: string | undefined) => Authentication {
  const known = tokens.map((t) => ({ token: t, hash: Buffer.from(t.sha256, 'hex') }));
  return (authorization) => {
    if (!authorization) return { ok: false, reason: 'missing' };
    const match = bearer.exec(authorization);
    if (!match) return { ok: false, reason: 'malformed' };
    const presented = createHash('sha256').update(match[1]!).digest();
    // Compare against every configured hash, so timing says nothing about which one matched.
    let found: ApiToken | undefined;
    for (const { token, hash } of known) {
      if (timingSafeEqual(presented, hash) && !found) found = token;
    }
    if (!found) return { ok: false, reason: 'unknown-token' };
    return {
      ok: true,
      identity: {
        actor: found.actor,
        roles: found.roles,
        ...(found.environments ? { environments: found.environments } : {}),
      },
    };
  };
}

export function can(identity: Identity, permission: Permission): boolean {
  return identity.roles.some((role) => grants[role].includes(permission));
}

export function inScope(identity: Identity, environment: string): boolean {
  return identity.environments === undefined || identity.environments.includes(environment);
}

/**
 * The approval policy's auto-approval applies to people only: whatever an agent requests
 * waits for a person, whatever its risk.
 */
export function autoApprovable(identity: Identity, policy: readonly ('low' | 'medium')[]): ('low' | 'medium')[] {
  return identity.roles.includes('agent') ? [] : [...policy];
}

/** The sha256 hex to put in `api.tokens[].sha256` for a token. */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
