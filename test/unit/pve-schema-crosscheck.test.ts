/**
 * Holds the endpoints of lib/pve/registry.ts against the official PVE 9.1 API schema: every call we define
 * exists there with the same parameters, types, bounds, enums, optional flags and permission
 * checks, and every request the client builds is one the schema accepts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { createPveClient, type PveClient } from '../../lib/pve/client.js';
import type { Endpoint, WireRequest } from '../../lib/pve/endpoint.js';
import { paramInfo } from '../../lib/pve/params.js';
import type { PermissionCheck } from '../../lib/pve/permissions.js';
import { endpoints, matchEndpoint } from '../../lib/pve/registry.js';
import { namedFormats } from '../../lib/pve/formats/named.js';
import { defaultKey, isAlias, type PropertyFormat } from '../../lib/pve/property-string.js';
import type { PveTransport } from '../../lib/pve/transport.js';

const schemaUrl = new URL('../../../shared/pve-api/pve-api-schema.json', import.meta.url);
const present = existsSync(schemaUrl);

interface SchemaParam {
  type?: string;
  optional?: number;
  enum?: string[] | null;
  format?: unknown;
  pattern?: string;
  minimum?: number | string;
  maximum?: number | string;
  minLength?: number;
  maxLength?: number;
  requires?: string;
  description?: string;
  typetext?: string;
}
interface SchemaMethod {
  parameters?: { properties?: Record<string, SchemaParam>; additionalProperties?: number };
  permissions?: { check?: unknown[]; user?: string; description?: string };
}
type Schema = { version: string; paths: Record<string, Record<string, SchemaMethod>> };

const schema: Schema | undefined = present ? JSON.parse(readFileSync(schemaUrl, 'utf8')) : undefined;
const all = Object.values(endpoints) as Endpoint[];

function schemaMethod(e: Endpoint): SchemaMethod | undefined {
  return schema?.paths[e.path]?.[e.method];
}

/** Our `net5` is the schema's `net[n]`; returns the schema's name and the index range it documents. */
function schemaName(props: Record<string, SchemaParam>, name: string): { key: string; maxIndex?: number } | undefined {
  if (props[name]) return { key: name };
  const m = /^(.*?)(\d+)$/.exec(name);
  const key = m && `${m[1]}[n]`;
  if (!key || !props[key]) return undefined;
  const documented = /\(n is 0 to (\d+)/.exec(props[key].description ?? '');
  return { key, maxIndex: documented ? Number(documented[1]) : undefined };
}

type SchemaFormat = Record<string, Record<string, unknown>>;

/** A property-string format in one comparable form: per key its type and bounds, or its alias. */
function propertyKeys(format: SchemaFormat | PropertyFormat): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(format as SchemaFormat).map(([name, k]) => {
      if (k['alias'] !== undefined) return [name, { alias: k['alias'], keyAlias: k['keyAlias'] }];
      const n = (v: unknown) => (v === undefined ? undefined : Number(v));
      const flag = (v: unknown) => v === 1 || v === true;
      return [
        name,
        {
          type: k['type'],
          optional: flag(k['optional']),
          default_key: flag(k['default_key']),
          enum: k['enum'],
          minimum: n(k['minimum']),
          maximum: n(k['maximum']),
          maxLength: k['maxLength'],
          pattern: k['pattern'],
          format: k['format'],
        },
      ];
    }),
  );
}

/**
 * Named property-string formats (`pve-qm-ipconfig`) appear in the schema only as `typetext`:
 * `[[cputype=]<string>] [,flags=<...>] [,hidden=<1|0>]`. Its keys, the default key (written
 * `[key=]`), booleans (`<1|0>`) and enums (`<a|b>`) are compared with ours.
 */
