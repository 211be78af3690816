/**
 * Live bandwidth sharing between running migrations: every time a transfer starts or ends,
 * progress so far is booked at the old rates and all rates are recomputed with the cost
 * model's max-min fair share (sim/cost.ts), then completion timers are rescheduled.
 */
import type { SimClock } from './clock.js';
import { shareBandwidth, type TransferFlow } from './cost.js';

export interface TransferProgress {
  done: number;
  total: number;
  /** Current rate, bytes per simulated second. */
  rate: number;
}

export interface Transfer {
  readonly id: string;
  progress(): TransferProgress;
  /** Resolves when every byte has moved; rejects when aborted. */
  readonly finished: Promise<void>;
}

interface Active {
  flow: TransferFlow;
  total: number;
  done: number;
  rate: number;
  cancelTimer: () => void;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class TransferEngine {
  readonly #active = new Map<string, Active>();
  #lastBooked: number;
  #seq = 0;

  constructor(
    private readonly clock: SimClock,
    private readonly linkBytesPerSecond: (node: string) => number,
  ) {
    this.#lastBooked = clock.now();
  }

  start(request: {
    source: string;
    target: string;
    bytes: number;
    limitBytesPerSecond?: number;
    signal?: AbortSignal;
  }): Transfer {
    const id = `t${++this.#seq}`;
    let resolve!: () => void;
    let reject!: (err: Error) => void;
    const finished = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    finished.catch(() => undefined);
    const transfer: Transfer = {
      id,
      finished,
      progress: () => {
        this.#book();
        const a = this.#active.get(id);
        return a
          ? { done: a.done, total: a.total, rate: a.rate }
          : { done: request.bytes, total: request.bytes, rate: 0 };
      },
    };
    if (request.bytes <= 0) {
      resolve();
      return transfer;
    }
    this.#book();
    this.#active.set(id, {
      flow: {
        id,
        source: request.source,
        target: request.target,
        ...(request.limitBytesPerSecond ? { limitBytesPerSecond: request.limitBytesPerSecond } : {}),
      },
      total: request.bytes,
      done: 0,
      rate: 0,
      cancelTimer: () => undefined,
      resolve,
      reject,
    });
    request.signal?.addEventListener('abort', () => this.abort(id, new Error('interrupted by signal')), { once: true });
    this.#reschedule();
    return transfer;
  }

  /** Aborts one transfer. */
  abort(id: string, err: Error): void {
    const a = this.#active.get(id);
    if (!a) return;
    this.#book();
    a.cancelTimer();
    this.#active.delete(id);
    a.reject(err);
    this.#reschedule();
  }

  /** Aborts every transfer touching a node (it went offline). */
  abortNode(node: string, err: Error): void {
    for (const [id, a] of [...this.#active]) {
      if (a.flow.source === node || a.flow.target === node) this.abort(id, err);
    }
  }

  get activeCount(): number {
    return this.#active.size;
  }

  #book(): void {
    const now = this.clock.now();
    const elapsed = (now - this.#lastBooked) / 1000;
    if (elapsed > 0) for (const a of this.#active.values()) a.done = Math.min(a.total, a.done + a.rate * elapsed);
    this.#lastBooked = now;
  }

  #reschedule(): void {
    const rates = shareBandwidth(
      [...this.#active.values()].map((a) => a.flow),
      this.linkBytesPerSecond,
    );
    for (const [id, a] of this.#active) {
      a.rate = rates.get(id) ?? 0;
      a.cancelTimer();
      a.cancelTimer = () => undefined;
      if (a.rate > 0) {
        const seconds = (a.total - a.done) / a.rate;
        a.cancelTimer = this.clock.schedule(seconds * 1000, () => this.#complete(id));
      }
    }
  }

  #complete(id: string): void {
    const a = this.#active.get(id);
    if (!a) return;
    this.#book();
    this.#active.delete(id);
    a.done = a.total;
    a.resolve();
    this.#reschedule();
  }
}
