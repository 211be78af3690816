import { describe, expect, it } from 'vitest';
import { buildRequest, decodeFormParams } from '../../lib/pve/endpoint.js';
import { InvalidRequestError } from '../../lib/pve/errors.js';
import { checkPermission, type PermissionSubject } from '../../lib/pve/permissions.js';
import { endpoints, matchEndpoint } from '../../lib/pve/registry.js';

describe('decodeFormParams verifies parameters as PVE does', () => {
  it('types form strings: integers, booleans 0/1, enums', () => {
    expect(
      decodeFormParams(endpoints.qemuMigrate, {
        node: 'pve1',
        vmid: '101',
        target: 'pve2',
        online: '1',
        'with-local-disks': '0',
      }),
    ).toEqual({
      ok: true,
      value: { node: 'pve1', vmid: 101, target: 'pve2', online: true, 'with-local-disks': false },
    });
  });

  it('accepts JSON bodies with real booleans and numbers', () => {
    expect(decodeFormParams(endpoints.qemuMigrate, { node: 'pve1', vmid: 101, target: 'pve2', online: true })).toEqual({
      ok: true,
      value: { node: 'pve1', vmid: 101, target: 'pve2', online: true },
    });
  });

  it("reports each bad parameter with PVE's message", () => {
    const result = decodeFormParams(endpoints.qemuMigrate, {
      node: 'pve1',
      vmid: 'abc',
      online: 'yes',
      bwlimit: '-5',
      migration_type: 'fast',
      colour: 'blue',
    });
    expect(result).toEqual({
      ok: false,
      errors: {
        vmid: "type check ('integer') failed - got 'abc'",
        target: 'property is missing and it is not optional',
        online: "type check ('boolean') failed - got 'yes'",
        bwlimit: 'value must have a minimum value of 0',
        migration_type: "value 'fast' does not have a value in the enumeration 'secure, insecure'",
        colour: 'property is not defined in schema and the schema does not allow additional properties',
      },
    });
  });

  it('checks named formats, patterns, lengths and maxima', () => {
    const result = decodeFormParams(endpoints.qemuResize, {
      node: 'not a node',
      vmid: '1000000000',
      disk: 'scsi0',
      size: 'ten gigs',
      digest: 'x'.repeat(41),
    });
    expect(result).toEqual({
      ok: false,
      errors: {
        node: 'invalid format - value does not look like a valid node name',
        vmid: 'invalid format - value does not look like a valid VM ID',
        size: 'value does not match the regex pattern',
        digest: 'value may only be 40 characters long',
      },
    });
    expect(decodeFormParams(endpoints.qemuStart, { node: 'pve1', vmid: '101', timeout: '1.5' })).toMatchObject({
      errors: { timeout: "type check ('integer') failed - got '1.5'" },
    });
    expect(
      decodeFormParams(endpoints.qemuUpdateConfigAsync, { node: 'pve1', vmid: '101', background_delay: '31' }),
    ).toMatchObject({
      errors: { background_delay: 'value must have a maximum value of 30' },
    });
  });

  it('checks every item of a list format', () => {
    expect(
      decodeFormParams(endpoints.qemuUpdateConfig, { node: 'pve1', vmid: '101', delete: 'net1,9lives' }),
    ).toMatchObject({
      errors: { delete: "invalid format - invalid configuration ID '9lives'" },
    });
  });

  it('reports a parameter that another one requires', () => {
    const result = decodeFormParams(endpoints.storageDownloadUrl, {
      node: 'pve1',
      storage: 'local',
      url: 'https://example.org/a.iso',
      content: 'iso',
      filename: 'a.iso',
      checksum: 'abc',
    });
    expect(result).toEqual({
      ok: false,
      errors: { 'checksum-algorithm': "missing property - 'checksum' requires this property" },
    });
  });
});

describe('buildRequest', () => {
  it('puts path parameters in the path, URI-encoded, and the rest in the form', () => {
    const upid = 'UPID:pve1:000934AF:0D015579:68BF3A41:qmstart:101:root@pam:';
    const req = buildRequest(endpoints.taskLog, { node: 'pve1', upid, start: 0, limit: 50 });
    expect(req.method).toBe('GET');
    expect(req.path).toBe(`/nodes/pve1/tasks/${encodeURIComponent(upid)}/log`);
    expect(req.form.toString()).toBe('start=0&limit=50');
  });

  it('refuses, naming the parameter, a request PVE would reject; nothing is built', () => {
    expect(() => buildRequest(endpoints.qemuClone, { node: 'pve1', vmid: 101, newid: 42 })).toThrow(
      InvalidRequestError,
    );
    expect(() => buildRequest(endpoints.qemuClone, { node: 'pve1', vmid: 101, newid: 42 })).toThrow(
      /invalid qemuClone request .*newid: invalid format - value does not look like a valid VM ID/,
    );
  });

  it('requires path parameters even where PVE lists them as optional', () => {
    expect(() => buildRequest(endpoints.storageDeleteVolume, { node: 'pve1', volume: 'local:iso/a.iso' })).toThrow(
      /storage: path parameter is missing/,
    );
  });
});

