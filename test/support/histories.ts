/**
 * Recorded workflow histories, the replay test's material (test/integration/replay.test.ts).
 *
 * `npm run histories:record` (scripts/histories-record.sh) runs the integration tests that
 * drive every workflow type against the simulator, with PM_RECORD_HISTORIES set; before the
 * run's Temporal server stops, test/globalSetup.ts calls `recordHistories`, which keeps one
 * closed history per workflow type — a completed one when there is one (a type the tests only
 * see fail, such as storage cleanup refusing an in-use volume, gets its failed run), the
 * longest under a size cap, so the most decisions are checked — in
 * test/fixtures/histories/<workflowType>.json, Temporal's JSON history format (what
 * `temporal workflow show --output json` prints).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection, type WorkflowExecutionInfo } from '@temporalio/client';
import type { History } from '@temporalio/common/lib/proto-utils.js';
import { historyFromJSON, historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import * as workflows from '../../workflows/index.js';

export const historiesDir = fileURLToPath(new URL('../fixtures/histories/', import.meta.url));

/** Longer histories are passed over, so each fixture stays a reviewable size. */
const MAX_EVENTS = 600;

/**
 * The workflow types a worker must replay: one per workflow function. A function also exported
 * under an old type's name (kept for open executions) is the same code, so the export under
 * its own name stands for both.
 */
export function registeredWorkflowTypes(): string[] {
  const byType: Record<string, unknown> = workflows;
  const isAlias = (type: string, fn: unknown) => typeof fn === 'function' && fn.name !== type && byType[fn.name] === fn;
  return Object.entries(byType)
    .filter(([type, fn]) => !isAlias(type, fn))
    .map(([type]) => type)
    .sort();
}

/** Completed before failed, then longer before shorter, then by workflow id: one order, whatever the listing's. */
function better(a: WorkflowExecutionInfo, b: WorkflowExecutionInfo): boolean {
  const completed = Number(a.status.name === 'COMPLETED') - Number(b.status.name === 'COMPLETED');
  if (completed !== 0) return completed > 0;
  const longer = a.historyLength - b.historyLength;
  return longer !== 0 ? longer > 0 : a.workflowId < b.workflowId;
}

/** The execution worth recording for each registered workflow type. */
function choose(executions: WorkflowExecutionInfo[]): Map<string, WorkflowExecutionInfo> {
  const types = new Set(registeredWorkflowTypes());
  const chosen = new Map<string, WorkflowExecutionInfo>();
  for (const execution of executions) {
    if (!types.has(execution.type) || execution.historyLength > MAX_EVENTS) continue;
    const current = chosen.get(execution.type);
    if (!current || better(execution, current)) chosen.set(execution.type, execution);
  }
  return chosen;
}

/** Writes one history per workflow type found closed on the server; returns the types written. */
export async function recordHistories(address: string, namespace: string, dir = historiesDir): Promise<string[]> {
  const connection = await Connection.connect({ address });
  try {
    const client = new Client({ connection, namespace });
    const closed: WorkflowExecutionInfo[] = [];
    const query = 'ExecutionStatus = "Completed" OR ExecutionStatus = "Failed"';
    for await (const execution of client.workflow.list({ query })) closed.push(execution);
    await mkdir(dir, { recursive: true });
    const chosen = choose(closed);
    for (const [type, { workflowId, runId }] of chosen) {
      const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
      await writeFile(join(dir, `${type}.json`), `${historyToJSON(history)}\n`);
    }
    return [...chosen.keys()].sort();
  } finally {
    await connection.close();
  }
}

export interface RecordedHistory {
  workflowType: string;
  /** The recorded run's id: workflow code derives child workflow ids from it. */
  workflowId: string;
  history: History;
}

export function loadHistories(dir = historiesDir): RecordedHistory[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => {
      const history = historyFromJSON(JSON.parse(readFileSync(join(dir, file), 'utf8')));
      const workflowId = history.events?.[0]?.workflowExecutionStartedEventAttributes?.workflowId;
      if (!workflowId) throw new Error(`${file}: the history does not start with a workflow id`);
      return { workflowType: file.slice(0, -'.json'.length), workflowId, history };
    });
}
