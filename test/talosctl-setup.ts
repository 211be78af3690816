/**
 * Once per test run (unit and integration projects): the talosctl stand-in
 * (sim/talosctl-standin.ts) bundled into one file of plain JavaScript, so each of the many
 * talosctl calls a test makes is a plain `node` start instead of tsx compiling the stand-in's
 * imports again — seconds per call on a loaded 2-core machine. `sim/bin/talosctl`, the binary
 * the demo and the docs use, runs the same source through tsx.
 */
import { build } from 'esbuild';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';

declare module 'vitest' {
  export interface ProvidedContext {
    /** The bundled stand-in: an executable that answers as sim/bin/talosctl does. */
    talosctlStandin: string;
  }
}

const standinPath = fileURLToPath(new URL('../sim/talosctl-standin.ts', import.meta.url));

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const dir = await mkdtemp(join(tmpdir(), 'pm-talosctl-'));
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
  project.provide('talosctlStandin', binary);
  return () => rm(dir, { recursive: true, force: true });
}
