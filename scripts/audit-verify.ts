/**
 * Verifies the audit log's hash chain.
 *
 *   npx tsx scripts/audit-verify.ts [path]
 *
 * Without a path, checks the log the configuration names (`audit.path`): `PM_CONFIG`, else
 * config/proxmox-manager.yaml, else — right after `./scripts/demo.sh` — the demo's generated
 * data/demo/proxmox-manager.yaml. Prints `OK` and
 * exits 0 when every record is intact; otherwise (or when there is no log) prints the
 * problem — the first broken line — and exits 1.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { createAuditLog } from '../lib/audit/log.js';
import { ConfigError, configPath, loadConfig } from '../lib/config/load.js';

const DEMO_CONFIG = 'data/demo/proxmox-manager.yaml';

function logPath(): string {
  const given = process.argv[2];
  if (given) return resolve(given);
  const configured = configPath();
  const config = process.env.PM_CONFIG !== undefined || existsSync(configured) || !existsSync(DEMO_CONFIG) ? configured : resolve(DEMO_CONFIG);
  return resolve(loadConfig(config).audit.path);
}

try {
  const path = logPath();
  if (!existsSync(path)) throw new Error(`there is no audit log at ${path}`);
  const verdict = await createAuditLog(path).verify();
  if (verdict.ok) {
    console.log(`OK: ${path}: ${verdict.records} records, hash chain intact`);
  } else {
    console.error(`PROBLEM: ${path}: line ${verdict.line}: ${verdict.problem}`);
    process.exitCode = 1;
  }
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(`cannot find the audit log: invalid configuration in ${err.source}`);
    for (const problem of err.problems) console.error(`  - ${problem}`);
  } else {
    console.error(`cannot verify the audit log: ${(err as Error).message}`);
  }
  process.exitCode = 1;
}
