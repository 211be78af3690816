/**
 * The audit log: append-only JSON lines, one record per event, hash-chained so that any
 * edited, deleted, inserted or reordered line is detected by `verify()`.
 *
 * Several processes append to the same file (the API and every worker), so each append
 * holds a lock file while it reads the last record's hash and writes its line. A sidecar
 * `<path>.head` remembers the newest record, so removing lines from the end is detected too.
 *
 * The log stores exactly what callers pass. Callers pass safe fields only: never a token,
 * password, key or request header.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import { GENESIS_HASH, recordHash } from './chain.js';
import { withFileLock, type FileLockOptions } from './lock.js';

export interface AuditEntry {
  /** Stable id of the event: appending the same eventId twice records it once (retried activities). */
  eventId?: string;
  actor: string;
  action: string;
  result: string;
  operationId?: string;
  kind?: string;
  environment?: string;
  detail?: Record<string, unknown>;
}

export interface AuditRecord extends AuditEntry {
  seq: number;
  /** ISO time of the append. */
  at: string;
  /** Hash of the previous record (64 zeros for the first). */
  prev: string;
  hash: string;
}

export interface AuditFilter {
  actor?: string;
  /** Exact action, or a prefix ending in `*` (`operation.*`). */
  action?: string;
  operationId?: string;
  /** One environment, or any of several. */
  environment?: string | readonly string[];
  since?: Date | string;
  until?: Date | string;
  /** Keep only the newest `limit` matches. */
  limit?: number;
}

export type AuditVerification = { ok: true; records: number } | { ok: false; line: number; problem: string };

export interface AuditLog {
  readonly path: string;
  append(entry: AuditEntry): Promise<AuditRecord>;
  /** Matching records, oldest first. */
  read(filter?: AuditFilter): Promise<AuditRecord[]>;
  verify(): Promise<AuditVerification>;
}

export interface AuditLogOptions {
  now?: () => Date;
  lock?: FileLockOptions;
  /** Flush every append to disk before returning (default true). */
  fsync?: boolean;
  /** How far back (bytes from the end) an eventId is looked for before appending. */
  dedupeWindowBytes?: number;
}

export class AuditLogError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuditLogError';
  }
}

/** The log says who did what: only its owner (the service account) reads it. */
const FILE_MODE = 0o600;

interface Head {
  seq: number;
  hash: string;
}

const FIELD_ORDER = [
  'seq',
  'at',
  'eventId',
  'actor',
  'action',
  'result',
  'operationId',
  'kind',
  'environment',
  'detail',
  'prev',
  'hash',
] as const;

/** The record as it is written: fields in a readable order, exactly what JSON can carry. */
function normalize(record: Record<string, unknown>): Record<string, unknown> {
  const ordered: Record<string, unknown> = {};
  for (const key of FIELD_ORDER) if (record[key] !== undefined) ordered[key] = record[key];
  return JSON.parse(JSON.stringify(ordered)) as Record<string, unknown>;
}

function isRecord(value: unknown): value is AuditRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const r = value as Record<string, unknown>;
  return (
    typeof r.seq === 'number' &&
    typeof r.at === 'string' &&
    typeof r.actor === 'string' &&
    typeof r.action === 'string' &&
    typeof r.result === 'string' &&
    typeof r.prev === 'string' &&
    typeof r.hash === 'string'
  );
}

function checkEntry(entry: AuditEntry): void {
  for (const field of ['actor', 'action', 'result'] as const) {
    if (typeof entry[field] !== 'string' || entry[field].length === 0) {
      throw new AuditLogError(`audit entry needs a non-empty ${field}`);
    }
  }
  if (
    entry.detail !== undefined &&
    (typeof entry.detail !== 'object' || entry.detail === null || Array.isArray(entry.detail))
  ) {
    throw new AuditLogError('audit entry detail must be an object');
  }
}

