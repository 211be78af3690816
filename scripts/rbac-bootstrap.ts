/**
 * Creates proxmox-manager's PVE service account over SSH: a `@pve` user, the least-privileged
 * role (lib/rbac.ts), ACLs on `/` for the user and its token, and an API token with privilege
 * separation. The token's secret goes straight from `pveum`'s answer into the environment's
 * configured secret store (`pass insert -m`, or a file created 0600); it is never printed,
 * logged or put in an error message.
 *
 *   npx tsx scripts/rbac-bootstrap.ts --environment home [--node pve01]
 *       [--user proxmox-manager@pve] [--token automation] [--rotate] [--dry-run]
 *
 * Safe to run again: existing users and ACLs are kept, the role's privileges are reset to
 * exactly the shipped list, and an existing token is kept unless --rotate replaces it.
 */
import { execFile } from 'node:child_process';
import { chmod, open } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { EnvironmentConfig, SecretRef } from '../lib/config/schema.js';
import { ConfigError, loadConfig } from '../lib/config/load.js';
import { createPveClientForEnvironment } from '../lib/pve/client.js';
import { ROLE_NAME, ROLE_PRIVILEGES } from '../lib/rbac.js';
import { runCommand, type CommandResult } from '../lib/ssh/client.js';
import { buildWorkerDeps } from '../worker/deps.js';

const USER_RE = /^[A-Za-z0-9._-]+@pve$/;
const TOKEN_RE = /^[A-Za-z][A-Za-z0-9._-]*$/;

export interface BootstrapOptions {
  /** `name@pve` */
  user: string;
  token: string;
  role: string;
  privileges: readonly string[];
  /** Replace an existing token (the old secret stops working). */
  rotate: boolean;
  /** Runs one command on the node as root; its output is never shown. */
  run: (command: string) => Promise<CommandResult>;
  /** Puts the token where the configuration reads it from. */
  store: (tokenId: string, secret: string) => Promise<void>;
  log: (line: string) => void;
}

export class BootstrapError extends Error {}

function listed(result: CommandResult, what: string): Record<string, unknown>[] {
  try {
    const data = JSON.parse(result.stdout) as unknown;
    if (Array.isArray(data)) return data as Record<string, unknown>[];
  } catch {
    // fall through
  }
  throw new BootstrapError(`could not read the ${what} list from pveum`);
}

/** The pveum steps, in order. Commands carry no secret; the token's answer is parsed here and handed to `store` only. */
export async function bootstrapRbac(o: BootstrapOptions): Promise<{ tokenId: string; created: boolean }> {
  if (!USER_RE.test(o.user)) throw new BootstrapError(`--user must be name@pve, got '${o.user}'`);
  if (!TOKEN_RE.test(o.token))
    throw new BootstrapError(`--token must be a token name such as automation, got '${o.token}'`);
  const tokenId = `${o.user}!${o.token}`;
  const privs = o.privileges.join(',');
  const run = async (command: string, what: string) => {
    const result = await o.run(command);
    if (result.exitCode !== 0) {
      // pveum's stderr names objects, never secrets; stdout (which may hold one) is not shown.
      throw new BootstrapError(
        `${what} failed (exit ${result.exitCode}): ${result.stderr.trim().split('\n').slice(-3).join(' ')}`,
      );
    }
    return result;
  };

  const users = listed(await run('pveum user list --output-format json', 'listing users'), 'user');
  if (users.some((u) => u['userid'] === o.user)) o.log(`user ${o.user} exists`);
  else {
    await run(`pveum user add ${o.user} --comment 'proxmox-manager automation'`, `creating ${o.user}`);
    o.log(`created user ${o.user}`);
  }

  const roles = listed(await run('pveum role list --output-format json', 'listing roles'), 'role');
  if (roles.some((r) => r['roleid'] === o.role)) {
    await run(`pveum role modify ${o.role} --privs ${privs}`, `setting the privileges of ${o.role}`);
    o.log(`role ${o.role} set to ${o.privileges.length} privileges`);
  } else {
    await run(`pveum role add ${o.role} --privs ${privs}`, `creating role ${o.role}`);
    o.log(`created role ${o.role} with ${o.privileges.length} privileges`);
  }
  await run(`pveum acl modify / --users ${o.user} --roles ${o.role}`, `granting ${o.role} to ${o.user}`);

  const tokens = listed(await run(`pveum user token list ${o.user} --output-format json`, 'listing tokens'), 'token');
  const exists = tokens.some((t) => t['tokenid'] === o.token);
  if (exists && !o.rotate) {
    await run(`pveum acl modify / --tokens '${tokenId}' --roles ${o.role}`, `granting ${o.role} to ${tokenId}`);
    o.log(`token ${tokenId} exists and was kept (its secret is where you stored it; use --rotate to replace it)`);
    return { tokenId, created: false };
  }
  if (exists) {
    await run(`pveum user token remove ${o.user} ${o.token}`, `removing the old token ${tokenId}`);
    o.log(`removed the old token ${tokenId}`);
  }
  const answer = await run(
    `pveum user token add ${o.user} ${o.token} --privsep 1 --output-format json`,
    `creating token ${tokenId}`,
  );
  let secret: unknown;
  try {
    secret = (JSON.parse(answer.stdout) as { value?: unknown }).value;
  } catch {
    secret = undefined;
  }
  if (typeof secret !== 'string' || secret.length === 0)
    throw new BootstrapError(`pveum did not return a secret for ${tokenId}`);
  await o.store(tokenId, secret);
  o.log(`created token ${tokenId} (privilege separation on); its secret was stored, not shown`);
  await run(`pveum acl modify / --tokens '${tokenId}' --roles ${o.role}`, `granting ${o.role} to ${tokenId}`);
  o.log(`granted ${o.role} on / to ${tokenId}`);
  return { tokenId, created: true };
}

