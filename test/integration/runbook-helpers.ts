/**
 * What the runbook and template integration tests share: the homelab scenario with its
 * automation token holding exactly the shipped least-privilege role, and the checksums of
 * what the simulator serves at a URL.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ROLE_PRIVILEGES } from '../../lib/rbac.js';
import { downloadContent } from '../../sim/downloads.js';
import type { Scenario } from '../../sim/index.js';
import { homelabScenario } from '../support/simulated-env.js';

export function homelabWithShippedRole(): Scenario {
  const homelab = parseYaml(readFileSync(homelabScenario, 'utf8')) as Scenario;
  return { ...homelab, roles: { ...homelab.roles, ProxmoxManager: [...ROLE_PRIVILEGES] } };
}

/** The digest of the bytes the simulator serves at `url` (sim/downloads.ts). */
export function checksumOf(url: string, algorithm = 'sha256'): string {
  return createHash(algorithm).update(downloadContent(url)).digest('hex');
}
