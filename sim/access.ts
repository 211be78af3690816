/**
 * PVE's access model for API tokens: built-in roles, ACL entries with propagation, and the
 * effective privileges of a token at an ACL path (pve-access-control AccessControl.pm).
 *
 * Tokens are modelled with privilege separation, their own ACL being what counts (as if the
 * owning user held at least as much, which is how automation tokens are set up).
 */
import { timingSafeEqual } from 'node:crypto';

/** PVE's privilege groups: admin, user and audit tiers per category (PVE 9). */
const PRIVILEGE_GROUPS = {
  VM: {
    root: [],
    admin: [
      'VM.Config.Disk',
      'VM.Config.CPU',
      'VM.Config.Memory',
      'VM.Config.Network',
      'VM.Config.HWType',
      'VM.Config.Options',
      'VM.Allocate',
      'VM.Clone',
      'VM.Migrate',
      'VM.Monitor',
      'VM.Snapshot',
      'VM.Snapshot.Rollback',
      'VM.Replicate',
      'VM.GuestAgent.Unrestricted',
    ],
    user: [
      'VM.Config.CDROM',
      'VM.Config.Cloudinit',
      'VM.Console',
      'VM.Backup',
      'VM.PowerMgmt',
      'VM.GuestAgent.Audit',
      'VM.GuestAgent.FileRead',
      'VM.GuestAgent.FileWrite',
      'VM.GuestAgent.FileSystemMgmt',
    ],
    audit: ['VM.Audit'],
  },
  Sys: {
    root: ['Sys.PowerMgmt', 'Sys.Modify', 'Sys.Incoming', 'Sys.AccessNetwork'],
    admin: ['Sys.Console', 'Sys.Syslog'],
    user: [],
    audit: ['Sys.Audit'],
  },
  Datastore: {
    root: [],
    admin: ['Datastore.Allocate', 'Datastore.AllocateTemplate'],
    user: ['Datastore.AllocateSpace'],
    audit: ['Datastore.Audit'],
  },
  SDN: { root: [], admin: ['SDN.Allocate', 'SDN.Audit'], user: ['SDN.Use'], audit: ['SDN.Audit'] },
  User: {
    root: ['Realm.Allocate'],
    admin: ['User.Modify', 'Group.Allocate', 'Realm.AllocateUser'],
    user: [],
    audit: [],
  },
  Pool: { root: [], admin: ['Pool.Allocate'], user: ['Pool.Audit'], audit: ['Pool.Audit'] },
  Mapping: { root: [], admin: ['Mapping.Modify'], user: ['Mapping.Use'], audit: ['Mapping.Audit'] },
} satisfies Record<string, Record<'root' | 'admin' | 'user' | 'audit', string[]>>;

export const VALID_PRIVILEGES: ReadonlySet<string> = new Set([
  'Permissions.Modify',
  ...Object.values(PRIVILEGE_GROUPS).flatMap((g) => [...g.root, ...g.admin, ...g.user, ...g.audit]),
]);

function builtinRoles(): Map<string, ReadonlySet<string>> {
  const roles = new Map<string, Set<string>>();
  const add = (role: string, privs: Iterable<string>) => {
    const set = roles.get(role) ?? new Set<string>();
    for (const p of privs) set.add(p);
    roles.set(role, set);
  };
  roles.set('NoAccess', new Set());
  roles.set('Administrator', new Set(VALID_PRIVILEGES));
  for (const [category, g] of Object.entries(PRIVILEGE_GROUPS)) {
    add(`PVE${category}Admin`, [...g.admin, ...g.user, ...g.audit]);
    add('PVEAdmin', [...g.admin, ...g.user, ...g.audit]);
    if (g.user.length > 0) add(`PVE${category}User`, [...g.user, ...g.audit]);
    add('PVEAuditor', g.audit);
  }
  roles.get('PVEAdmin')!.delete('Mapping.Modify');
  roles.set('PVETemplateUser', new Set(['VM.Clone', 'VM.Audit']));
  return roles;
}

export const BUILTIN_ROLES: ReadonlyMap<string, ReadonlySet<string>> = builtinRoles();

export interface AclEntry {
  path: string;
  roles: readonly string[];
  /** Privileges granted directly, as if by an unnamed role. */
  privs: readonly string[];
  propagate: boolean;
}

export interface ApiToken {
  /** `user@realm!name` */
  tokenId: string;
  secret: string;
  acl: readonly AclEntry[];
}

/** PVE's normalize_path. */
export function normalizeAclPath(path: string): string {
  return `/${path.split('/').filter(Boolean).join('/')}`;
}

