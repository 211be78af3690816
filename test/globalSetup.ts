/**
 * Once per test run (integration project): one real Temporal dev server, in memory, on a
 * free loopback port, with the project's search attributes; and the workflow code bundled
 * once, so each test's worker starts in milliseconds instead of re-running webpack.
 */
import { ensureSigningKey } from '../testkit/approvals.js';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { ensureTemporalCli } from '../scripts/temporal-cli.js';
import { startDevServer } from '../scripts/temporal-server.js';
import { recordHistories } from './support/histories.js';

declare module 'vitest' {
  export interface ProvidedContext {
    temporalAddress: string;
    temporalNamespace: string;
    /** The pre-built workflow bundle; null until workflows/index.ts exists. */
    workflowBundlePath: string | null;
  }
}

const workflowsPath = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));

async function bundleWorkflows(dir: string): Promise<string | null> {
  if (!existsSync(workflowsPath)) {
    console.warn(
      `[globalSetup] ${workflowsPath} does not exist yet: no workflow bundle; tests that need workflows will fail`,
    );
    return null;
  }
  const { bundleWorkflowCode } = await import('@temporalio/worker');
  const started = Date.now();
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: quietLogger });
  const codePath = join(dir, 'workflow-bundle.js');
  await writeFile(codePath, code);
  console.log(`[globalSetup] workflows bundled in ${Date.now() - started} ms`);
  return codePath;
}

/** webpack's progress chatter is noise in test output; warnings and errors still show. */
const quietLogger = {
  log: () => {},
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: (message: string) => console.warn(`[bundle] ${message}`),
  error: (message: string) => console.error(`[bundle] ${message}`),
};

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // The approval signing key the API and the workers of this run share (inherited by test workers and child processes).
  ensureSigningKey();
  const dir = await mkdtemp(join(tmpdir(), 'pm-test-'));
  const cli = await ensureTemporalCli();
  const [server, workflowBundlePath] = await Promise.all([startDevServer({ cli: cli.path }), bundleWorkflows(dir)]);
  console.log(`[globalSetup] Temporal dev server ${server.address} (CLI ${cli.version} from ${cli.source})`);

  project.provide('temporalAddress', server.address);
  project.provide('temporalNamespace', server.namespace);
  project.provide('workflowBundlePath', workflowBundlePath);

  return async () => {
    // `npm run histories:record`: the replay test's histories, taken before the server goes.
    if (process.env.PM_RECORD_HISTORIES === '1') {
      const types = await recordHistories(server.address, server.namespace);
      console.log(`[globalSetup] recorded the histories of ${types.length} workflow types: ${types.join(', ')}`);
    }
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
