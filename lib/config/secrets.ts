/**
 * Resolving secrets. Only the worker and the API process call this; nothing resolved here
 * is ever put into a workflow input, result, log line or error message.
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { EnvironmentConfig, SecretRef } from './schema.js';

const execFileAsync = promisify(execFile);

export class SecretError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretError';
  }
}

/** Where a secret comes from, for messages: never its value. */
export function describeSecretRef(ref: SecretRef): string {
  if ('env' in ref) return `environment variable ${ref.env}`;
  if ('file' in ref) return `file ${ref.file}`;
  return `pass entry ${ref.pass}`;
}

export async function resolveSecret(ref: SecretRef): Promise<string> {
  if ('env' in ref) {
    const value = process.env[ref.env];
    if (!value) throw new SecretError(`${describeSecretRef(ref)} is not set`);
    return value;
  }
  if ('file' in ref) {
    try {
      return (await readFile(ref.file, 'utf8')).trimEnd();
    } catch (err) {
      throw new SecretError(`${describeSecretRef(ref)} cannot be read (${(err as NodeJS.ErrnoException).code})`);
    }
  }
  try {
    const { stdout } = await execFileAsync('pass', ['show', ref.pass], { timeout: 15_000 });
    return stdout.trimEnd();
  } catch {
    // pass's own stderr may echo the entry; keep the message to the reference alone.
    throw new SecretError(`${describeSecretRef(ref)} could not be read with 'pass show'`);
  }
}

export interface ApiTokenCredential {
  /** `user@realm!tokenid` — an identifier, safe to log. */
  tokenId: string;
  secret: string;
}

/** Accepts `user@realm!tokenid=secret` on one line, or the seeds' two-line `pass` format. */
export function parseApiToken(text: string, source: string): ApiTokenCredential {
  const lines = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter(Boolean);
  if (lines.length >= 2 && lines[0]!.includes('!')) {
    return { tokenId: lines[0]!, secret: lines[1]! };
  }
  const oneLine = lines[0] ?? '';
  const eq = oneLine.indexOf('=');
  if (eq > 0 && oneLine.slice(0, eq).includes('!')) {
    return { tokenId: oneLine.slice(0, eq), secret: oneLine.slice(eq + 1) };
  }
  throw new SecretError(`${source} does not hold a PVE API token (expected 'user@realm!tokenid=secret' or two lines)`);
}

export async function resolveApiToken(env: EnvironmentConfig): Promise<ApiTokenCredential> {
  const ref: SecretRef = env.credentials.token ?? { pass: env.credentials.pass_path! };
  return parseApiToken(await resolveSecret(ref), describeSecretRef(ref));
}
