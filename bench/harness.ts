/**
 * What every workflow benchmark needs: a real Temporal dev server with the workflow code
 * bundled once, and a way to write its table between markers in the docs.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { ensureTemporalCli } from '../scripts/temporal-cli.js';
import { startDevServer } from '../scripts/temporal-server.js';

export interface BenchTemporal {
  client: Client;
  connection: NativeConnection;
  namespace: string;
  bundle: string;
}

export async function withBenchTemporal<T>(fn: (t: BenchTemporal) => Promise<T>): Promise<T> {
  Runtime.install({ logger: new DefaultLogger('ERROR') });
  const cli = await ensureTemporalCli();
  const server = await startDevServer({ cli: cli.path });
  const connection = await NativeConnection.connect({ address: server.address });
  const clientConnection = await Connection.connect({ address: server.address });
  try {
    const { code: bundle } = await bundleWorkflowCode({
      workflowsPath: fileURLToPath(new URL('../workflows/index.ts', import.meta.url)),
      logger: { log() {}, trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error },
    });
    const client = new Client({ connection: clientConnection, namespace: server.namespace });
    return await fn({ client, connection, namespace: server.namespace, bundle });
  } finally {
    await connection.close();
    await clientConnection.close();
    await server.stop();
  }
}

/** Replaces what stands between the two markers in `doc` with a dated stamp and the tables. */
export async function writeDocSection(
  doc: string | URL,
  markers: readonly [string, string],
  stamp: string,
  tables: string,
): Promise<void> {
  const text = await readFile(doc, 'utf8');
  const start = text.indexOf(markers[0]);
  const end = text.indexOf(markers[1]);
  if (start < 0 || end < start) throw new Error(`${String(doc)} lacks the ${markers.join(' ... ')} markers`);
  const dated = `Measured ${new Date().toISOString().slice(0, 10)} ${stamp}`;
  await writeFile(doc, `${text.slice(0, start + markers[0].length)}\n${dated}\n\n${tables}\n${text.slice(end)}`);
}
