import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkPermission, type PermissionCheck } from '../../lib/pve/permissions.js';
import { type EndpointName, endpoints } from '../../lib/pve/registry.js';
import {
  CODE_CONFIG_WRITES,
  endpointChecks,
  EXCLUDED_PRIVILEGES,
  requiredPrivileges,
  rootOnlyReason,
  ROLE_NAME,
  ROLE_PRIVILEGES,
  unmetRequirements,
} from '../../lib/rbac.js';
import { configWritesOf } from '../../lib/runbooks/config-check.js';
import { parseRunbookMarkdown } from '../../lib/runbooks/markdown.js';

const schemaPath = fileURLToPath(new URL('../../../shared/pve-api/pve-api-schema.json', import.meta.url));
const runbooksDir = fileURLToPath(new URL('../../runbooks/', import.meta.url));

const runbookWrites = readdirSync(runbooksDir)
  .filter((f) => f.endsWith('.md'))
  .flatMap((f) => configWritesOf(parseRunbookMarkdown(readFileSync(`${runbooksDir}/${f}`, 'utf8'), f).runbook));
const writes = [...CODE_CONFIG_WRITES, ...runbookWrites];

/** PVE's schema form (`["perm", "/vms/{vmid}", ["VM.Audit"], "any", 1]`) as the project's PermissionCheck. */
function fromSchema(check: unknown[]): PermissionCheck {
  const [kind, ...rest] = check;
  if (kind === 'and' || kind === 'or') return { kind, checks: (rest as unknown[][]).map(fromSchema) };
  if (kind === 'userid-param') return { kind: 'userid-param' };
  if (kind === 'perm') {
    const [path, privs, ...options] = rest as [string, string[], ...unknown[]];
    const requireAt = options.indexOf('require_param');
    return {
      kind: 'perm',
      path,
      privs,
      ...(options.includes('any') ? { any: true } : {}),
      ...(requireAt >= 0 ? { requireParam: String(options[requireAt + 1]) } : {}),
    };
  }
  throw new Error(`a check of kind ${String(kind)} is not expected among the project's endpoints`);
}

describe('the least-privilege role', () => {
  it('is exactly what the endpoints and the properties the project writes need', () => {
    expect(requiredPrivileges(endpointChecks(), writes).privileges).toEqual([...ROLE_PRIVILEGES]);
  });

  it("passes every endpoint's check as the simulator evaluates it, for every call any workflow makes", () => {
    const role = new Set<string>(ROLE_PRIVILEGES);
    const subject = {
      userid: 'proxmox-manager@pve!automation',
      privilegesAt: () => role,
      taskOwner: () => 'proxmox-manager@pve!automation',
    };
    const params = { node: 'pve01', vmid: 101, newid: 102, storage: 'local', upid: 'UPID:x' };
    const refused = (Object.keys(endpoints) as EndpointName[]).filter(
      (name) => !checkPermission(endpoints[name].permission, params, subject).allowed,
    );
    expect(refused).toEqual([]);
  });

  it('holds no privilege it could do without', () => {
    for (const privilege of ROLE_PRIVILEGES) {
      const without = ROLE_PRIVILEGES.filter((p) => p !== privilege);
      expect(unmetRequirements(without, endpointChecks(), writes), `without ${privilege}`).not.toEqual([]);
    }
  });

  it('never holds a privilege the orchestrator must not have', () => {
    expect(ROLE_PRIVILEGES.filter((p) => EXCLUDED_PRIVILEGES.has(p))).toEqual([]);
    expect(ROLE_PRIVILEGES).not.toContain('Sys.Modify');
    expect(ROLE_PRIVILEGES).not.toContain('Permissions.Modify');
  });

  it('never needs a property only root@pam may write (no token can hold that)', () => {
    expect(writes.filter((w) => rootOnlyReason(w)).map((w) => `${w.type} ${w.key}`)).toEqual([]);
    expect(rootOnlyReason({ type: 'qemu', key: 'hostpci0', value: '0000:01:00.0' })).toBe(
      "only root can set 'hostpci0' config for non-mapped devices",
    );
    expect(rootOnlyReason({ type: 'qemu', key: 'hostpci0', value: 'mapping=gpu' })).toBeUndefined();
    expect(rootOnlyReason({ type: 'qemu', key: 'args', value: '-no-reboot' })).toBe("only root can set 'args' config");
  });

  it('covers every config property the shipped runbooks write', () => {
    expect(runbookWrites.length).toBeGreaterThan(20);
    expect(unmetRequirements(ROLE_PRIVILEGES, [], runbookWrites)).toEqual([]);
  });
});

describe.skipIf(!existsSync(schemaPath))("the role against PVE's official API schema (../shared)", () => {
  const schema = existsSync(schemaPath)
    ? (JSON.parse(readFileSync(schemaPath, 'utf8')) as {
        paths: Record<string, Record<string, { permissions?: { check?: unknown[]; user?: string } }>>;
      })
    : { paths: {} };
  const official = (name: EndpointName) => {
    const endpoint = endpoints[name];
    const permissions = schema.paths[endpoint.path]?.[endpoint.method]?.permissions;
    if (!permissions) throw new Error(`${name}: ${endpoint.method} ${endpoint.path} is not in the schema`);
    return permissions;
  };
  const names = Object.keys(endpoints) as EndpointName[];

  it("passes every endpoint's official check", () => {
    const role = new Set<string>(ROLE_PRIVILEGES);
    const subject = {
      userid: 'proxmox-manager@pve!automation',
      privilegesAt: () => role,
      taskOwner: () => 'proxmox-manager@pve!automation',
    };
    const refused = names.flatMap((name) => {
      const check = official(name).check;
      if (!check) return [];
      const params = { node: 'pve01', vmid: 101, newid: 102, storage: 'local', upid: 'UPID:x' };
      const result = checkPermission(fromSchema(check), params, subject);
      return result.allowed ? [] : [`${name}: ${result.message}`];
    });
    expect(refused).toEqual([]);
  });

  it('is what the official checks need, where PVE states them (its handlers decide the rest)', () => {
    const checks = names.map((name) => {
      const check = official(name).check;
      // `user: all` endpoints check inside the handler; endpoints.ts states those checks with a permissionNote.
      return { endpoint: name, check: check ? fromSchema(check) : endpoints[name].permission };
    });
    expect(requiredPrivileges(checks, writes).privileges).toEqual([...ROLE_PRIVILEGES]);
  });

  it('has what PVE 9 asks of guest-agent calls and of download-url', () => {
    const agent = fromSchema(official('qemuAgentNetworkInterfaces').check!);
    expect(agent).toMatchObject({ privs: ['VM.GuestAgent.Audit', 'VM.GuestAgent.Unrestricted'], any: true });
    expect(ROLE_PRIVILEGES).toContain('VM.GuestAgent.Audit');
    expect(JSON.stringify(official('storageDownloadUrl').check)).toContain('Sys.AccessNetwork');
    expect(ROLE_PRIVILEGES).toEqual(expect.arrayContaining(['Datastore.AllocateTemplate', 'Sys.AccessNetwork']));
  });
});

describe('the simulated homelab', () => {
  it("gives the orchestrator's token exactly the shipped role, so tests and the demo run with least privilege", async () => {
    const { loadScenarioFile } = await import('../../sim/index.js');
    const scenario = await loadScenarioFile(
      fileURLToPath(new URL('../../sim/scenarios/homelab.yaml', import.meta.url)),
    );
    expect([...(scenario.roles[ROLE_NAME] ?? [])].sort()).toEqual([...ROLE_PRIVILEGES].sort());
  });
});
