/**
 * Once per test run (integration project): one real Temporal dev server, in memory, on a
 * free loopback port, with the project's search attributes; the workflow code bundled once,
 * so each test's worker starts in milliseconds instead of re-running webpack; and the talosctl
 * stand-in bundled once, so each of its many invocations is a plain `node` start instead of
 * tsx compiling its imports again.
 */
import { ensureSigningKey } from '../testkit/approvals.js';
import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
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
    /** sim/bin/talosctl, bundled: an executable that answers as the stand-in does. */
    talosctlStandin: string;
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

const standinPath = fileURLToPath(new URL('../sim/talosctl-standin.ts', import.meta.url));

/** The talosctl stand-in in one file of plain JavaScript, and an executable that runs it. */
async function bundleTalosctlStandin(dir: string): Promise<string> {
  const bundle = join(dir, 'talosctl-standin.mjs');
  await build({
    entryPoints: [standinPath],
    outfile: bundle,
    bundle: true,
    platform: 'node',
    format: 'esm',
    // Some dependencies are CommonJS and require Node built-ins.
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
    logLevel: 'warning',
  });
  const binary = join(dir, 'talosctl');
  await writeFile(binary, `#!/bin/sh\nexec '${process.execPath}' '${bundle}' "$@"\n`);
  await chmod(binary, 0o755);
  return binary;
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
  const [server, workflowBundlePath, talosctlStandin] = await Promise.all([
    startDevServer({ cli: cli.path }),
    bundleWorkflows(dir),
    bundleTalosctlStandin(dir),
  ]);
  console.log(`[globalSetup] Temporal dev server ${server.address} (CLI ${cli.version} from ${cli.source})`);

  project.provide('temporalAddress', server.address);
  project.provide('temporalNamespace', server.namespace);
  project.provide('workflowBundlePath', workflowBundlePath);
  project.provide('talosctlStandin', talosctlStandin);

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
