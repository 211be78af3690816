/**
 * No credential in any workflow history of the test namespace. The other suite files share
 * what they configured and say when they are done (shareSecrets/shareDone); this one waits for
 * every file that has begun to finish, then fetches every history visibility lists and searches
 * it for each of those secrets, for the fixtures' known ones, and for the shapes of a PVE token
 * header and a private key.
 *
 * `npm run suite` schedules this file last (test/support/suite/vitest.config.ts), so it covers
 * every suite file; in a plain test run it covers every file that has begun before it — the
 * others scan their own histories when they end.
 */
import { expect, inject, it } from 'vitest';
import { record } from '../support/suite/report.js';
import { fixtureSecrets, scanHistories, takeSharedSecrets } from '../../testkit/stack/secrets.js';
import { testConnection } from '../support/temporal.js';

it('every workflow history in the namespace is free of every known secret', { timeout: 8 * 60_000 }, async () => {
  const shared = await takeSharedSecrets(inject('temporalAddress'), 5 * 60_000);
  const known = [...shared.secrets, ...(await fixtureSecrets())];
  const scan = await scanHistories(await testConnection(), '', known);
  record({
    section: 'secrets',
    name: 'whole test namespace: every workflow history',
    value: scan.leaks.length,
    unit: 'hits',
    note:
      `${scan.workflows} histories (${scan.events} events, ${(scan.bytes / 1e6).toFixed(1)} MB) searched for ${known.length} secrets and key shapes, ` +
      `after ${shared.files.length} suite files${shared.unfinished.length ? ` (still running: ${shared.unfinished.join(', ')})` : ''}`,
  });
  expect(scan.leaks).toEqual([]);
});
