/**
 * Environment checks every route shares: the environment must exist, and the caller's token
 * must be allowed to use it (a token scoped to `home` is refused `cloud` everywhere).
 */
import type { AppConfig } from '../lib/config/schema.js';
import { inScope } from './auth.js';
import { ApiError } from './errors.js';
import type { ApiContext } from './route.js';

/** `environment` names a configured environment the caller may use; `path` names the field it came from. */
export function requireEnvironment(c: ApiContext, config: AppConfig, environment: string, path = 'environment'): void {
  const identity = c.get('identity');
  // Own keys only: `constructor` or `__proto__` is not an environment.
  if (!Object.hasOwn(config.environments, environment)) {
    const usable = Object.keys(config.environments).filter((name) => inScope(identity, name));
    throw new ApiError(400, 'unknown_environment', `unknown environment '${environment}'`, [
      { path, message: `must be one of: ${usable.join(', ') || '(none for this token)'}` },
    ]);
  }
  requireScope(c, environment);
}

export function requireScope(c: ApiContext, environment: string): void {
  const identity = c.get('identity');
  if (!inScope(identity, environment)) {
    throw new ApiError(403, 'forbidden', `${identity.actor} may not use environment '${environment}'`);
  }
}
