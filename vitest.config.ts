import { defineConfig } from 'vitest/config';
import { ClosingLineReporter } from './test/support/closing-line-reporter.js';

export default defineConfig({
  test: {
    // Temporal's native bridge (and ssh2's crypto) misbehave in worker threads.
    pool: 'forks',
    reporters: ['default', new ClosingLineReporter()],
    teardownTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 15_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // One Temporal dev server and one workflow bundle for every integration test file;
          // vitest runs this only when integration tests are selected.
          globalSetup: ['test/globalSetup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
