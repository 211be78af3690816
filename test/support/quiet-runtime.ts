/**
 * The Temporal worker runtime for tests and their worker processes: many tests fail workflows
 * and activities on purpose, and the runtime reports each such failure as a warning (with the
 * whole failure chain), which buried the one line that matters when a test really fails. Only
 * errors are printed; a failing test shows its own cause in its assertion.
 * `PM_TEST_LOG_LEVEL=WARN` (or INFO, DEBUG) shows more, to debug a test.
 *
 * No vitest import: worker child processes use it too.
 */
import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';

const LEVELS = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'] as const satisfies readonly LogLevel[];

function testLogLevel(): LogLevel {
  const wanted = process.env.PM_TEST_LOG_LEVEL?.toUpperCase();
  return LEVELS.find((level) => level === wanted) ?? 'ERROR';
}

let installed = false;
/** Idempotent; before the first worker or native connection of the process. */
export function installQuietRuntime(): void {
  if (installed) return;
  installed = true;
  const level = testLogLevel();
  Runtime.install({
    logger: new DefaultLogger(level),
    // The native side logs on its own unless forwarded: the same level for both.
    telemetryOptions: { logging: { filter: { core: level, other: level }, forward: {} } },
  });
}
