/**
 * Looking for credentials where they must never be: every workflow history Temporal keeps
 * (found through visibility, fetched whole, JSON-stringified — inputs, results, failures,
 * heartbeats, memos, search attributes), and every log and audit line.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Client } from '@temporalio/client';
import { loadScenarioFile } from '../../../sim/scenario.js';
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

/** Every history the visibility query matches (e.g. `TaskQueue = 'q'`, or all: ''). */
export async function scanHistories(client: Client, query: string, secrets: readonly Secret[]): Promise<ScanResult> {
  const result: ScanResult = { workflows: 0, events: 0, bytes: 0, files: 0, texts: 0, leaks: [] };
  for await (const info of client.workflow.list(query ? { query } : {})) {
    const history = await client.workflow.getHandle(info.workflowId, info.runId).fetchHistory();
    // Payload data are bytes: stringify them as base64 so every byte is searched.
    const text = JSON.stringify(history, (_key, value: unknown) =>
      value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value,
    );
    const decoded = JSON.stringify(history, (_key, value: unknown) =>
      value instanceof Uint8Array ? Buffer.from(value).toString('utf8') : value,
    );
    result.workflows++;
    result.events += history.events?.length ?? 0;
    result.bytes += text.length;
    result.leaks.push(...find(text + decoded, secrets, `workflow ${info.workflowId} (run ${info.runId})`));
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
