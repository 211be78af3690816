/**
 * What the runbook and template integration tests share: the homelab scenario with its
 * automation token holding exactly the shipped least-privilege role.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ROLE_PRIVILEGES } from '../../lib/rbac.js';
import type { Scenario } from '../../sim/index.js';
import { homelabScenario } from '../../testkit/simulated-env.js';

export function homelabWithShippedRole(): Scenario {
  const homelab = parseYaml(readFileSync(homelabScenario, 'utf8')) as Scenario;
  return { ...homelab, roles: { ...homelab.roles, ProxmoxManager: [...ROLE_PRIVILEGES] } };
}