/** `pass insert -m`: the secret goes in on stdin, never on a command line. */
function passInsert(entry: string, content: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = execFile('pass', ['insert', '--multiline', '--force', entry], { timeout: 30_000 }, (err) => {
      if (err) reject(new BootstrapError(`pass insert ${entry} failed (is pass initialised?)`));
      else resolve();
    });
    child.stdin?.end(content);
  });
}

/** A file only its owner can read, created so: never world-readable, not even for a moment. */
async function writePrivateFile(path: string, content: string): Promise<void> {
  const handle = await open(path, 'w', 0o600);
  try {
    await handle.chmod(0o600);
    await handle.writeFile(content);
  } finally {
    await handle.close();
  }
  await chmod(path, 0o600);
}

/** Where the environment reads its token from, as a writer; the format is the seeds' two lines. */
export function tokenStore(env: EnvironmentConfig): (tokenId: string, secret: string) => Promise<void> {
  const ref: SecretRef | undefined =
    env.credentials.token ?? (env.credentials.pass_path ? { pass: env.credentials.pass_path } : undefined);
  if (!ref || 'env' in ref) {
    throw new BootstrapError(
      'credentials.token reads an environment variable, which this script cannot write: configure credentials.token as { pass: <entry> } or { file: <path> }',
    );
  }
  return (tokenId, secret) => {
    const content = `${tokenId}\n${secret}\n`;
    return 'pass' in ref ? passInsert(ref.pass, content) : writePrivateFile(ref.file, content);
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      environment: { type: 'string', short: 'e' },
      node: { type: 'string' },
      user: { type: 'string', default: 'proxmox-manager@pve' },
      token: { type: 'string', default: 'automation' },
      rotate: { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
    },
  });
  const config = loadConfig();
  const environment =
    values.environment ??
    (Object.keys(config.environments).length === 1 ? Object.keys(config.environments)[0] : undefined);
  if (!environment || !config.environments[environment]) {
    throw new BootstrapError(`--environment must name one of: ${Object.keys(config.environments).join(', ')}`);
  }
  const env = config.environments[environment]!;
  const node = values.node ?? env.cluster.nodes[0]!.name;
  const log = (line: string) => console.log(`rbac-bootstrap: ${line}`);

  if (values['dry-run']) {
    log(`would create ${values.user} and role ${ROLE_NAME} on ${node}, with: ${ROLE_PRIVILEGES.join(' ')}`);
    log(`would create token ${values.user}!${values.token} (privsep 1) and store it in ${describeStore(env)}`);
    return;
  }
  const target = await buildWorkerDeps(config).sshTarget(environment, node);
  const store = tokenStore(env);
  await bootstrapRbac({
    user: values.user,
    token: values.token,
    role: ROLE_NAME,
    privileges: ROLE_PRIVILEGES,
    rotate: values.rotate,
    run: (command) => runCommand(target, command, { timeoutMs: 60_000, allowNonZeroExit: true, label: 'pveum' }),
    store,
    log,
  });
  const client = await createPveClientForEnvironment(env);
  try {
    const version = await client.cluster.version();
    log(`the stored token works: PVE ${version.version} answered`);
  } finally {
    await client.close();
  }
}

function describeStore(env: EnvironmentConfig): string {
  const ref = env.credentials.token ?? (env.credentials.pass_path ? { pass: env.credentials.pass_path } : undefined);
  if (!ref) return '(no credentials.token configured)';
  return 'pass' in ref
    ? `pass entry ${ref.pass}`
    : 'file' in ref
      ? `file ${ref.file} (0600)`
      : `environment variable ${ref.env} (not writable)`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err: unknown) => {
    const known = err instanceof BootstrapError || err instanceof ConfigError;
    console.error(
      `rbac-bootstrap: ${known ? (err as Error).message : `stopped: ${err instanceof Error ? err.message : String(err)}`}`,
    );
    process.exit(1);
  });
}
