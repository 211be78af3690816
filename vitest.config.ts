import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';
import { ClosingLineReporter } from './test/support/closing-line-reporter.js';
import { LongFilesFirst } from './test/support/long-files-first.js';

export default defineConfig({
  test: {
    // Temporal's native bridge (and ssh2's crypto) misbehave in worker threads.
    pool: 'forks',
    // Integration files spend most of their time waiting (simulated task durations, Temporal
    // timers, heartbeat timeouts), not computing: one file more than there are cores keeps a
    // 2-core machine busy without crowding it, where vitest's default (cores - 1) ran the whole
    // suite one file at a time there. At most 8, for the one Temporal dev server they share.
    maxWorkers: Math.min(availableParallelism() + 1, 8),
    // The longest files first, so the run does not end with one of them alone.
    sequence: { sequencer: LongFilesFirst },
    reporters: ['default', new ClosingLineReporter()],
    teardownTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          globalSetup: ['test/talosctl-setup.ts'],
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
          globalSetup: ['test/globalSetup.ts', 'test/python-tools-setup.ts', 'test/talosctl-setup.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
        },
      },
      {
        extends: true,
        test: {
          // PVE clients nobody here wrote (proxmoxer, Ansible community.proxmox) against the
          // simulator; no Temporal. The Python tools come from scripts/python-venv.sh.
          name: 'conformance',
          include: ['test/conformance/**/*.test.ts'],
          globalSetup: ['test/python-tools-setup.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
});
