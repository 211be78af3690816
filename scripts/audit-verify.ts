/**
 * Verifies the audit log's hash chain, and that the log still holds the newest record anchored
 * in Temporal (lib/audit/anchor.ts), so that cutting its end is caught even with `.head`
 * rewritten to match.
 *
 *   npx tsx scripts/audit-verify.ts [path] [--no-anchor]
 *
 * Without a path, checks the log the configuration names (`audit.path`): `PM_CONFIG`, else
 * config/proxmox-manager.yaml, else — right after `./scripts/demo.sh` — the demo's generated
 * data/demo/proxmox-manager.yaml. The anchor is looked up on the configuration's Temporal
 * server; when that cannot be reached, the output says the anchor was not checked. Prints `OK`
 * and exits 0 when every record is intact; otherwise (or when there is no log) prints the
 * problem and exits 1.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { anchorProblem, latestAnchor } from '../lib/audit/anchor.js';
import { createAuditLog } from '../lib/audit/log.js';
import { ConfigError, configPath, loadConfig } from '../lib/config/load.js';
import type { AppConfig } from '../lib/config/schema.js';
import { temporalConnectOptions } from '../lib/config/temporal.js';

const DEMO_CONFIG = 'data/demo/proxmox-manager.yaml';
const { values: options, positionals } = parseArgs({
  options: { 'no-anchor': { type: 'boolean', default: false } },
  allowPositionals: true,
});

function configuration(): AppConfig | undefined {
  const configured = configPath();
  const file =
    process.env.PM_CONFIG !== undefined || existsSync(configured) || !existsSync(DEMO_CONFIG)
      ? configured
      : resolve(DEMO_CONFIG);
  if (!positionals[0]) return loadConfig(file);
  // With a path given, the configuration only says where Temporal is: without one, no anchor.
  try {
    return existsSync(file) ? loadConfig(file) : undefined;
  } catch {
    return undefined;
  }
}

/** The anchor check's verdict line, or a problem. */
async function checkAnchor(path: string, config: AppConfig | undefined): Promise<{ line: string; problem?: string }> {
  if (options['no-anchor']) return { line: 'anchor: not checked (--no-anchor)' };
  if (!config) return { line: 'anchor: not checked (no configuration names a Temporal server)' };
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...temporalConnectOptions(config.temporal), connectTimeout: 5_000 });
  } catch {
    return { line: `anchor: not checked (Temporal at ${config.temporal.address} is not reachable)` };
  }
  try {
    const client = new Client({ connection, namespace: config.temporal.namespace });
    const anchor = await latestAnchor(client, path, { query: `TaskQueue = '${config.temporal.task_queue}'` });
    if (!anchor) return { line: 'anchor: none yet (no operation has written to this log)' };
    const problem = anchorProblem(await createAuditLog(path).read(), anchor);
    return {
      line: `anchor: record ${anchor.seq} (from ${anchor.workflowId}) is in the log`,
      ...(problem ? { problem } : {}),
    };
  } finally {
    await connection.close();
  }
}

try {
  const config = configuration();
  const path = resolve(positionals[0] ?? config!.audit.path);
  if (!existsSync(path)) throw new Error(`there is no audit log at ${path}`);
  const verdict = await createAuditLog(path).verify();
  if (!verdict.ok) {
    console.error(`PROBLEM: ${path}: line ${verdict.line}: ${verdict.problem}`);
    process.exitCode = 1;
  } else {
    const anchored = await checkAnchor(path, config);
    if (anchored.problem) {
      console.error(`PROBLEM: ${path}: ${anchored.problem}`);
      process.exitCode = 1;
    } else {
      console.log(`OK: ${path}: ${verdict.records} records, hash chain intact; ${anchored.line}`);
    }
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
