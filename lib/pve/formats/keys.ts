/**
 * Builders for property-string keys, so format definitions read like PVE's: keys are optional
 * unless a definition says `optional: false`.
 */
import type { PropertyAlias, PropertyKey } from '../property-string.js';

type Extra = Omit<PropertyKey, 'type' | 'enum'>;

export const key = {
  boolean: (extra: Extra = {}): PropertyKey => ({ type: 'boolean', optional: true, ...extra }),
  integer: (extra: Extra = {}): PropertyKey => ({ type: 'integer', optional: true, ...extra }),
  number: (extra: Extra = {}): PropertyKey => ({ type: 'number', optional: true, ...extra }),
  string: (extra: Extra = {}): PropertyKey => ({ type: 'string', optional: true, ...extra }),
  enum: (values: readonly string[], extra: Extra = {}): PropertyKey => ({
    type: 'string',
    enum: values,
    optional: true,
    ...extra,
  }),
  alias: (alias: string, keyAlias?: string): PropertyAlias => (keyAlias ? { alias, keyAlias } : { alias }),
};

/** `1;3-5`: CPU or VLAN id lists. */
export const ID_RANGE_LIST = '(?^:\\d+(?:-\\d+)?(?:;\\d+(?:-\\d+)?)*)';

/** Volume keys shared by every disk: `file` as the default key, `volume` its alias, `size` informational. */
export const volumeKeys = (format = 'pve-volume-id-or-qm-path') => ({
  file: key.string({ default_key: true, optional: false, format }),
  volume: key.alias('file'),
});

export const diskSize = () => key.string({ format: 'disk-size' });

/** Keys every NIC has, VM or container. */
export const nicKeys = () => ({
  firewall: key.boolean(),
  link_down: key.boolean(),
  tag: key.integer({ minimum: 1, maximum: 4094 }),
});

/** rootfs/mpN and qemu drives alike: replication and shared-storage flags. */
export const replicationKeys = () => ({
  replicate: key.boolean(),
  shared: key.boolean(),
  size: diskSize(),
});
