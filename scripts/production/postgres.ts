/**
 * A PostgreSQL cluster of the project's own, in a data folder it chooses, on a loopback port:
 * the database a production Temporal server keeps its history and visibility in. Uses the
 * PostgreSQL binaries on PATH (Debian's `postgresql` package); as root, the server runs as
 * the `postgres` system user, since PostgreSQL refuses to run as root.
 */
import { execFile as execFileCb, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const execFile = promisify(execFileCb);

export interface Postgres {
  host: string;
  port: number;
  /** The role Temporal connects as, and its password (local to this check). */
  user: string;
  password: string;
  /** Major version of the running server, e.g. 15. */
  major: number;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export interface PostgresOptions {
  dataDir: string;
  port: number;
  user?: string;
  log?: (line: string) => void;
}

/** The PostgreSQL binaries on this machine: PATH first, then Debian's versioned folders. */
function pgBin(name: string): string {
  const onPath = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
  if (onPath) return onPath;
  for (const major of ['17', '16', '15']) {
    const candidate = `/usr/lib/postgresql/${major}/bin/${name}`;
    if (existsSync(candidate)) return candidate;
  }
  throw new Error(`PostgreSQL's ${name} is not installed (Debian: apt-get install postgresql)`);
}

/** Runs a PostgreSQL binary, as the postgres user when this process is root. */
async function pg(name: string, args: string[], owner: { uid: number; gid: number } | undefined): Promise<string> {
  const bin = pgBin(name);
  const options = owner ? { uid: owner.uid, gid: owner.gid, cwd: '/tmp' } : {};
  const { stdout } = await execFile(bin, args, { ...options, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

async function systemUser(name: string): Promise<{ uid: number; gid: number }> {
  const { stdout } = await execFile('id', ['-u', name]);
  const { stdout: gid } = await execFile('id', ['-g', name]);
  return { uid: Number(stdout.trim()), gid: Number(gid.trim()) };
}

export async function startPostgres(options: PostgresOptions): Promise<Postgres> {
  const log = options.log ?? (() => {});
  const owner = process.getuid?.() === 0 ? await systemUser('postgres') : undefined;
  const user = options.user ?? 'temporal';
  const password = randomBytes(18).toString('base64url');
  const host = '127.0.0.1';
  const data = join(options.dataDir, 'data');
  const logFile = join(options.dataDir, 'postgres.log');

  await mkdir(options.dataDir, { recursive: true, mode: 0o700 });
  if (owner) await chown(options.dataDir, owner.uid, owner.gid);
  if (!existsSync(join(data, 'PG_VERSION'))) {
    log(`initdb ${data}`);
    await pg('initdb', ['-D', data, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-instructions'], owner);
  }
  const ctl = (...args: string[]) => pg('pg_ctl', ['-D', data, '-l', logFile, '-w', '-t', '60', ...args], owner);
  const serverOptions = `-c listen_addresses=${host} -c port=${options.port} -c unix_socket_directories=${options.dataDir} -c max_connections=200`;
  await ctl('-o', serverOptions, 'start');

  const psql = (sql: string) =>
    pg(
      'psql',
      [
        '-h',
        host,
        '-p',
        String(options.port),
        '-U',
        'postgres',
        '-d',
        'postgres',
        '-v',
        'ON_ERROR_STOP=1',
        '-qAtc',
        sql,
      ],
      owner,
    );
  // A fresh password each run: the role may exist from an earlier run of the same folder.
  const exists = (await psql(`SELECT 1 FROM pg_roles WHERE rolname = '${user}'`)).trim() === '1';
  await psql(`${exists ? 'ALTER' : 'CREATE'} ROLE ${user} LOGIN CREATEDB PASSWORD '${password}'`);
  const major = Number((await psql('SHOW server_version_num')).trim().slice(0, -4));
  log(`PostgreSQL ${major} on ${host}:${options.port} (data ${data})`);

  return {
    host,
    port: options.port,
    user,
    password,
    major,
    async restart() {
      await ctl('-m', 'fast', '-o', serverOptions, 'restart');
    },
    async stop() {
      await ctl('-m', 'fast', 'stop').catch(() => undefined);
    },
  };
}