function parseTypetext(typetext: string): Record<string, string> {
  const keys: Record<string, string> = {};
  for (const m of typetext.matchAll(/(\[?)([\w-]+)=(\]?)<([^>]*)>/g)) {
    const [, open, key, close, value] = m;
    // `<8-64|host>` is a range or a word, not an enum.
    const listed = /^[^|]+(\|[^|]+)+$/.test(value!) && !/\d-\d/.test(value!);
    const kind = value === '1|0' ? 'boolean' : listed ? `enum ${value}` : value === 'enum' ? 'enum' : 'value';
    keys[key!] = `${open && close ? 'default ' : ''}${kind}`;
  }
  return keys;
}

function typetextKeys(format: PropertyFormat): Record<string, string> {
  const first = defaultKey(format);
  return Object.fromEntries(
    Object.entries(format)
      .filter(([, k]) => !isAlias(k))
      .map(([name, k]) => {
        const spec = k as Exclude<typeof k, { alias: string }>;
        const kind = spec.type === 'boolean' ? 'boolean' : spec.enum ? `enum ${spec.enum.join('|')}` : 'value';
        return [name, `${name === first ? 'default ' : ''}${kind}`];
      }),
  );
}

/** The schema's `permissions.check` in our vocabulary. */
function fromSchemaCheck(check: unknown[]): PermissionCheck {
  const [kind, ...rest] = check as [string, ...unknown[]];
  if (kind === 'and' || kind === 'or') return { kind, checks: (rest as unknown[][]).map(fromSchemaCheck) };
  if (kind === 'perm') {
    const [path, privs, ...opts] = rest as [string, string[], ...unknown[]];
    const options = Object.fromEntries(
      Array.from({ length: opts.length / 2 }, (_, i) => [opts[2 * i], opts[2 * i + 1]]),
    );
    return {
      kind: 'perm',
      path,
      privs,
      ...(options.any ? { any: true } : {}),
      ...(options.require_param ? { requireParam: options.require_param as string } : {}),
    };
  }
  if (kind === 'userid-param') return { kind: 'userid-param' };
  throw new Error(`schema check kind ${kind} has no counterpart in PermissionCheck`);
}

