/**
 * The cluster conventions a runbook parameter can take its value from: the environment's
 * `defaults`, `tags`, `cloudinit`, `pxe` and cluster name, as written in cluster-config.yaml.
 * A parameter says `convention: defaults.storage`; the operator's own value still wins.
 */
import type { EnvironmentConfig } from '../config/schema.js';
import type { Value } from './placeholders.js';

/** What kind of value a convention holds, to match it with a parameter's type. */
export type ConventionKind = 'string' | 'integer' | 'boolean' | 'tags' | 'file';

interface ConventionDef {
  kind: ConventionKind;
  read: (env: EnvironmentConfig) => Value | readonly string[] | undefined;
}

const fixed: Record<string, ConventionDef> = {
  'cluster.name': { kind: 'string', read: (e) => e.cluster.name },
  'defaults.storage': { kind: 'string', read: (e) => e.defaults.storage },
  'defaults.network_bridge': { kind: 'string', read: (e) => e.defaults.network_bridge },
  'defaults.bios': { kind: 'string', read: (e) => e.defaults.bios },
  'defaults.machine': { kind: 'string', read: (e) => e.defaults.machine },
  'defaults.cpu': { kind: 'string', read: (e) => e.defaults.cpu },
  'defaults.scsi_controller': { kind: 'string', read: (e) => e.defaults.scsi_controller },
  'defaults.efidisk_pre_enrolled_keys': { kind: 'boolean', read: (e) => e.defaults.efidisk_pre_enrolled_keys },
  'defaults.guest_agent': { kind: 'boolean', read: (e) => e.defaults.guest_agent },
  'defaults.cores': { kind: 'integer', read: (e) => e.defaults.cores },
  'defaults.memory_mb': { kind: 'integer', read: (e) => e.defaults.memory_mb },
  'defaults.disk_gb': { kind: 'integer', read: (e) => e.defaults.disk_gb },
  'cloudinit.default_user': { kind: 'string', read: (e) => e.cloudinit?.default_user },
  /** A path on the worker's host; the parameter's value is the file's content. */
  'cloudinit.ssh_keys_source': { kind: 'file', read: (e) => e.cloudinit?.ssh_keys_source },
  'cloudinit.vendor_snippet_path': { kind: 'string', read: (e) => e.cloudinit?.vendor_snippet_path },
  'pxe.tftp_server': { kind: 'string', read: (e) => e.pxe?.tftp_server },
  'pxe.boot_file': { kind: 'string', read: (e) => e.pxe?.boot_file },
};

const TAG_GROUP = /^tags\.([a-z0-9_-]+)$/;

export function conventionDef(name: string): ConventionDef | undefined {
  const def = fixed[name];
  if (def) return def;
  const group = TAG_GROUP.exec(name)?.[1];
  return group === undefined ? undefined : { kind: 'tags', read: (e) => e.tags[group] };
}

export function knownConventions(): string[] {
  return [...Object.keys(fixed), 'tags.<group>'];
}

/** The convention's value in an environment; undefined when the environment does not set it. */
export function conventionValue(name: string, env: EnvironmentConfig): Value | readonly string[] | undefined {
  return conventionDef(name)?.read(env);
}