/**
 * Complete lines at the end of the file: at least `minBytes` worth, and at least one line
 * when the file has any. Reads further back only when the last line is longer than that.
 */
async function readTailLines(path: string, minBytes: number): Promise<string[]> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  try {
    const { size } = await handle.stat();
    for (let window = minBytes; ; window *= 4) {
      const start = Math.max(0, size - window);
      const buffer = Buffer.alloc(size - start);
      await handle.read(buffer, 0, buffer.length, start);
      const lines = buffer.toString('utf8').split('\n');
      if (start > 0) lines.shift(); // partial: it began before the window
      const complete = lines.filter((l) => l.length > 0);
      if (complete.length > 0 || start === 0) return complete;
    }
  } finally {
    await handle.close();
  }
}

async function readHead(path: string): Promise<Head | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const head = JSON.parse(text) as Head;
  if (typeof head.seq !== 'number' || typeof head.hash !== 'string')
    throw new AuditLogError(`${path} is not an audit head`);
  return head;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function fileSize(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

function toMs(value: Date | string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = value instanceof Date ? value.getTime() : Date.parse(value);
  if (Number.isNaN(ms)) throw new AuditLogError(`not a time: ${String(value)}`);
  return ms;
}

function matcher(filter: AuditFilter): (r: AuditRecord) => boolean {
  const since = toMs(filter.since);
  const until = toMs(filter.until);
  const action = filter.action;
  const actionMatches =
    action === undefined
      ? () => true
      : action.endsWith('*')
        ? (a: string) => a.startsWith(action.slice(0, -1))
        : (a: string) => a === action;
  const environments = typeof filter.environment === 'string' ? [filter.environment] : filter.environment;
  return (r) =>
    (filter.actor === undefined || r.actor === filter.actor) &&
    actionMatches(r.action) &&
    (filter.operationId === undefined || r.operationId === filter.operationId) &&
    (environments === undefined || (r.environment !== undefined && environments.includes(r.environment))) &&
    (since === undefined || Date.parse(r.at) >= since) &&
    (until === undefined || Date.parse(r.at) <= until);
}

/** Lines of the file, up to byte `end` (exclusive) when given. */
async function* lines(path: string, end?: number): AsyncGenerator<string> {
  if (end === 0) return;
  const stream = createReadStream(path, { encoding: 'utf8', ...(end !== undefined ? { end: end - 1 } : {}) });
  try {
    yield* createInterface({ input: stream, crlfDelay: Infinity });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  } finally {
    stream.destroy();
  }
}

export function createAuditLog(path: string, options: AuditLogOptions = {}): AuditLog {
  const now = options.now ?? (() => new Date());
  const fsync = options.fsync ?? true;
  const dedupeWindowBytes = options.dedupeWindowBytes ?? 256 * 1024;
  const lockPath = `${path}.lock`;
  const headPath = `${path}.head`;
  // Appends from this process queue here; the lock file orders them against other processes.
  let queue: Promise<unknown> = Promise.resolve();

  async function appendLocked(entry: AuditEntry): Promise<AuditRecord> {
    const tail = await readTailLines(path, entry.eventId === undefined ? 4096 : dedupeWindowBytes);
    if (entry.eventId !== undefined) {
      const needle = `"eventId":${JSON.stringify(entry.eventId)}`;
      for (const line of tail) {
        if (!line.includes(needle)) continue;
        const existing: unknown = JSON.parse(line);
        if (isRecord(existing) && existing.eventId === entry.eventId) return existing;
      }
    }

    let last: AuditRecord | undefined;
    const lastLine = tail.at(-1);
    if (lastLine !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(lastLine);
      } catch {
        parsed = undefined;
      }
      if (!isRecord(parsed)) {
        throw new AuditLogError(
          `${path} ends with a line that is not an audit record; run the audit verifier before appending`,
        );
      }
      last = parsed;
    }

    const record = normalize({
      ...entry,
      seq: (last?.seq ?? 0) + 1,
      at: now().toISOString(),
      prev: last?.hash ?? GENESIS_HASH,
    });
    record.hash = recordHash(record);

    const handle = await open(path, 'a', FILE_MODE);
    try {
      await handle.write(`${JSON.stringify(record)}\n`);
      if (fsync) await handle.datasync();
    } finally {
      await handle.close();
    }
    const head: Head = { seq: record.seq as number, hash: record.hash as string };
    await writeFile(`${headPath}.tmp`, JSON.stringify(head), { mode: FILE_MODE });
    await rename(`${headPath}.tmp`, headPath);
    return record as unknown as AuditRecord;
  }

  return {
    path,

    async append(entry) {
      checkEntry(entry);
      const result = queue.then(async () => {
        await mkdir(dirname(path), { recursive: true });
        return withFileLock(lockPath, () => appendLocked(entry), options.lock);
      });
      queue = result.catch(() => undefined);
      return result;
    },

    async read(filter = {}) {
      const matches = matcher(filter);
      const limit = filter.limit ?? Infinity;
      const found: AuditRecord[] = [];
      for await (const line of lines(path)) {
        if (line.length === 0) continue;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          continue; // verify() reports it; reading shows what can be read
        }
        if (isRecord(value) && matches(value)) {
          found.push(value);
          if (found.length > limit) found.shift();
        }
      }
      return found;
    },

    async verify() {
      // Nothing was ever written here (and verifying must not create the directory).
      if (!(await exists(dirname(path)))) return { ok: true, records: 0 };
      // The log as of now: appends that land while we read are left for the next verify.
      let snapshot: { head: Head | undefined; size: number };
      try {
        snapshot = await withFileLock(
          lockPath,
          async () => ({ head: await readHead(headPath), size: await fileSize(path) }),
          options.lock,
        );
      } catch (err) {
        if (err instanceof SyntaxError || err instanceof AuditLogError) {
          return { ok: false, line: 0, problem: `${headPath} is unreadable (${err.message})` };
        }
        throw err;
      }
      const { head, size } = snapshot;
      let lineNo = 0;
      let records = 0;
      let prev = GENESIS_HASH;
      let lastHash: string | undefined;
      for await (const line of lines(path, size)) {
        lineNo += 1;
        if (line.length === 0) return { ok: false, line: lineNo, problem: 'blank line inside the log' };
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          return { ok: false, line: lineNo, problem: 'not valid JSON' };
        }
        if (!isRecord(value))
          return { ok: false, line: lineNo, problem: 'not an audit record (fields missing or of the wrong type)' };
        if (recordHash(value as unknown as Record<string, unknown>) !== value.hash) {
          return { ok: false, line: lineNo, problem: `record ${value.seq} does not match its hash (it was edited)` };
        }
        if (value.seq !== records + 1) {
          return {
            ok: false,
            line: lineNo,
            problem: `expected record ${records + 1} but found record ${value.seq} (records were deleted, inserted or reordered)`,
          };
        }
        if (value.prev !== prev) {
          return { ok: false, line: lineNo, problem: `record ${value.seq} does not chain to the record before it` };
        }
        records += 1;
        prev = value.hash;
        if (value.seq === head?.seq) lastHash = value.hash;
      }
      if (head === undefined && records > 0) {
        return {
          ok: false,
          line: lineNo,
          problem: `${headPath} is missing: whether records were removed from the end cannot be told`,
        };
      }
      if (head !== undefined) {
        if (records < head.seq) {
          return {
            ok: false,
            line: lineNo + 1,
            problem: `the log ends at record ${records} but record ${head.seq} was written (records were removed from the end)`,
          };
        }
        if (lastHash !== head.hash) {
          return { ok: false, line: head.seq, problem: `record ${head.seq} is not the record that was written` };
        }
      }
      return { ok: true, records };
    },
  };
}
