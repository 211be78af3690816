/**
 * Prepares a Temporal cluster that proxmox-manager did not start itself (docker compose,
 * a shared cluster): creates the configured namespace and registers the project's search
 * attributes. Idempotent: what already exists is left alone.
 *
 *   PM_CONFIG=config/proxmox-manager.yaml npx tsx scripts/temporal-register.ts
 *
 * The dev server needs none of this: scripts/temporal-server.ts passes the same list as flags.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Connection, type ConnectionLike } from '@temporalio/client';
// The SDK exports this encoder for exactly this purpose: registering search attributes.
import { encodeSearchAttributeIndexedValueType } from '@temporalio/common/lib/search-attributes.js';
import { msToTs } from '@temporalio/common/lib/time.js';
import { loadConfig } from '../lib/config/load.js';
import { temporalConnectOptions } from '../lib/config/temporal.js';
import { searchAttributes } from '../workflows/search-attributes.js';

const ALREADY_EXISTS = 6; // gRPC status

export async function registerNamespaceAndSearchAttributes(
  connection: ConnectionLike,
  namespace: string,
  log: (line: string) => void = console.log,
): Promise<void> {
  try {
    await connection.workflowService.registerNamespace({
      namespace,
      workflowExecutionRetentionPeriod: msToTs('30 days'),
      description: 'proxmox-manager operations',
    });
    log(`namespace ${namespace}: created`);
  } catch (err) {
    if ((err as { code?: number }).code !== ALREADY_EXISTS) throw err;
    log(`namespace ${namespace}: exists`);
  }

  // A new namespace reaches the frontend's cache a few seconds after it is created.
  let existing: Record<string, unknown> | undefined;
  for (let attempt = 0; existing === undefined; attempt++) {
    try {
      existing = (await connection.operatorService.listSearchAttributes({ namespace })).customAttributes;
    } catch (err) {
      if (attempt >= 30) throw err;
      await sleep(1_000);
    }
  }
  const missing = searchAttributes.filter((key) => !(key.name in existing));
  if (missing.length > 0) {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(
        missing.map((key) => [key.name, encodeSearchAttributeIndexedValueType(key.type)!]),
      ),
    });
  }
  log(
    `search attributes: ${missing.length} added (${missing.map((k) => k.name).join(', ') || 'none'}), ` +
      `${searchAttributes.length - missing.length} already registered`,
  );
}

async function main(): Promise<void> {
  const { temporal } = loadConfig();
  let connection: Connection | undefined;
  for (let attempt = 0; !connection; attempt++) {
    try {
      connection = await Connection.connect({ ...temporalConnectOptions(temporal), connectTimeout: 5_000 });
    } catch (err) {
      if (attempt >= 60) throw err;
      console.log(`waiting for Temporal at ${temporal.address}...`);
      await sleep(2_000);
    }
  }
  try {
    await registerNamespaceAndSearchAttributes(connection, temporal.namespace);
  } finally {
    await connection.close();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err: Error) => {
    console.error(err.message);
    process.exit(1);
  });
}