describe('matchEndpoint', () => {
  it('finds the endpoint and decodes its path parameters', () => {
    const upid = 'UPID:pve1:000934AF:0D015579:68BF3A41:qmstart:101:root@pam:';
    const match = matchEndpoint('GET', `/nodes/pve1/tasks/${encodeURIComponent(upid)}/status`);
    expect(match?.endpoint.name).toBe('taskStatus');
    expect(match?.pathParams).toEqual({ node: 'pve1', upid });
  });

  it('tells methods apart on one path and knows nothing else', () => {
    expect(matchEndpoint('PUT', '/nodes/pve1/qemu/101/config')?.endpoint.name).toBe('qemuUpdateConfig');
    expect(matchEndpoint('POST', '/nodes/pve1/qemu/101/config')?.endpoint.name).toBe('qemuUpdateConfigAsync');
    expect(matchEndpoint('GET', '/nodes/pve1/qemu/101/rrd')).toBeUndefined();
  });
});

describe('checkPermission', () => {
  const subject = (acl: Record<string, string[]>, userid = 'automation@pve!orchestrator'): PermissionSubject => ({
    userid,
    privilegesAt: (path) => new Set(acl[path] ?? []),
    taskOwner: () => 'root@pam',
  });

  it("denies a single check with PVE's message naming path and privilege", () => {
    expect(
      checkPermission(
        endpoints.qemuMigrate.permission,
        { node: 'pve1', vmid: 101 },
        subject({ '/vms/101': ['VM.Audit'] }),
      ),
    ).toEqual({
      allowed: false,
      message: 'Permission check failed (/vms/101, VM.Migrate)',
    });
    expect(
      checkPermission(
        endpoints.qemuMigrate.permission,
        { node: 'pve1', vmid: 101 },
        subject({ '/vms/101': ['VM.Migrate'] }),
      ),
    ).toEqual({
      allowed: true,
    });
  });

  it('joins alternatives with | when any one would do', () => {
    expect(checkPermission(endpoints.qemuSnapshotRollback.permission, { vmid: 101 }, subject({}))).toEqual({
      allowed: false,
      message: 'Permission check failed (/vms/101, VM.Snapshot|VM.Snapshot.Rollback)',
    });
    expect(
      checkPermission(
        endpoints.qemuSnapshotRollback.permission,
        { vmid: 101 },
        subject({ '/vms/101': ['VM.Snapshot.Rollback'] }),
      ),
    ).toEqual({ allowed: true });
  });

  it('gives the bare message when a compound check fails, and honours require_param', () => {
    const check = endpoints.qemuClone.permission;
    const clone = subject({ '/vms/101': ['VM.Clone'], '/pool/lab': ['VM.Allocate'] });
    expect(checkPermission(check, { vmid: 101, newid: 102 }, clone)).toEqual({
      allowed: false,
      message: 'Permission check failed',
    });
    expect(checkPermission(check, { vmid: 101, newid: 102, pool: 'lab' }, clone)).toEqual({ allowed: true });
  });

  it("lets a task's owner read it and others only with Sys.Audit on the node", () => {
    const params = { node: 'pve1', upid: 'UPID:pve1:000934AF:0D015579:68BF3A41:qmstart:101:root@pam:' };
    expect(checkPermission(endpoints.taskStatus.permission, params, subject({}, 'root@pam'))).toEqual({
      allowed: true,
    });
    expect(checkPermission(endpoints.taskStatus.permission, params, subject({})).allowed).toBe(false);
    expect(checkPermission(endpoints.taskStatus.permission, params, subject({ '/nodes/pve1': ['Sys.Audit'] }))).toEqual(
      { allowed: true },
    );
  });

  it("lets callers read their own (and a user its tokens') permissions, others with Sys.Audit on /access", () => {
    const check = endpoints.accessPermissions.permission;
    const token = subject({});
    expect(checkPermission(check, {}, token)).toEqual({ allowed: true });
    expect(checkPermission(check, { userid: 'automation@pve!orchestrator' }, token)).toEqual({ allowed: true });
    expect(checkPermission(check, { userid: 'automation@pve' }, token).allowed).toBe(false);
    expect(checkPermission(check, { userid: 'automation@pve!orchestrator' }, subject({}, 'automation@pve'))).toEqual({
      allowed: true,
    });
    expect(checkPermission(check, { userid: 'root@pam' }, subject({ '/access': ['Sys.Audit'] }))).toEqual({
      allowed: true,
    });
  });
});
