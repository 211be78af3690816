/**
 * Simulated time. Every duration inside the simulator (task runtimes, migration transfers,
 * lock waits, node reboots) is measured on this clock, so a speed factor makes a 60 s
 * migration take one wall second at speed 60 while logs and durations stay realistic.
 *
 * Two modes:
 * - scaled (default): simulated time runs `speed` times faster than wall time;
 * - manual: time stands still until `advance(ms)` is called (deterministic unit tests).
 */

interface Timer {
  due: number;
  seq: number;
  fire: () => void;
}

export interface SimClockOptions {
  /** Simulated seconds per wall second; ignored in manual mode. Default 1. */
  speed?: number;
  /** Time only moves on `advance()`. */
  manual?: boolean;
  /** Simulated epoch milliseconds at start; default: wall clock now. */
  start?: number;
}

export class SimClock {
  readonly manual: boolean;
  #speed: number;
  #anchorSim: number;
  #anchorWall: number;
  #timers: Timer[] = [];
  #seq = 0;
  #wallTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: SimClockOptions = {}) {
    this.manual = options.manual ?? false;
    this.#speed = options.speed ?? 1;
    if (!(this.#speed > 0)) throw new RangeError('clock speed must be a positive number');
    this.#anchorSim = options.start ?? Date.now();
    this.#anchorWall = performance.now();
  }

  get speed(): number {
    return this.manual ? 0 : this.#speed;
  }

  /** Simulated epoch milliseconds. */
  now(): number {
    if (this.manual) return this.#anchorSim;
    return this.#anchorSim + (performance.now() - this.#anchorWall) * this.#speed;
  }

  /** Simulated epoch seconds, as PVE puts them in UPIDs and task lists. */
  epochSeconds(): number {
    return Math.floor(this.now() / 1000);
  }

  /** Wall milliseconds that `simMs` of simulated time take (0 in manual mode). */
  toWallMs(simMs: number): number {
    return this.manual ? 0 : simMs / this.#speed;
  }

  setSpeed(speed: number): void {
    if (this.manual) throw new Error('a manual clock has no speed');
    if (!(speed > 0)) throw new RangeError('clock speed must be a positive number');
    this.#anchorSim = this.now();
    this.#anchorWall = performance.now();
    this.#speed = speed;
    this.#arm();
  }

  /** Runs `fire` after `simMs` of simulated time; returns a cancel function. */
  schedule(simMs: number, fire: () => void): () => void {
    const timer: Timer = { due: this.now() + Math.max(0, simMs), seq: this.#seq++, fire };
    this.#insert(timer);
    this.#arm();
    return () => {
      const i = this.#timers.indexOf(timer);
      if (i >= 0) this.#timers.splice(i, 1);
    };
  }

  sleep(simMs: number): Promise<void> {
    return new Promise((resolve) => this.schedule(simMs, resolve));
  }

  /** Manual mode: moves time forward, firing due timers in order and letting their continuations run. */
  async advance(simMs: number): Promise<void> {
    if (!this.manual) throw new Error('advance() needs a manual clock');
    const target = this.#anchorSim + simMs;
    await settle();
    for (;;) {
      const next = this.#timers[0];
      if (!next || next.due > target) break;
      this.#timers.shift();
      this.#anchorSim = Math.max(this.#anchorSim, next.due);
      next.fire();
      await settle();
    }
    this.#anchorSim = target;
  }

  /** Drops every pending timer; used when the simulator stops. */
  stop(): void {
    this.#stopped = true;
    this.#timers = [];
    if (this.#wallTimer) clearTimeout(this.#wallTimer);
    this.#wallTimer = undefined;
  }

  #insert(timer: Timer): void {
    let lo = 0;
    let hi = this.#timers.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const t = this.#timers[mid]!;
      if (t.due < timer.due || (t.due === timer.due && t.seq < timer.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.#timers.splice(lo, 0, timer);
  }

  #arm(): void {
    if (this.manual || this.#stopped) return;
    if (this.#wallTimer) clearTimeout(this.#wallTimer);
    this.#wallTimer = undefined;
    const next = this.#timers[0];
    if (!next) return;
    const delay = Math.max(0, (next.due - this.now()) / this.#speed);
    // Timers are clamped to >= 1 ms by Node anyway; sub-ms precision is not needed.
    this.#wallTimer = setTimeout(() => this.#fireDue(), Math.min(delay, 2 ** 31 - 1));
  }

  #fireDue(): void {
    this.#wallTimer = undefined;
    const now = this.now();
    while (this.#timers[0] && this.#timers[0].due <= now) this.#timers.shift()!.fire();
    this.#arm();
  }
}

/** Lets every queued promise continuation run (one macrotask turn). */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
