import { describe, expect, it } from 'vitest';
import { AccessControl, type AclEntry, type ApiToken } from '../../sim/access.js';

const acl = (path: string, opts: Partial<Omit<AclEntry, 'path'>>): AclEntry => ({
  path,
  roles: [],
  privs: [],
  propagate: true,
  ...opts,
});
const token = (...entries: AclEntry[]): ApiToken => ({
  tokenId: 'automation@pve!pm',
  secret: 'secret-value',
  acl: entries,
});

describe('API token authentication', () => {
  const access = new AccessControl([token(acl('/', { roles: ['PVEAuditor'] }))]);

  it('accepts the PVEAPIToken header with the right secret', () => {
    expect(access.authenticate('PVEAPIToken=automation@pve!pm=secret-value')?.tokenId).toBe('automation@pve!pm');
  });

  it('treats a wrong secret and an unknown token alike', () => {
    expect(access.authenticate('PVEAPIToken=automation@pve!pm=wrong')).toBeUndefined();
    expect(access.authenticate('PVEAPIToken=someone@pve!pm=secret-value')).toBeUndefined();
    expect(access.authenticate('Bearer secret-value')).toBeUndefined();
  });
});

describe('ACL propagation', () => {
  it('lets a privilege on / cover every VM and storage', () => {
    const access = new AccessControl([]);
    const t = token(acl('/', { roles: ['PVEVMAdmin'] }));
    expect(access.privilegesAt(t, '/vms/101').has('VM.Migrate')).toBe(true);
    expect(access.privilegesAt(t, '/storage/local').has('VM.Migrate')).toBe(true);
  });

  it('lets /vms cover all VMs but not nodes', () => {
    const access = new AccessControl([]);
    const t = token(acl('/vms', { roles: ['PVEVMUser'] }));
    expect(access.privilegesAt(t, '/vms/101').has('VM.PowerMgmt')).toBe(true);
    expect(access.privilegesAt(t, '/nodes/pve1').size).toBe(0);
  });

  it('replaces inherited roles with those set deeper in the tree', () => {
    const access = new AccessControl([]);
    const t = token(acl('/', { roles: ['PVEVMAdmin'] }), acl('/vms/666', { roles: ['PVEAuditor'] }));
    expect(access.privilegesAt(t, '/vms/101').has('VM.Allocate')).toBe(true);
    expect(access.privilegesAt(t, '/vms/666').has('VM.Allocate')).toBe(false);
    expect(access.privilegesAt(t, '/vms/666').has('VM.Audit')).toBe(true);
  });

  it('applies non-propagating entries only to their own path', () => {
    const access = new AccessControl([]);
    const t = token(acl('/vms', { roles: ['PVEVMAdmin'], propagate: false }));
    expect(access.privilegesAt(t, '/vms').has('VM.Allocate')).toBe(true);
    expect(access.privilegesAt(t, '/vms/101').size).toBe(0);
  });

  it('grants nothing where NoAccess is set', () => {
    const access = new AccessControl([]);
    const t = token(acl('/', { roles: ['Administrator'] }), acl('/vms/100', { roles: ['NoAccess'] }));
    expect(access.privilegesAt(t, '/vms/100').size).toBe(0);
  });

  it('resolves custom roles and directly granted privileges', () => {
    const access = new AccessControl([], { Migrator: ['VM.Migrate', 'VM.Audit'] });
    const t = token(acl('/', { roles: ['Migrator'], privs: ['Sys.Audit'] }));
    expect([...access.privilegesAt(t, '/vms/5')].sort()).toEqual(['Sys.Audit', 'VM.Audit', 'VM.Migrate']);
  });

  it('keeps root-only privileges out of PVEAdmin', () => {
    const access = new AccessControl([]);
    const t = token(acl('/', { roles: ['PVEAdmin'] }));
    const privs = access.privilegesAt(t, '/');
    expect(privs.has('Sys.Audit')).toBe(true);
    expect(privs.has('Sys.Modify')).toBe(false);
    expect(privs.has('Sys.PowerMgmt')).toBe(false);
  });
});
