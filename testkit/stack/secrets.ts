/**
 * Looking for credentials where they must never be: every workflow history Temporal keeps
 * (found through visibility, fetched whole, JSON-stringified — inputs, results, failures,
 * heartbeats, memos, search attributes), and every log and audit line.
 */
import { appendFileSync, existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { mapBounded } from '../../lib/lifecycle/bounded.js';
import { loadScenarioFile } from '../../sim/scenario.js';
import { homelabScenario } from '../simulated-env.js';
import type { Secret } from './cluster.js';

export interface Leak {
  /** Where: a workflow id or a file path. */
  where: string;
  /** Which secret (its label, never its value). */
  secret: string;
}

export interface ScanResult {
  workflows: number;
  events: number;
  bytes: number;
  files: number;
  /** Other texts searched (API answers, error messages). */
  texts: number;
  leaks: Leak[];
}

/** Byte-level: protobuf payloads are base64 inside the JSON, so both spellings are searched. */
function find(text: string, secrets: readonly Secret[], where: string): Leak[] {
  const leaks: Leak[] = [];
  for (const s of secrets) {
    const spellings = [s.value, Buffer.from(s.value).toString('base64'), Buffer.from(s.value).toString('base64url')];
    if (spellings.some((v) => v.length >= 8 && text.includes(v))) leaks.push({ where, secret: s.label });
  }
  return leaks;
}

/** Every history the visibility query matches (e.g. `TaskQueue = 'q'`, or all: ''), 8 fetched at a time. */
export async function scanHistories(client: Client, query: string, secrets: readonly Secret[]): Promise<ScanResult> {
  const result: ScanResult = { workflows: 0, events: 0, bytes: 0, files: 0, texts: 0, leaks: [] };
  const runs: { workflowId: string; runId: string }[] = [];
  for await (const info of client.workflow.list(query ? { query } : {}))
    runs.push({ workflowId: info.workflowId, runId: info.runId });
  const scanned = await mapBounded(runs, 8, async ({ workflowId, runId }) => {
    const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
    // Payload data are bytes: search them both as base64 and decoded.
    const asBase64 = JSON.stringify(history, (_key, value: unknown) =>
      value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value,
    );
    const decoded = JSON.stringify(history, (_key, value: unknown) =>
      value instanceof Uint8Array ? Buffer.from(value).toString('utf8') : value,
    );
    return {
      events: history.events?.length ?? 0,
      bytes: asBase64.length,
      leaks: find(asBase64 + decoded, secrets, `workflow ${workflowId} (run ${runId})`),
    };
  });
  for (const [i, outcome] of scanned.entries()) {
    // A history that cannot be read is reported, not skipped silently.
    if (!outcome.ok) throw new Error(`cannot read the history of ${runs[i]!.workflowId}: ${String(outcome.error)}`);
    result.workflows++;
    result.events += outcome.value.events;
    result.bytes += outcome.value.bytes;
    result.leaks.push(...outcome.value.leaks);
  }
  return result;
}

export async function scanFiles(paths: readonly string[], secrets: readonly Secret[]): Promise<ScanResult> {
  const result: ScanResult = { workflows: 0, events: 0, bytes: 0, files: 0, texts: 0, leaks: [] };
  for (const path of new Set(paths)) {
    if (!existsSync(path)) continue;
    const text = await readFile(path, 'utf8');
    result.files++;
    result.bytes += text.length;
    result.leaks.push(...find(text, secrets, path));
  }
  return result;
}

export function scanTexts(texts: Record<string, string>, secrets: readonly Secret[]): ScanResult {
  const result: ScanResult = { workflows: 0, events: 0, bytes: 0, files: 0, texts: 0, leaks: [] };
  for (const [where, text] of Object.entries(texts)) {
    result.texts++;
    result.bytes += text.length;
    result.leaks.push(...find(text, secrets, where));
  }
  return result;
}

export function combine(...results: ScanResult[]): ScanResult {
  return results.reduce(
    (a, b) => ({
      workflows: a.workflows + b.workflows,
      events: a.events + b.events,
      bytes: a.bytes + b.bytes,
      files: a.files + b.files,
      texts: a.texts + b.texts,
      leaks: [...a.leaks, ...b.leaks],
    }),
    { workflows: 0, events: 0, bytes: 0, files: 0, texts: 0, leaks: [] },
  );
}

/**
 * Credentials of the fixtures other test files run with, and shapes that are credentials
 * whatever their value: searched for in every history of the test namespace.
 */
export async function fixtureSecrets(): Promise<Secret[]> {
  const homelab = await loadScenarioFile(homelabScenario);
  return [
    ...(homelab.tokens ?? []).map((t) => ({ label: `homelab token ${t.id}`, value: t.secret })),
    { label: 'bench automation token', value: 'bench-0123456789abcdef' },
    { label: 'API test PVE token', value: 'sim-secret-for-api-tests' },
    { label: 'dispatch test PVE token', value: 'suite-dispatch-secret-0123' },
    { label: 'a PVE token header', value: 'PVEAPIToken=' },
    { label: 'an OpenSSH private key', value: 'BEGIN OPENSSH PRIVATE KEY' },
    { label: 'a PEM private key', value: 'PRIVATE KEY-----' },
  ];
}

/**
 * The suite files of one test run tell the namespace-wide scan (suite-secrets.test.ts) what they
 * configured and when they are done, through a file (mode 0600) named after the run's Temporal
 * address: one JSON line per secret, and a `begin` and `done` line per test file. (A run without
 * suite-secrets.test.ts leaves the file in the temporary directory.)
 */
type SharedLine = { secret: Secret } | { begin: string } | { done: string };

function sharedFile(temporalAddress: string): string {
  return join(tmpdir(), `pm-suite-secrets-${temporalAddress.replace(/[^\w]/g, '_')}.jsonl`);
}

function share(temporalAddress: string, lines: SharedLine[]): void {
  appendFileSync(sharedFile(temporalAddress), lines.map((l) => `${JSON.stringify(l)}\n`).join(''), { mode: 0o600 });
}

/** A suite file's credentials, announced when it starts (`file` names it). */
export function shareSecrets(temporalAddress: string, file: string, secrets: readonly Secret[]): void {
  share(temporalAddress, [{ begin: file }, ...secrets.map((secret) => ({ secret }))]);
}

/** The file has ended: its histories are final. */
export function shareDone(temporalAddress: string, file: string): void {
  share(temporalAddress, [{ done: file }]);
}

/**
 * Waits until every suite file that announced itself is done (at most `timeoutMs`), then takes
 * the secrets they shared and removes the file.
 */
export async function takeSharedSecrets(
  temporalAddress: string,
  timeoutMs: number,
): Promise<{ secrets: Secret[]; files: string[]; unfinished: string[] }> {
  const path = sharedFile(temporalAddress);
  const read = async (): Promise<SharedLine[]> =>
    existsSync(path)
      ? (await readFile(path, 'utf8'))
          .split('\n')
          .filter(Boolean)
          .map((line) => JSON.parse(line) as SharedLine)
      : [];
  const unfinished = (lines: SharedLine[]) => {
    const done = new Set(lines.flatMap((l) => ('done' in l ? [l.done] : [])));
    return lines.flatMap((l) => ('begin' in l && !done.has(l.begin) ? [l.begin] : []));
  };
  const deadline = Date.now() + timeoutMs;
  let lines = await read();
  while (unfinished(lines).length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    lines = await read();
  }
  await rm(path, { force: true });
  return {
    secrets: lines.flatMap((l) => ('secret' in l ? [l.secret] : [])),
    files: lines.flatMap((l) => ('begin' in l ? [l.begin] : [])),
    unfinished: unfinished(lines),
  };
}
