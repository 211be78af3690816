/**
 * The one place that waits on PVE tasks. A task has succeeded when it stopped with `OK` or
 * `WARNINGS: n`; anything else is its error message, reported with the end of its log.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { PveClient } from '../client.js';
import { isTransient, PveTaskFailedError, PveTaskWaitError } from '../errors.js';
import { parseUpid } from '../upid.js';
import type { TaskStatus } from './endpoints.js';

export interface WaitForTaskOptions {
  /** First poll interval; grows by half each poll up to `maxPollMs`. */
  pollMs?: number;
  maxPollMs?: number;
  /** Give up waiting (the task keeps running) after this long. */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Called after each poll while the task runs, with the last lines of its log so far. */
  onProgress?: (status: TaskStatus, logTail: string[]) => void | Promise<void>;
  /** How many log lines to keep for progress and failure reports. */
  tailLines?: number;
}

export function isTaskSuccess(exitstatus: string | undefined): boolean {
  return exitstatus === 'OK' || /^WARNINGS: \d+$/.test(exitstatus ?? '');
}

const LOG_PAGE = 500;

/** Follows a task log page by page, keeping only its tail. */
class LogTail {
  private seen = 0;
  readonly lines: string[] = [];

  constructor(
    private readonly client: PveClient,
    private readonly node: string,
    private readonly upid: string,
    private readonly keep: number,
  ) {}

  async catchUp(): Promise<string[]> {
    for (;;) {
      const page = await this.client.tasks.log({ node: this.node, upid: this.upid, start: this.seen, limit: LOG_PAGE });
      // An empty log reads as one placeholder line; it is not content to skip past later.
      if (this.seen === 0 && page.total <= 1 && page.lines[0]?.t === 'no content') break;
      for (const line of page.lines) this.lines.push(line.t);
      this.seen += page.lines.length;
      this.lines.splice(0, Math.max(0, this.lines.length - this.keep));
      if (page.lines.length < LOG_PAGE) break;
    }
    return [...this.lines];
  }
}

/** The failed task's log tail (the client repeats a read that fails transiently); what was read if it still fails. */
async function readFailureLog(log: LogTail): Promise<string[]> {
  try {
    return await log.catchUp();
  } catch {
    return log.lines;
  }
}

/**
 * Polls the task's status on the node in its UPID until it stops. Returns the final status
 * on success; throws PveTaskFailedError on failure and PveTaskWaitError when waiting ends
 * first (timeout or abort). Transient errors while polling are ridden out: reading a task's
 * status is always safe to repeat.
 */
export async function waitForTask(client: PveClient, upid: string, opts: WaitForTaskOptions = {}): Promise<TaskStatus> {
  const parsed = parseUpid(upid);
  if (!parsed) throw new Error(`not a PVE task id (UPID): ${upid}`);
  const { node } = parsed;
  const what = `task ${parsed.type}${parsed.id ? ` ${parsed.id}` : ''} on ${node} (${upid})`;
  const maxPollMs = opts.maxPollMs ?? 5_000;
  const deadline = opts.timeoutMs === undefined ? Infinity : Date.now() + opts.timeoutMs;
  const log = new LogTail(client, node, upid, opts.tailLines ?? 20);
  let pollMs = opts.pollMs ?? 250;

  for (;;) {
    if (opts.signal?.aborted) throw new PveTaskWaitError(upid, 'cancelled');
    let status: TaskStatus | undefined;
    try {
      status = await client.tasks.status({ node, upid });
    } catch (err) {
      if (!isTransient(err)) throw err;
    }
    if (status?.status === 'stopped') {
      if (isTaskSuccess(status.exitstatus)) return status;
      const tail = await readFailureLog(log);
      throw new PveTaskFailedError(upid, status.exitstatus ?? 'unknown exit status', tail, what);
    }
    if (status && opts.onProgress) await opts.onProgress(status, await log.catchUp());

    const wait = Math.min(pollMs, deadline - Date.now());
    if (wait <= 0) throw new PveTaskWaitError(upid, `timed out after ${opts.timeoutMs} ms`);
    try {
      await sleep(wait, undefined, { signal: opts.signal });
    } catch {
      throw new PveTaskWaitError(upid, 'cancelled');
    }
    pollMs = Math.min(Math.round(pollMs * 1.5), maxPollMs);
  }
}
