/**
 * The API process: configuration -> Temporal connection -> app -> HTTP server.
 *   PM_CONFIG=config/proxmox-manager.yaml npx tsx api/main.ts
 */
import { serve } from '@hono/node-server';
import { Client, Connection } from '@temporalio/client';
import { createAuditLog } from '../lib/audit/log.js';
import { ConfigError, loadConfig } from '../lib/config/load.js';
import { temporalConnectOptions } from '../lib/config/temporal.js';
import { createApp } from './app.js';
import { createReadOnlyProxmox } from './proxmox.js';

class StartupError extends Error {}

async function main(): Promise<void> {
  const config = loadConfig();
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...temporalConnectOptions(config.temporal), connectTimeout: 5_000 });
  } catch {
    throw new StartupError(
      `Temporal at ${config.temporal.address} is not reachable: start it with 'npm run demo' or set temporal.address in ${process.env.PM_CONFIG ?? 'the config'}`,
    );
  }
  const app = createApp({
    config,
    temporal: {
      client: new Client({ connection, namespace: config.temporal.namespace }),
      taskQueue: config.temporal.task_queue,
      uiUrl: config.temporal.ui_url,
      namespace: config.temporal.namespace,
    },
    audit: createAuditLog(config.audit.path),
    proxmox: createReadOnlyProxmox(config),
  });
  if (config.api.tokens.length === 0) {
    console.warn('api: no tokens configured (api.tokens): every /v1 request will be answered 401');
  }

  const server = serve({ fetch: app.fetch, hostname: config.api.host, port: config.api.port }, (info) => {
    console.log(
      `api: listening on http://${info.address}:${info.port} (docs at /docs), Temporal ${config.temporal.address}`,
    );
  });
  server.once('error', (err: NodeJS.ErrnoException) => {
    console.error(
      err.code === 'EADDRINUSE'
        ? `api: port ${config.api.port} on ${config.api.host} is already in use: stop whatever holds it or set api.port`
        : `api: cannot listen: ${err.message}`,
    );
    process.exit(1);
  });

  const shutdown = () => {
    console.log('api: shutting down');
    // Stop accepting, let requests in flight finish, then drop the Temporal connection.
    server.close(() => void connection.close().finally(() => process.exit(0)));
    setTimeout(() => process.exit(0), 10_000).unref();
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) {
    console.error(`api: invalid configuration in ${err.source}:`);
    for (const problem of err.problems) console.error(`  - ${problem}`);
  } else if (err instanceof StartupError) {
    console.error(`api: ${err.message}`);
  } else {
    console.error(`api: stopped: ${err instanceof Error ? err.message : String(err)}`);
  }
  process.exit(1);
});
