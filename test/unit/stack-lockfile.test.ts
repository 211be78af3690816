/**
 * `npm ci` on a fresh clone: it refuses a lock file that lacks any optional dependency a
 * locked package declares (other platforms' native builds included), so the lock file must
 * list them all, whatever platform wrote it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

interface LockedPackage {
  version?: string;
  optionalDependencies?: Record<string, string>;
}

const lock = JSON.parse(readFileSync(fileURLToPath(new URL('../../package-lock.json', import.meta.url)), 'utf8')) as {
  packages: Record<string, LockedPackage>;
};

/** As npm resolves a dependency: in the nearest node_modules from the dependent up to the root. */
function resolvable(dependent: string, name: string): boolean {
  for (let dir = dependent; ; dir = dir.slice(0, Math.max(0, dir.lastIndexOf('/node_modules/')))) {
    if (lock.packages[dir ? `${dir}/node_modules/${name}` : `node_modules/${name}`]) return true;
    if (!dir) return false;
  }
}

describe('package-lock.json', () => {
  it('lists every optional dependency of every locked package, for every platform', () => {
    const missing: string[] = [];
    for (const [path, pkg] of Object.entries(lock.packages)) {
      for (const name of Object.keys(pkg.optionalDependencies ?? {})) {
        if (!resolvable(path, name)) missing.push(`${name} (optional dependency of ${path || 'the project'})`);
      }
    }
    expect(missing).toEqual([]);
  });
});