describe.skipIf(!present)(
  present
    ? `endpoints against the PVE ${schema!.version} schema`
    : 'endpoints against the PVE schema (skipped: ../shared/pve-api/pve-api-schema.json is absent)',
  () => {
    describe.each(all.map((e) => [e.name, e] as const))('%s', (_, endpoint) => {
      it('exists in the schema with its method and path', () => {
        expect(schemaMethod(endpoint), `${endpoint.method} ${endpoint.path}`).toBeDefined();
        expect(schemaMethod(endpoint)?.parameters?.additionalProperties).toBe(0);
      });

      it('defines each parameter as the schema does', () => {
        const props = schemaMethod(endpoint)?.parameters?.properties ?? {};
        for (const [name, field] of Object.entries(endpoint.params.shape)) {
          const found = schemaName(props, name);
          expect(found, `${endpoint.name}.${name} is not in the schema`).toBeDefined();
          const theirs = props[found!.key]!;
          const { optional, spec } = paramInfo(field);
          const at = `${endpoint.name}.${name}`;
          if (found!.maxIndex !== undefined) {
            expect(Number(/\d+$/.exec(name)![0]), `${at} index`).toBeLessThanOrEqual(found!.maxIndex);
          }
          expect(spec.type, `${at} type`).toBe(theirs.type ?? 'string');
          expect(optional, `${at} optional`).toBe(theirs.optional === 1);
          expect(spec.enum, `${at} enum`).toEqual(theirs.enum ?? undefined);
          expect(spec.pattern, `${at} pattern`).toBe(theirs.pattern);
          expect(spec.minimum, `${at} minimum`).toBe(theirs.minimum === undefined ? undefined : Number(theirs.minimum));
          expect(spec.maximum, `${at} maximum`).toBe(theirs.maximum === undefined ? undefined : Number(theirs.maximum));
          expect(spec.minLength, `${at} minLength`).toBe(theirs.minLength);
          expect(spec.maxLength, `${at} maxLength`).toBe(theirs.maxLength);
          expect(spec.requires, `${at} requires`).toBe(theirs.requires);
          if (typeof theirs.format === 'object' && theirs.format !== null) {
            expect(typeof spec.format, `${at} is a property string`).toBe('object');
            expect(propertyKeys(spec.format as PropertyFormat), `${at} keys`).toEqual(
              propertyKeys(theirs.format as SchemaFormat),
            );
          } else {
            expect(spec.format, `${at} format`).toBe(theirs.format);
          }
        }
      });

      it('describes the keys of named property-string formats as the schema writes them', () => {
        const props = schemaMethod(endpoint)?.parameters?.properties ?? {};
        for (const [name, field] of Object.entries(endpoint.params.shape)) {
          const { spec } = paramInfo(field);
          const named = typeof spec.format === 'string' ? namedFormats[spec.format] : undefined;
          if (!named || !('properties' in named)) continue;
          const theirs = parseTypetext(props[schemaName(props, name)!.key]!.typetext ?? '');
          // PVE's CPU model list is not in the schema; we accept any model name there.
          if (spec.format === 'pve-vm-cpu-conf')
            theirs['reported-model'] = theirs['reported-model']?.replace(/enum$/, 'value') ?? '';
          // A long enum is written `<enum>` without its values: only that it is one can be compared.
          const ours = Object.fromEntries(
            Object.entries(typetextKeys(named.properties)).map(([k, kind]) => [
              k,
              theirs[k]?.endsWith('enum') ? kind.replace(/ [^ ]+$/, '') : kind,
            ]),
          );
          expect(ours, `${endpoint.name}.${name} (${spec.format})`).toEqual(theirs);
        }
      });

      it('has every parameter the schema requires', () => {
        const props = schemaMethod(endpoint)?.parameters?.properties ?? {};
        const required = Object.entries(props)
          .filter(([, p]) => p.optional !== 1)
          .map(([name]) => name);
        expect(Object.keys(endpoint.params.shape)).toEqual(expect.arrayContaining(required));
      });

      it("checks the schema's permissions, or documents a stricter reading", () => {
        const permissions = schemaMethod(endpoint)?.permissions ?? {};
        if (permissions.check) {
          expect(endpoint.permission).toEqual(fromSchemaCheck(permissions.check));
        } else {
          expect(permissions.user).toBe('all');
          if (endpoint.permission.kind !== 'user-all') expect(endpoint.permissionNote).toBeTruthy();
        }
      });
    });
  },
);

// -------------------------------------------------------------------------------------------
// Requests the client builds, validated by a reading of the schema independent of ours.

function validateAgainstSchema(method: SchemaMethod, values: Record<string, string>): Record<string, string> {
  const props = method.parameters?.properties ?? {};
  const errors: Record<string, string> = {};
  for (const [name, p] of Object.entries(props)) {
    if (p.optional !== 1 && !(name in values)) errors[name] = 'missing';
  }
  for (const [name, value] of Object.entries(values)) {
    const found = schemaName(props, name);
    if (!found) {
      errors[name] = 'unknown';
      continue;
    }
    const p = props[found.key]!;
    const ok =
      p.type === 'integer'
        ? /^[+-]?\d+$/.test(value)
        : p.type === 'number'
          ? /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(value)
          : p.type === 'boolean'
            ? value === '0' || value === '1'
            : true;
    if (!ok) errors[name] = `not ${p.type}`;
    else if (p.enum && !p.enum.includes(value)) errors[name] = 'not in enum';
    else if (p.pattern && !new RegExp(`^(?:${p.pattern.replaceAll('(?^:', '(?:')})$`).test(value))
      errors[name] = 'pattern';
    else if (p.maxLength !== undefined && value.length > p.maxLength) errors[name] = 'too long';
    else if (p.minimum !== undefined && Number(value) < Number(p.minimum)) errors[name] = 'below minimum';
    else if (p.maximum !== undefined && Number(value) > Number(p.maximum)) errors[name] = 'above maximum';
    else if (typeof p.format === 'object' && p.format !== null) {
      const bad = unknownKeys(p.format as SchemaFormat, value);
      if (bad.length > 0) errors[name] = `unknown keys ${bad.join(', ')}`;
    }
    if (p.requires && !(p.requires in values)) errors[p.requires] = `required by ${name}`;
  }
  return errors;
}