/** `/`, `/vms`, `/vms/100` for `/vms/100` (a normalised path). */
function ancestry(normalized: string): string[] {
  const levels = ['/'];
  for (let end = normalized.indexOf('/', 1); end > 0; end = normalized.indexOf('/', end + 1))
    levels.push(normalized.slice(0, end));
  if (normalized !== '/') levels.push(normalized);
  return levels;
}

export class AccessControl {
  readonly roles: ReadonlyMap<string, ReadonlySet<string>>;
  readonly #tokens: Map<string, ApiToken>;
  readonly #aclPaths = new WeakMap<ApiToken, Map<string, AclEntry[]>>();

  constructor(tokens: readonly ApiToken[], customRoles: Readonly<Record<string, readonly string[]>> = {}) {
    const roles = new Map(BUILTIN_ROLES);
    for (const [name, privs] of Object.entries(customRoles)) roles.set(name, new Set(privs));
    this.roles = roles;
    this.#tokens = new Map(tokens.map((t) => [t.tokenId, t]));
  }

  get tokens(): readonly ApiToken[] {
    return [...this.#tokens.values()];
  }

  /**
   * The token a `PVEAPIToken=USER@REALM!TOKENID=SECRET` header names, if its secret matches.
   * Unknown tokens and wrong secrets are indistinguishable, as in PVE.
   */
  authenticate(authorization: string | undefined): ApiToken | undefined {
    const m = /^PVEAPIToken[= ]([^=\s]+)=(\S+)$/.exec(authorization?.trim() ?? '');
    if (!m) return undefined;
    const token = this.#tokens.get(m[1]!);
    if (!token) return undefined;
    const given = Buffer.from(m[2]!);
    const expected = Buffer.from(token.secret);
    return given.length === expected.length && timingSafeEqual(given, expected) ? token : undefined;
  }

  /**
   * The ACL entries in force for a token at a path: walking from `/` down, each level with
   * entries for the token replaces what was inherited; ancestors count only if propagating.
   */
  entriesAt(token: ApiToken, path: string): readonly AclEntry[] {
    let entries: AclEntry[] = [];
    const target = normalizeAclPath(path);
    const acl = this.#aclByPath(token);
    for (const level of ancestry(target)) {
      const here = (acl.get(level) ?? []).filter((e) => level === target || e.propagate);
      if (here.length > 0) entries = here;
    }
    return entries;
  }

  /** The token's ACL entries by normalised path, in their order; made once (cluster/resources asks about every guest). */
  #aclByPath(token: ApiToken): ReadonlyMap<string, readonly AclEntry[]> {
    let byPath = this.#aclPaths.get(token);
    if (!byPath) {
      byPath = new Map();
      for (const e of token.acl) {
        const path = normalizeAclPath(e.path);
        byPath.set(path, [...(byPath.get(path) ?? []), e]);
      }
      this.#aclPaths.set(token, byPath);
    }
    return byPath;
  }

  privilegesAt(token: ApiToken, path: string): Set<string> {
    return this.#privilegesOf(this.entriesAt(token, path));
  }

  /**
   * `privilegesAt` for the length of one request: cluster/resources asks about every guest's
   * path, and those paths share a handful of ACL entry sets, so each set's privileges are
   * gathered once.
   */
  privilegesFor(token: ApiToken): (path: string) => Set<string> {
    const byEntries = new Map<string, Set<string>>();
    return (path) => {
      const entries = this.entriesAt(token, path);
      const key = entries.map((e) => token.acl.indexOf(e)).join(',');
      let privs = byEntries.get(key);
      if (!privs) byEntries.set(key, (privs = this.#privilegesOf(entries)));
      return privs;
    };
  }

  #privilegesOf(entries: readonly AclEntry[]): Set<string> {
    if (entries.some((e) => e.roles.includes('NoAccess'))) return new Set();
    const privs = new Set<string>();
    for (const e of entries) {
      for (const role of e.roles) for (const p of this.roles.get(role) ?? []) privs.add(p);
      for (const p of e.privs) privs.add(p);
    }
    return privs;
  }

  /** `GET /access/permissions`: path -> privilege -> propagate (1/0), for every ACL path of the token. */
  permissionTree(token: ApiToken, onlyPath?: string): Record<string, Record<string, 0 | 1>> {
    const paths = onlyPath
      ? [normalizeAclPath(onlyPath)]
      : [...new Set(token.acl.map((e) => normalizeAclPath(e.path)))];
    const tree: Record<string, Record<string, 0 | 1>> = {};
    for (const path of paths) {
      const privs = this.privilegesAt(token, path);
      const propagating = token.acl.some((e) => normalizeAclPath(e.path) === path && e.propagate);
      tree[path] = Object.fromEntries([...privs].sort().map((p) => [p, propagating ? 1 : 0]));
    }
    return tree;
  }
}
