/**
 * Starts the test files that take a minute or more first, so a parallel run does not end with
 * one of them running alone while every other worker idles. After them, vitest's own order:
 * the longest by the last run's durations where vitest remembers them, else the largest file.
 */
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * The files that run a minute or more on a 2-core machine under load, longest first; a file that
 * grows past a minute belongs here.
 */
const LONG_FILES = [
  'test/integration/suite-schemathesis.test.ts',
  'test/integration/backup-crash.test.ts',
  'test/integration/maintenance-crash.test.ts',
  'test/integration/suite-recovery.test.ts',
  'test/integration/docs-run.test.ts',
  'test/integration/clusters-lifecycle.test.ts',
  'test/conformance/ansible.test.ts',
  'test/integration/evacuation-reliability.test.ts',
  'test/integration/maintenance-rollout.test.ts',
];

const rank = (spec: TestSpecification) => {
  const i = LONG_FILES.findIndex((file) => spec.moduleId.endsWith(file));
  return i < 0 ? LONG_FILES.length : i;
};

export class LongFilesFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    // Array.prototype.sort is stable: the rest keep vitest's order.
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b));
  }
}
