/**
 * PVE worker tasks: real-format UPIDs, a log, `running` then `stopped` with an exit status
 * (`OK`, `WARNINGS: N`, or the error message), all on the simulated clock.
 */
import { formatUpid } from '../lib/pve/upid.js';
import type { SimClock } from './clock.js';
import type { Counters } from './counters.js';
import type { Faults } from './faults.js';
import type { ClusterState } from './state.js';

export interface TaskRecord {
  upid: string;
  node: string;
  pid: number;
  pstart: number;
  starttime: number;
  type: string;
  id: string;
  /** `user@realm` */
  user: string;
  tokenid?: string;
  status: 'running' | 'stopped';
  exitstatus?: string;
  endtime?: number;
  readonly lines: string[];
  warnings: number;
  /** Settles when the task stops (never rejects). */
  readonly done: Promise<void>;
}

export interface TaskContext {
  readonly task: TaskRecord;
  readonly signal: AbortSignal;
  log(line: string): void;
  /** A `WARN:` line; PVE counts these into `WARNINGS: N`. */
  warn(line: string): void;
  /** A line prefixed with the time, as migration logs have. */
  logTimed(line: string, level?: 'info' | 'err'): void;
  sleep(simMs: number): Promise<void>;
}

export type TaskRunner = (ctx: TaskContext) => Promise<void>;

export interface StartTask {
  node: string;
  type: string;
  /** Usually the vmid; empty for node-level tasks. */
  id: string;
  /** `user@realm` or `user@realm!token`. */
  authid: string;
  run: TaskRunner;
  /** Undoes what the API call prepared (e.g. a reserved config) when the task fails. */
  onError?: () => void;
}

class TaskInterrupted extends Error {
  constructor() {
    super('interrupted by signal');
  }
}

function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

export class TaskRegistry {
  readonly #byUpid = new Map<string, TaskRecord>();
  readonly #byNode = new Map<string, TaskRecord[]>();
  readonly #aborts = new Map<string, AbortController>();
  readonly #nextPid = new Map<string, number>();

  constructor(
    private readonly clock: SimClock,
    private readonly state: ClusterState,
    private readonly counters: Counters,
    private readonly faults: Faults,
  ) {}

  start(request: StartTask): TaskRecord {
    const node = this.state.node(request.node);
    // PVE stamps a task with its node's clock, which may be off from everyone else's.
    const now = this.clock.now() + node.clockSkewMs;
    const uptimeMs = this.clock.now() - node.bootedAt;
    const pid = this.#allocatePid(node.name, node.nodeid);
    const [user, tokenid] = request.authid.split('!') as [string, string | undefined];
    let settle!: () => void;
    const record: TaskRecord = {
      upid: '',
      node: node.name,
      pid,
      pstart: Math.floor(uptimeMs / 10),
      starttime: Math.floor(now / 1000),
      type: request.type,
      id: request.id,
      user,
      ...(tokenid ? { tokenid } : {}),
      status: 'running',
      lines: [],
      warnings: 0,
      done: new Promise<void>((resolve) => (settle = resolve)),
    };
    record.upid = formatUpid({ ...record, user: request.authid });
    this.#byUpid.set(record.upid, record);
    const list = this.#byNode.get(node.name) ?? [];
    list.push(record);
    this.#byNode.set(node.name, list);
    this.counters.recordTask(request.type, request.id);

    const abort = new AbortController();
    this.#aborts.set(record.upid, abort);
    const ctx: TaskContext = {
      task: record,
      signal: abort.signal,
      log: (line) => record.lines.push(...line.split('\n')),
      warn: (line) => {
        record.warnings++;
        record.lines.push(`WARN: ${line}`);
      },
      logTimed: (line, level = 'info') => {
        const stamp = timestamp(this.clock.now() + node.clockSkewMs);
        for (const l of line.split('\n')) record.lines.push(`${stamp} ${level === 'err' ? 'ERROR: ' : ''}${l}`);
      },
      sleep: (ms) =>
        new Promise<void>((resolve, reject) => {
          if (abort.signal.aborted) return reject(new TaskInterrupted());
          const cancel = this.clock.schedule(ms, () => {
            abort.signal.removeEventListener('abort', onAbort);
            resolve();
          });
          const onAbort = () => {
            cancel();
            reject(new TaskInterrupted());
          };
          abort.signal.addEventListener('abort', onAbort, { once: true });
        }),
    };

    const injected = this.faults.forTask(request.type, request.id);
    const run: TaskRunner = !injected
      ? request.run
      : injected.when === 'before'
        ? async (c) => {
            await c.sleep(500);
            throw new Error(injected.message);
          }
        : async (c) => {
            await request.run(c);
            throw new Error(injected.message);
          };

    // Workers start asynchronously, after the API call has returned the UPID.
    void Promise.resolve()
      .then(() => run(ctx))
      .then(
        () => this.#finish(record, undefined),
        (err: unknown) => {
          request.onError?.();
          this.#finish(record, err instanceof Error ? err.message : String(err));
        },
      )
      .finally(() => {
        this.#aborts.delete(record.upid);
        settle();
      });
    return record;
  }

  get(upid: string): TaskRecord | undefined {
    return this.#byUpid.get(upid);
  }

  /** Tasks that ran on a node, newest first. */
  onNode(node: string): TaskRecord[] {
    return [...(this.#byNode.get(node) ?? [])].reverse();
  }

  all(): TaskRecord[] {
    return [...this.#byUpid.values()];
  }

  /** Stops a running task (DELETE /nodes/{node}/tasks/{upid}); it ends `interrupted by signal`. */
  stop(upid: string): void {
    this.#aborts.get(upid)?.abort();
  }

  #finish(record: TaskRecord, error: string | undefined): void {
    record.status = 'stopped';
    record.endtime = Math.floor((this.clock.now() + this.state.node(record.node).clockSkewMs) / 1000);
    if (error !== undefined) {
      const message = error.replace(/\s*\n\s*/g, ' ').trim();
      record.lines.push(`TASK ERROR: ${message}`);
      record.exitstatus = message;
    } else if (record.warnings > 0) {
      record.lines.push(`TASK WARNINGS: ${record.warnings}`);
      record.exitstatus = `WARNINGS: ${record.warnings}`;
    } else {
      record.lines.push('TASK OK');
      record.exitstatus = 'OK';
    }
  }

  #allocatePid(node: string, nodeid: number): number {
    const pid = this.#nextPid.get(node) ?? 200_000 + nodeid * 13_579;
    this.#nextPid.set(node, pid + 1 + (pid % 3));
    return pid;
  }
}
