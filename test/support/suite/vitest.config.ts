/**
 * The project's test configuration, with the suite's namespace-wide secrets scan scheduled
 * last (scripts/suite.ts runs the suite with this file): it then starts after every other
 * suite file has started, and waits for them to finish before it scans.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig, mergeConfig } from 'vitest/config';
import type { TestSpecification } from 'vitest/node';
import base from '../../../vitest.config.js';
import { LongFilesFirst } from '../long-files-first.js';

const LAST = /suite-secrets\.test\.ts$/;

class SecretsScanLast extends LongFilesFirst {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    return [...sorted.filter((f) => !LAST.test(f.moduleId)), ...sorted.filter((f) => LAST.test(f.moduleId))];
  }
}

export default mergeConfig(
  base,
  defineConfig({
    root: fileURLToPath(new URL('../../../', import.meta.url)),
    test: { sequence: { sequencer: SecretsScanLast } },
  }),
);
