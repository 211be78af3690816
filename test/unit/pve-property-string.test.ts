/**
 * Property strings as pve-common reads them (parse_property_string + check_object), and the
 * client refusing a request PVE would refuse before anything is sent.
 */
import { describe, expect, it } from 'vitest';
import { buildRequest } from '../../lib/pve/endpoint.js';
import { InvalidRequestError } from '../../lib/pve/errors.js';
import { endpoints } from '../../lib/pve/registry.js';
import * as lxc from '../../lib/pve/lxc/formats.js';
import * as qemu from '../../lib/pve/qemu/formats.js';
import { checkFormat } from '../../lib/pve/params.js';
import { printPropertyString, PropertyStringSyntaxError, splitPropertyString } from '../../lib/pve/property-string.js';

describe('splitPropertyString', () => {
  it('reads a bare value as the default key', () => {
    expect(splitPropertyString(qemu.memory, '2048')).toEqual({ current: '2048' });
    expect(splitPropertyString(qemu.scsi, 'local-lvm:32,iothread=1')).toEqual({ file: 'local-lvm:32', iothread: '1' });
  });

  it('resolves aliases, and key aliases that also name a value', () => {
    expect(splitPropertyString(qemu.scsi, 'volume=local-lvm:vm-101-disk-0')).toEqual({
      file: 'local-lvm:vm-101-disk-0',
    });
    expect(splitPropertyString(qemu.net, 'virtio=BC:24:11:00:00:01,bridge=vmbr0')).toEqual({
      model: 'virtio',
      macaddr: 'BC:24:11:00:00:01',
      bridge: 'vmbr0',
    });
    expect(splitPropertyString(qemu.agent, '1,freeze-fs-on-backup=0')).toEqual({ enabled: '1', 'freeze-fs': '0' });
  });

  it('reads booleans spelled 1/on/yes/true and 0/off/no/false, and leaves other values for the type check', () => {
    expect(splitPropertyString(qemu.net, 'virtio,firewall=on,link_down=No')).toMatchObject({
      firewall: '1',
      link_down: '0',
    });
    expect(splitPropertyString(qemu.net, 'virtio,firewall=maybe')).toMatchObject({ firewall: 'maybe' });
  });

  it.each([
    [qemu.net, 'virtio,colour=red', 'invalid key in comma-separated list property: colour'],
    [qemu.net, 'virtio,bridge=a,bridge=b', 'duplicate key in comma-separated list property: bridge'],
    [qemu.net, 'virtio,e1000', 'duplicate key in comma-separated list property: model'],
    [qemu.net, 'virtio=BC:24:11:00:00:01,e1000=BC:24:11:00:00:02', "key alias 'model' is already defined"],
    [qemu.ipconfig, 'dhcp', 'value without key, but schema does not define a default key'],
    [qemu.net, 'virtio,=x', 'missing key in comma-separated list property'],
  ])('refuses %#: %s', (format, value, message) => {
    expect(() => splitPropertyString(format, value)).toThrow(new PropertyStringSyntaxError(message));
  });
});

describe('printPropertyString', () => {
  it('writes the default key bare and first, then the other keys in order', () => {
    expect(printPropertyString(lxc.rootfs, { size: '8G', volume: 'local-lvm:vm-200-disk-0', acl: true })).toBe(
      'local-lvm:vm-200-disk-0,acl=1,size=8G',
    );
  });

  it('writes a VM NIC as <model>=<mac> first, as qemu-server does', () => {
    expect(qemu.printNet({ bridge: 'vmbr0', model: 'virtio', macaddr: 'BC:24:11:00:00:01', tag: '10' })).toBe(
      'virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=10',
    );
  });
});

describe('checkFormat', () => {
  it("names each bad key under the parameter, one line per key, in PVE's words", () => {
    expect(checkFormat(qemu.net, 'rtl8139,mtu=0,tag=5000,macaddr=zz', 'net3')).toBe(
      [
        'format error',
        'net3.macaddr: invalid format - value does not look like a valid unicast MAC address',
        'net3.mtu: value must have a minimum value of 1',
        'net3.tag: value must have a maximum value of 4094',
      ].join('\n'),
    );
  });

  it('checks named formats that are property strings (pve-qm-ipconfig) and lists (pve-tag-list)', () => {
    expect(checkFormat('pve-qm-ipconfig', 'ip=10.0.0.5/24,gw=10.0.0.1', 'ipconfig0')).toBeUndefined();
    expect(checkFormat('pve-qm-ipconfig', 'ip6=auto', 'ipconfig0')).toBeUndefined();
    expect(checkFormat('pve-qm-ipconfig', 'ip=10.0.0.300/24', 'ipconfig0')).toBe(
      'format error\nipconfig0.ip: invalid format - value does not look like a valid ipv4 network configuration',
    );
    expect(checkFormat('pve-tag-list', 'web;prod db', 'tags')).toBeUndefined();
    expect(checkFormat('pve-tag-list', 'web;-bad', 'tags')).toBe('invalid characters in tag');
  });

  it('requires the keys a format does not mark optional', () => {
    expect(checkFormat(lxc.net, 'bridge=vmbr0,ip=dhcp', 'net0')).toBe(
      'format error\nnet0.name: property is missing and it is not optional',
    );
    expect(checkFormat(lxc.mp, 'local-lvm:8', 'mp0')).toBe(
      'format error\nmp0.mp: property is missing and it is not optional',
    );
  });

  it('reads patterns written in Perl syntax ({,16} is {0,16})', () => {
    expect(checkFormat(qemu.scsi, 'local-lvm:32,product=QEMU HARDDISK', 'scsi0')).toBeUndefined();
    expect(checkFormat(qemu.scsi, 'local-lvm:32,product=seventeen-chars-x', 'scsi0')).toBe(
      'format error\nscsi0.product: value does not match the regex pattern',
    );
  });
});

describe('the client refuses what PVE would refuse, before sending', () => {
  it.each([
    ['qemuCreate', { node: 'pve1', vmid: 300, memory: 'abc' }, 'memory'],
    ['qemuUpdateConfig', { node: 'pve1', vmid: 101, net0: 'bogus' }, 'net0'],
    ['qemuUpdateConfig', { node: 'pve1', vmid: 101, efidisk0: 'local-lvm:1,efitype=5m' }, 'efidisk0'],
    ['lxcUpdateConfig', { node: 'pve1', vmid: 200, features: 'nesting=2' }, 'features'],
  ] as const)('%s with %j names %s', (name, params, field) => {
    let error: unknown;
    try {
      buildRequest(endpoints[name], params as never);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(InvalidRequestError);
    expect(Object.keys((error as InvalidRequestError).errors)).toEqual([field]);
    expect((error as InvalidRequestError).message).toContain(`${field}: invalid format - `);
  });
});
