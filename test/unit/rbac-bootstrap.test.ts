import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EnvironmentConfig } from '../../lib/config/schema.js';
import type { CommandResult } from '../../lib/ssh/client.js';
import { ROLE_NAME, ROLE_PRIVILEGES } from '../../lib/rbac.js';
import { bootstrapRbac, BootstrapError, tokenStore } from '../../scripts/rbac-bootstrap.js';

const SECRET = '6f1c2a9e-0b7d-4f3a-9e21-5c8d7b6a4f30';

/** A node's pveum, as far as the bootstrap uses it. */
function fakePveum(initial: { users?: string[]; roles?: Record<string, string>; tokens?: string[] } = {}) {
  const users = new Set(initial.users ?? ['root@pam']);
  const roles = new Map(Object.entries(initial.roles ?? {}));
  const tokens = new Set(initial.tokens ?? []);
  const acls: string[] = [];
  const commands: string[] = [];
  const ok = (stdout = ''): CommandResult => ({ exitCode: 0, stdout, stderr: '' });
  const run = async (command: string): Promise<CommandResult> => {
    commands.push(command);
    let m: RegExpExecArray | null;
    if (command === 'pveum user list --output-format json')
      return ok(JSON.stringify([...users].map((userid) => ({ userid }))));
    if ((m = /^pveum user add (\S+) /.exec(command))) return (users.add(m[1]!), ok());
    if (command === 'pveum role list --output-format json')
      return ok(JSON.stringify([...roles.keys()].map((roleid) => ({ roleid }))));
    if ((m = /^pveum role (add|modify) (\S+) --privs (\S+)$/.exec(command))) return (roles.set(m[2]!, m[3]!), ok());
    if ((m = /^pveum acl modify \/ (.+)$/.exec(command))) return (acls.push(m[1]!), ok());
    if (/^pveum user token list \S+ --output-format json$/.test(command))
      return ok(JSON.stringify([...tokens].map((tokenid) => ({ tokenid }))));
    if ((m = /^pveum user token remove \S+ (\S+)$/.exec(command))) return (tokens.delete(m[1]!), ok());
    if ((m = /^pveum user token add (\S+) (\S+) --privsep 1 --output-format json$/.exec(command))) {
      if (tokens.has(m[2]!)) return { exitCode: 255, stdout: '', stderr: `Token already exists.` };
      tokens.add(m[2]!);
      return ok(JSON.stringify({ 'full-tokenid': `${m[1]}!${m[2]}`, info: { privsep: 1 }, value: SECRET }));
    }
    return { exitCode: 127, stdout: '', stderr: `unknown: ${command}` };
  };
  return { run, users, roles, tokens, acls, commands };
}

function options(pveum: ReturnType<typeof fakePveum>, overrides: Partial<Parameters<typeof bootstrapRbac>[0]> = {}) {
  const stored: [string, string][] = [];
  const logs: string[] = [];
  return {
    stored,
    logs,
    opts: {
      user: 'proxmox-manager@pve',
      token: 'automation',
      role: ROLE_NAME,
      privileges: ROLE_PRIVILEGES,
      rotate: false,
      run: pveum.run,
      store: async (id: string, secret: string) => void stored.push([id, secret]),
      log: (line: string) => void logs.push(line),
      ...overrides,
    },
  };
}

describe('the RBAC bootstrap', () => {
  it('creates the user, the least-privileged role, ACLs and a separated token, and stores the secret without showing it', async () => {
    const pveum = fakePveum();
    const { opts, stored, logs } = options(pveum);
    expect(await bootstrapRbac(opts)).toEqual({ tokenId: 'proxmox-manager@pve!automation', created: true });
    expect(pveum.users.has('proxmox-manager@pve')).toBe(true);
    expect(pveum.roles.get(ROLE_NAME)).toBe(ROLE_PRIVILEGES.join(','));
    expect(pveum.acls).toEqual([
      `--users proxmox-manager@pve --roles ${ROLE_NAME}`,
      `--tokens 'proxmox-manager@pve!automation' --roles ${ROLE_NAME}`,
    ]);
    expect(stored).toEqual([['proxmox-manager@pve!automation', SECRET]]);
    expect([...logs, ...pveum.commands].join('\n')).not.toContain(SECRET);
  });

  it('is safe to run again: resets the role to the shipped privileges and keeps the token', async () => {
    const pveum = fakePveum({
      users: ['proxmox-manager@pve'],
      roles: { [ROLE_NAME]: 'VM.Audit,Sys.Modify' },
      tokens: ['automation'],
    });
    const { opts, stored, logs } = options(pveum);
    expect(await bootstrapRbac(opts)).toEqual({ tokenId: 'proxmox-manager@pve!automation', created: false });
    expect(pveum.roles.get(ROLE_NAME)).toBe(ROLE_PRIVILEGES.join(','));
    expect(pveum.commands.some((c) => c.startsWith('pveum user add'))).toBe(false);
    expect(stored).toEqual([]);
    expect(logs.at(-1)).toMatch(/exists and was kept .* --rotate/);
  });

  it('replaces the token only when asked to rotate it', async () => {
    const pveum = fakePveum({ users: ['proxmox-manager@pve'], tokens: ['automation'] });
    const { opts, stored } = options(pveum, { rotate: true });
    await bootstrapRbac(opts);
    expect(pveum.commands).toContain('pveum user token remove proxmox-manager@pve automation');
    expect(stored).toHaveLength(1);
  });

  it("reports pveum's failure without the command's output", async () => {
    const pveum = fakePveum();
    const failing = async (command: string): Promise<CommandResult> =>
      command.startsWith('pveum user token add')
        ? { exitCode: 2, stdout: JSON.stringify({ value: SECRET }), stderr: 'user token add failed: no such user' }
        : pveum.run(command);
    const { opts } = options(pveum, { run: failing });
    const error = await bootstrapRbac(opts).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(error).toBeInstanceOf(BootstrapError);
    expect(error!.message).toBe(
      'creating token proxmox-manager@pve!automation failed (exit 2): user token add failed: no such user',
    );
    expect(error!.message).not.toContain(SECRET);
  });

  it('refuses names pveum would misread', async () => {
    const { opts } = options(fakePveum(), { user: 'root@pam' });
    await expect(bootstrapRbac(opts)).rejects.toThrow("--user must be name@pve, got 'root@pam'");
  });
});

describe('where the token goes', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pm-rbac-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  const env = (token: unknown) =>
    EnvironmentConfig.parse({
      cluster: { name: 'c', nodes: [{ name: 'pve01', host: 'h' }] },
      credentials: { token },
      tls: { insecure: true },
    });

  it('a file readable by its owner only, in the format the worker reads', async () => {
    const path = join(dir, 'token');
    await tokenStore(env({ file: path }))('proxmox-manager@pve!automation', SECRET);
    expect(await readFile(path, 'utf8')).toBe(`proxmox-manager@pve!automation\n${SECRET}\n`);
    expect((await stat(path)).mode & 0o777).toBe(0o600);
  });

  it('not an environment variable, which a script cannot set for the worker', () => {
    expect(() => tokenStore(env({ env: 'PVE_TOKEN' }))).toThrow(
      /cannot write: configure credentials.token as \{ pass: <entry> \} or \{ file: <path> \}/,
    );
  });
});
