/**
 * Fault injection: API errors (random rate or the next N matching calls), added latency,
 * connection resets (before or after the call took effect), nodes going offline, and task
 * types that fail. Set from the scenario, in-process, or through POST /_sim/faults.
 */
import type { FaultSettings } from './scenario.js';

export interface TaskFailure {
  type: string;
  vmid?: number;
  message?: string;
  /** `after`: the task does its work, then reports failure anyway. */
  when: 'before' | 'after';
  /** Remaining occurrences; unlimited when absent. */
  times?: number;
}

export type CallFaultKind =
  /** Answer with an error; nothing is done. */
  | 'error'
  /** Reset the connection before doing anything. */
  | 'reset'
  /** Do the call, then reset the connection instead of answering (the client cannot know it worked). */
  | 'reset-after';

export interface CallFault {
  kind: CallFaultKind;
  /** Substring of `METHOD /path` (path below /api2/json) the call must contain; any call when absent. */
  match?: string;
  status?: number;
  message?: string;
  /** Remaining occurrences. */
  times: number;
}

export interface ApiFaultSettings {
  /** Fraction of calls answered with an error. */
  errorRate: number;
  errorStatus: number;
  /** Wall milliseconds added to every call. */
  latencyMs: number;
  /** Fraction of connections reset before an answer. */
  resetRate: number;
}

export interface FaultsSnapshot {
  api: ApiFaultSettings;
  calls: CallFault[];
  tasks: TaskFailure[];
  offlineNodes: string[];
}

/** Realistic default messages for injected task failures. */
const TASK_FAILURE_MESSAGES: Record<string, string> = {
  qmigrate: 'migration aborted',
  qmstart: 'start failed: QEMU exited with code 1',
  qmclone: 'clone failed: command failed with exit code 1',
  qmcreate: 'unable to create VM: command failed with exit code 1',
  download: 'download failed: 500 Internal Server Error',
};

function defaultTaskFailureMessage(type: string): string {
  return TASK_FAILURE_MESSAGES[type] ?? `command '${type}' failed: exit code 1`;
}

/** Deterministic PRNG (mulberry32), so a seed reproduces the same faults. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface NodePower {
  setNodeOnline(node: string, online: boolean): Promise<void>;
  offlineNodes(): string[];
}

export class Faults {
  #api: ApiFaultSettings = { errorRate: 0, errorStatus: 500, latencyMs: 0, resetRate: 0 };
  #calls: CallFault[] = [];
  #tasks: TaskFailure[] = [];
  readonly #random: () => number;
  readonly #power: NodePower;

  constructor(power: NodePower, seed = 1) {
    this.#power = power;
    this.#random = seededRandom(seed);
  }

  /** Changes API fault settings; unspecified ones keep their value. */
  setApi(settings: Partial<ApiFaultSettings>): void {
    this.#api = { ...this.#api, ...settings };
  }

  get api(): Readonly<ApiFaultSettings> {
    return this.#api;
  }

  /** The next `times` calls matching `match` fail as `kind`. */
  failCalls(fault: Omit<CallFault, 'times'> & { times?: number }): void {
    this.#calls.push({ ...fault, times: fault.times ?? 1 });
  }

  /** Tasks of `type` (optionally for one guest) fail, `times` times or until cleared. */
  failTask(failure: Omit<TaskFailure, 'when'> & { when?: TaskFailure['when'] }): void {
    this.#tasks.push({ ...failure, when: failure.when ?? 'before' });
  }

  nodeOffline(node: string): Promise<void> {
    return this.#power.setNodeOnline(node, false);
  }

  nodeOnline(node: string): Promise<void> {
    return this.#power.setNodeOnline(node, true);
  }

  /** Removes every fault and brings offline nodes back. */
  async clear(): Promise<void> {
    this.#api = { errorRate: 0, errorStatus: 500, latencyMs: 0, resetRate: 0 };
    this.#calls = [];
    this.#tasks = [];
    for (const node of this.#power.offlineNodes()) await this.#power.setNodeOnline(node, true);
  }

  /** Applies scenario / admin-endpoint settings (snake_case, as in YAML). */
  async apply(settings: FaultSettings): Promise<void> {
    this.setApi({
      errorRate: settings.api_error_rate,
      errorStatus: settings.api_error_status,
      latencyMs: settings.latency_ms,
      resetRate: settings.reset_rate,
    });
    for (const t of settings.task_failures) this.failTask(t);
    for (const node of settings.offline_nodes) await this.nodeOffline(node);
  }

  snapshot(): FaultsSnapshot {
    return {
      api: { ...this.#api },
      calls: this.#calls.map((c) => ({ ...c })),
      tasks: this.#tasks.map((t) => ({ ...t })),
      offlineNodes: this.#power.offlineNodes(),
    };
  }

  /** The fault (if any) an incoming call suffers; consumes counted faults. */
  forCall(method: string, path: string): { kind: CallFaultKind; status: number; message: string } | undefined {
    const call = `${method} ${path}`;
    const i = this.#calls.findIndex((c) => c.match === undefined || call.includes(c.match));
    if (i >= 0) {
      const fault = this.#calls[i]!;
      if (--fault.times <= 0) this.#calls.splice(i, 1);
      return { kind: fault.kind, status: fault.status ?? 500, message: fault.message ?? 'Internal Server Error' };
    }
    if (this.#api.resetRate > 0 && this.#random() < this.#api.resetRate) {
      return { kind: 'reset', status: 0, message: '' };
    }
    if (this.#api.errorRate > 0 && this.#random() < this.#api.errorRate) {
      const status = this.#api.errorStatus;
      return { kind: 'error', status, message: status === 503 ? 'Service Unavailable' : 'Internal Server Error' };
    }
    return undefined;
  }

  /** The injected failure (if any) for a task about to start; consumes counted failures. */
  forTask(type: string, id: string): { message: string; when: TaskFailure['when'] } | undefined {
    const i = this.#tasks.findIndex((t) => t.type === type && (t.vmid === undefined || String(t.vmid) === id));
    if (i < 0) return undefined;
    const failure = this.#tasks[i]!;
    if (failure.times !== undefined && --failure.times <= 0) this.#tasks.splice(i, 1);
    return { message: failure.message ?? defaultTaskFailureMessage(type), when: failure.when };
  }
}
