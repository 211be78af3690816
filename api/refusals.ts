/**
 * Requests refused for want of a valid token cost an attacker nothing, and each used to
 * append a full audit record (200 such requests wrote 488 KB in about a second). Per window
 * of time the first few are recorded as they are; the rest are only counted, and one summary
 * record says how many there were and on which paths when the window closes.
 */
import type { AuditEntry } from '../lib/audit/log.js';

export interface RefusalLimits {
  /** Length of a window. */
  windowMs: number;
  /** Refusals recorded in full per window; later ones go into the summary. */
  recordedPerWindow: number;
}

export const DEFAULT_REFUSAL_LIMITS: RefusalLimits = { windowMs: 60_000, recordedPerWindow: 10 };
const MAX_PATHS = 20;

export interface RefusalAggregator {
  /** Records the refusal in full (returns the append) or counts it (returns undefined). */
  refuse(entry: AuditEntry & { detail: { path: string } }): Promise<unknown> | undefined;
  /** Writes the summary of the counted refusals now (when the window closes, or on shutdown). */
  flush(): Promise<unknown>;
}

export function createRefusalAggregator(
  append: (entry: AuditEntry) => Promise<unknown>,
  now: () => Date,
  limits: RefusalLimits = DEFAULT_REFUSAL_LIMITS,
): RefusalAggregator {
  let window = { start: 0, recorded: 0, counted: 0, paths: new Map<string, number>() };
  let timer: NodeJS.Timeout | undefined;

  const flush = () => {
    clearTimeout(timer);
    timer = undefined;
    const { start, counted, paths } = window;
    window = { start: now().getTime(), recorded: 0, counted: 0, paths: new Map() };
    if (counted === 0) return Promise.resolve();
    const top = [...paths].sort((a, b) => b[1] - a[1]).slice(0, MAX_PATHS);
    return append({
      actor: 'anonymous',
      action: 'api.access',
      result: 'unauthenticated-summary',
      detail: {
        refused: counted,
        since: new Date(start).toISOString(),
        until: now().toISOString(),
        paths: Object.fromEntries(top),
        note: `after ${limits.recordedPerWindow} recorded in full, further refusals in the window are only counted`,
      },
    });
  };

  return {
    refuse(entry) {
      if (now().getTime() - window.start >= limits.windowMs) void flush().catch(() => undefined);
      if (window.recorded < limits.recordedPerWindow) {
        window.recorded += 1;
        return append(entry);
      }
      window.counted += 1;
      const path = entry.detail.path.slice(0, 200);
      if (window.paths.has(path) || window.paths.size < MAX_PATHS)
        window.paths.set(path, (window.paths.get(path) ?? 0) + 1);
      timer ??= setTimeout(() => void flush().catch(() => undefined), limits.windowMs).unref();
      return undefined;
    },
    flush,
  };
}
