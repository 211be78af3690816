/**
 * Recorded workflow histories: the replay test's material. `npm run histories:record` runs the
 * integration tests with PM_RECORD_HISTORIES=1; before the shared Temporal server stops, one
 * completed history per workflow type (the longest, up to a size cap) is written to
 * test/histories/<type>.json. The replay test then runs every one of them against the current
 * workflow code: a change that would break operations already running fails there.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils.js';

export const historiesDir = fileURLToPath(new URL('../histories/', import.meta.url));
/** Histories above this many events are passed over: the fixture stays reviewable. */
const MAX_EVENTS = 3_000;

export async function recordHistories(address: string, namespace: string, dir = historiesDir): Promise<string[]> {
  const connection = await Connection.connect({ address });
  try {
    const client = new Client({ connection, namespace });
    const best = new Map<string, { workflowId: string; runId: string; events: number }>();
    for await (const execution of client.workflow.list({ query: 'ExecutionStatus = "Completed"' })) {
      const events = execution.historyLength;
      const current = best.get(execution.type);
      if (events <= MAX_EVENTS && (!current || events > current.events)) {
        best.set(execution.type, { workflowId: execution.workflowId, runId: execution.runId, events });
      }
    }
    await mkdir(dir, { recursive: true });
    for (const [type, { workflowId, runId }] of best) {
      const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
      await writeFile(join(dir, `${type}.json`), `${historyToJSON(history)}\n`);
    }
    return [...best.keys()].sort();
  } finally {
    await connection.close();
  }
}

export interface RecordedHistory {
  workflowType: string;
  history: ReturnType<typeof historyFromJSON>;
}

export function loadHistories(dir = historiesDir): RecordedHistory[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({ workflowType: f.slice(0, -'.json'.length), history: historyFromJSON(JSON.parse(readFileSync(join(dir, f), 'utf8'))) }));
}
