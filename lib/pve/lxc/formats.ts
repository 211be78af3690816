/**
 * The property strings of a container's configuration (pve-container), as PVE 9.1 defines
 * them. test/unit/pve-schema-crosscheck.test.ts holds each against the official schema.
 */
import type { PropertyFormat } from '../property-string.js';
import { key, nicKeys, replicationKeys } from '../formats/keys.js';

const MOUNT_OPTION = '(?^:(discard|lazytime|noatime|nodev|noexec|nosuid))';

/** What the root filesystem and every mount point share. */
const mountKeys = () => ({
  volume: key.string({ default_key: true, optional: false, format: 'pve-lxc-mp-string' }),
  ...replicationKeys(),
  acl: key.boolean(),
  mountoptions: key.string({ pattern: `(?^:${MOUNT_OPTION}(;${MOUNT_OPTION})*)` }),
  quota: key.boolean(),
  ro: key.boolean(),
});

export const rootfs: PropertyFormat = mountKeys();

export const mp: PropertyFormat = {
  ...mountKeys(),
  mp: key.string({ optional: false, format: 'pve-lxc-mp-string' }),
  backup: key.boolean(),
  keepattrs: key.boolean(),
};

export const net: PropertyFormat = {
  name: key.string({ optional: false, pattern: '[-_.\\w\\d]+' }),
  bridge: key.string({ pattern: '[-_.\\w\\d]+' }),
  hwaddr: key.string({ format: 'mac-addr' }),
  ip: key.string({ format: 'pve-ipv4-config' }),
  gw: key.string({ format: 'ipv4' }),
  ip6: key.string({ format: 'pve-ipv6-config' }),
  gw6: key.string({ format: 'ipv6' }),
  ...nicKeys(),
  'host-managed': key.boolean(),
  mtu: key.integer({ minimum: 64, maximum: 65535 }),
  rate: key.number(),
  trunks: key.string({ pattern: '(?^:\\d+(?:;\\d+)*)' }),
  type: key.enum(['veth']),
};

export const features: PropertyFormat = {
  force_rw_sys: key.boolean(),
  fuse: key.boolean(),
  keyctl: key.boolean(),
  mknod: key.boolean(),
  mount: key.string({ pattern: '(?^:[a-zA-Z0-9_; ]+)' }),
  nesting: key.boolean(),
};

export const dev: PropertyFormat = {
  path: key.string({ default_key: true, format: 'pve-lxc-dev-string' }),
  'deny-write': key.boolean(),
  gid: key.integer({ minimum: 0 }),
  mode: key.string({ pattern: '0[0-7]{3}' }),
  uid: key.integer({ minimum: 0 }),
};

export const unused: PropertyFormat = {
  volume: key.string({ default_key: true, optional: false, format: 'pve-volume-id' }),
};
