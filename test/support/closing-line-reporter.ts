/**
 * Ends every run with one plain line, `N passed, N failed, N skipped`, that CI reads
 * (vitest's own summary is boxed in colour and spread over several lines).
 * A test file that fails before its tests run (import error, failing hook) counts as a
 * failure, so a broken file can never hide behind "0 failed".
 */
import type { Reporter, SerializedError, TestModule } from 'vitest/node';

export function closingLine(
  testModules: ReadonlyArray<TestModule>,
  unhandledErrors: ReadonlyArray<SerializedError>,
): string {
  let passed = 0;
  let failed = unhandledErrors.length;
  let skipped = 0;
  for (const module of testModules) {
    let failedTests = 0;
    for (const test of module.children.allTests()) {
      const state = test.result().state;
      if (state === 'passed') passed++;
      else if (state === 'failed') failedTests++;
      else if (state === 'skipped') skipped++;
    }
    failed += failedTests;
    if (failedTests === 0 && module.errors().length > 0) failed++;
  }
  return `${passed} passed, ${failed} failed, ${skipped} skipped`;
}

export class ClosingLineReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError>): void {
    process.stdout.write(`\n${closingLine(testModules, unhandledErrors)}\n`);
  }
}