/** Keys of a property string that the schema's format does not have (a bare value needs a default key). */
function unknownKeys(format: SchemaFormat, value: string): string[] {
  return value
    .split(',')
    .map((part) => (part.includes('=') ? part.slice(0, part.indexOf('=')) : undefined))
    .map((key) => key ?? Object.keys(format).find((k) => format[k]!['default_key']) ?? '(bare value)')
    .filter((key) => !format[key]);
}

function recordingClient(): { client: PveClient; sent: WireRequest[] } {
  const sent: WireRequest[] = [];
  const transport: PveTransport = {
    async send(req) {
      sent.push(req);
      throw new Error('recorded, not sent');
    },
    async close() {},
  };
  return { client: createPveClient({ nodes: [], tls: {}, credential: { tokenId: '', secret: '' }, transport }), sent };
}

const upid = 'UPID:pve1:000934AF:0D015579:68BF3A41:qmigrate:101:automation@pve!orchestrator:';
const guest = { node: 'pve1', vmid: 101 };

/** One representative request per client method, filled the way the workflows use them. */
const samples: [string, (c: PveClient) => Promise<unknown>][] = [
  [
    'backup.vzdump',
    (c) =>
      c.backup.vzdump({
        node: 'pve1',
        vmid: '101',
        storage: 'nfs',
        mode: 'snapshot',
        compress: 'zstd',
        'notes-template': '{{guestname}}',
        protected: true,
      }),
  ],
  [
    'backup.extractConfig',
    (c) => c.backup.extractConfig({ node: 'pve1', volume: 'nfs:backup/vzdump-qemu-101-2026_12_06-07_00_00.vma.zst' }),
  ],
  [
    'qemu.create (restore)',
    (c) =>
      c.qemu.create({
        ...guest,
        archive: 'nfs:backup/vzdump-qemu-101-2026_12_06-07_00_00.vma.zst',
        force: true,
        storage: 'local-lvm',
      }),
  ],
  ['cluster.version', (c) => c.cluster.version()],
  ['cluster.resources', (c) => c.cluster.resources({ type: 'vm' })],
  ['cluster.status', (c) => c.cluster.status()],
  ['cluster.nextId', (c) => c.cluster.nextId({ vmid: 1000 })],
  ['cluster.haResources', (c) => c.cluster.haResources({ type: 'vm' })],
  ['cluster.haRules', (c) => c.cluster.haRules({ type: 'resource-affinity', resource: 'vm:101' })],
  ['nodes.list', (c) => c.nodes.list()],
  ['nodes.status', (c) => c.nodes.status({ node: 'pve1' })],
  ['qemu.list', (c) => c.qemu.list({ node: 'pve1', full: true })],
  [
    'qemu.create',
    (c) =>
      c.qemu.create({
        ...guest,
        name: 'auto-web-101',
        cores: 2,
        sockets: 1,
        memory: '2048',
        cpu: 'host',
        bios: 'ovmf',
        machine: 'q35',
        scsihw: 'virtio-scsi-single',
        efidisk0: 'local-lvm:1,efitype=4m,pre-enrolled-keys=0',
        scsi0: 'local-lvm:32,iothread=1,discard=on',
        ide2: 'local-lvm:cloudinit',
        net0: 'virtio,bridge=vmbr0',
        agent: 'enabled=1',
        boot: 'order=scsi0',
        serial0: 'socket',
        vga: 'serial0',
        tags: 'web;prod',
        ipconfig0: 'ip=dhcp',
        ciuser: 'ops',
        sshkeys: 'ssh-ed25519%20AAAAC3Nza%20ops%40example',
        onboot: true,
        start: false,
      }),
  ],
  ['qemu.config', (c) => c.qemu.config({ ...guest, current: true })],
  [
    'qemu.updateConfig',
    (c) => c.qemu.updateConfig({ ...guest, cores: 4, delete: 'net1,usb0', digest: 'a'.repeat(40) }),
  ],
  ['qemu.updateConfigAsync', (c) => c.qemu.updateConfigAsync({ ...guest, scsi1: 'local-lvm:16', background_delay: 5 })],
  ['qemu.destroy', (c) => c.qemu.destroy({ ...guest, purge: true, 'destroy-unreferenced-disks': true })],
  ['qemu.status', (c) => c.qemu.status(guest)],
  ['qemu.start', (c) => c.qemu.start({ ...guest, timeout: 60 })],
  ['qemu.stop', (c) => c.qemu.stop({ ...guest, timeout: 30 })],
  ['qemu.shutdown', (c) => c.qemu.shutdown({ ...guest, timeout: 120, forceStop: true })],
  ['qemu.reboot', (c) => c.qemu.reboot({ ...guest, timeout: 120 })],
  [
    'qemu.clone',
    (c) =>
      c.qemu.clone({ ...guest, newid: 1001, name: 'clone-1001', full: true, target: 'pve2', storage: 'local-lvm' }),
  ],
  ['qemu.template', (c) => c.qemu.template(guest)],
  ['qemu.resize', (c) => c.qemu.resize({ ...guest, disk: 'scsi0', size: '+10G' })],
  ['qemu.snapshots', (c) => c.qemu.snapshots(guest)],
  [
    'qemu.snapshot',
    (c) => c.qemu.snapshot({ ...guest, snapname: 'pre_change', description: 'before upgrade', vmstate: false }),
  ],
  ['qemu.deleteSnapshot', (c) => c.qemu.deleteSnapshot({ ...guest, snapname: 'pre_change' })],
  ['qemu.rollback', (c) => c.qemu.rollback({ ...guest, snapname: 'pre_change', start: true })],
  ['qemu.migratePreconditions', (c) => c.qemu.migratePreconditions({ ...guest, target: 'pve2' })],
  ['qemu.migrate', (c) => c.qemu.migrate({ ...guest, target: 'pve2', online: true, 'with-local-disks': true })],
  ['qemu.agentNetworkInterfaces', (c) => c.qemu.agentNetworkInterfaces(guest)],
  ['lxc.list', (c) => c.lxc.list({ node: 'pve1' })],
  [
    'lxc.create',
    (c) =>
      c.lxc.create({
        ...guest,
        ostemplate: 'local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst',
        hostname: 'ct101',
        cores: 1,
        memory: 512,
        swap: 512,
        rootfs: 'local-lvm:8',
        net0: 'name=eth0,bridge=vmbr0,ip=dhcp',
        unprivileged: true,
        start: true,
      }),
  ],
  ['lxc.config', (c) => c.lxc.config(guest)],
  ['lxc.updateConfig', (c) => c.lxc.updateConfig({ ...guest, memory: 1024, tags: 'db' })],
  ['lxc.destroy', (c) => c.lxc.destroy({ ...guest, purge: true, force: true })],
  ['lxc.status', (c) => c.lxc.status(guest)],
  ['lxc.start', (c) => c.lxc.start(guest)],
  ['lxc.stop', (c) => c.lxc.stop(guest)],
  ['lxc.shutdown', (c) => c.lxc.shutdown({ ...guest, timeout: 60, forceStop: true })],
  ['lxc.reboot', (c) => c.lxc.reboot({ ...guest, timeout: 60 })],
  ['lxc.snapshots', (c) => c.lxc.snapshots(guest)],
  ['lxc.snapshot', (c) => c.lxc.snapshot({ ...guest, snapname: 'pre_change' })],
  ['lxc.deleteSnapshot', (c) => c.lxc.deleteSnapshot({ ...guest, snapname: 'pre_change', force: true })],
  ['lxc.rollback', (c) => c.lxc.rollback({ ...guest, snapname: 'pre_change' })],
  ['lxc.migratePreconditions', (c) => c.lxc.migratePreconditions({ ...guest, target: 'pve2' })],
  ['lxc.migrate', (c) => c.lxc.migrate({ ...guest, target: 'pve2', restart: true, timeout: 180 })],
  ['storage.list', (c) => c.storage.list({ node: 'pve1', content: 'iso,images', enabled: true })],
  ['storage.content', (c) => c.storage.content({ node: 'pve1', storage: 'local', content: 'iso' })],
  [
    'storage.downloadUrl',
    (c) =>
      c.storage.downloadUrl({
        node: 'pve1',
        storage: 'local',
        url: 'https://example.org/talos-v1.11.iso',
        content: 'iso',
        filename: 'talos-v1.11.iso',
        checksum: 'ab'.repeat(32),
        'checksum-algorithm': 'sha256',
      }),
  ],
  [
    'storage.deleteVolume',
    (c) => c.storage.deleteVolume({ node: 'pve1', storage: 'local', volume: 'local:iso/talos-v1.11.iso' }),
  ],
  ['tasks.status', (c) => c.tasks.status({ node: 'pve1', upid })],
  ['tasks.log', (c) => c.tasks.log({ node: 'pve1', upid, start: 0, limit: 500 })],
  ['tasks.list', (c) => c.tasks.list({ node: 'pve1', vmid: 101, source: 'active', limit: 50 })],
  ['tasks.stop', (c) => c.tasks.stop({ node: 'pve1', upid })],
  ['access.permissions', (c) => c.access.permissions({ path: '/vms/101' })],
  ['cluster.tasks', (c) => c.cluster.tasks()],
  ['cluster.options', (c) => c.cluster.options()],
  ['cluster.pools', (c) => c.cluster.pools({ poolid: 'prod', type: 'qemu' })],
  ['cluster.storage', (c) => c.cluster.storage({ type: 'nfs' })],
  ['nodes.network', (c) => c.nodes.network({ node: 'pve1', type: 'any_bridge' })],
  ['nodes.time', (c) => c.nodes.time({ node: 'pve1' })],
  ['qemu.pending', (c) => c.qemu.pending(guest)],
  ['qemu.snapshotConfig', (c) => c.qemu.snapshotConfig({ ...guest, snapname: 'pre_change' })],
  ['lxc.snapshotConfig', (c) => c.lxc.snapshotConfig({ ...guest, snapname: 'pre_change' })],
  ['lxc.interfaces', (c) => c.lxc.interfaces(guest)],
  ['storage.status', (c) => c.storage.status({ node: 'pve1', storage: 'local' })],
];

describe.skipIf(!present)('requests the client builds', () => {
  it('covers every endpoint', async () => {
    const { client, sent } = recordingClient();
    for (const [, call] of samples) await call(client).catch(() => {});
    const covered = new Set(sent.map((r) => matchEndpoint(r.method, r.path)?.endpoint.name));
    expect([...covered].sort()).toEqual(all.map((e) => e.name).sort());
  });

  it.each(samples)('%s is accepted by the schema', async (_, call) => {
    const { client, sent } = recordingClient();
    await call(client).catch(() => {});
    const [req] = sent;
    expect(req).toBeDefined();
    const { endpoint, pathParams } = matchEndpoint(req!.method, req!.path)!;
    const values = { ...pathParams, ...Object.fromEntries(req!.form) };
    expect(validateAgainstSchema(schemaMethod(endpoint)!, values)).toEqual({});
  });
});
