/**
 * Cluster profiles: a whole Talos Kubernetes cluster as one YAML file in clusters/, so it can
 * be brought up and torn down as a unit. One zod schema; a bad profile fails with every
 * problem as `path: reason`.
 *
 * The defaults are the ones Talos needs on Proxmox: a CPU type of at least x86-64-v2 (Talos
 * does not boot on kvm64) and no memory hotplug (Talos does not online hotplugged memory).
 * The template must be built from the nocloud image: the metal image carries no guest agent,
 * and the agent is how DHCP addresses are found.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { formatIssues } from '../config/load.js';

/** A cluster name: part of VM names, tags and paths, so short, lowercase and DNS-safe. */
export const CLUSTER_NAME = /^[a-z0-9]([a-z0-9-]{0,22}[a-z0-9])?$/;
const clusterName = z
  .string()
  .regex(CLUSTER_NAME, 'must be a cluster name: lowercase letters, digits and dashes (at most 24)');

const pveTag = z.string().regex(/^[a-z0-9_][a-z0-9_\-+.]*$/i, 'must be a PVE tag (letters, digits, _ - + .)');
const ipv4 = z.string().refine((s) => isIP(s) === 4, 'must be an IPv4 address');
const host = z
  .string()
  .refine(
    (s) => isIP(s) !== 0 || /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]*[a-z0-9])?$/i.test(s),
    'must be an IP address or a DNS name',
  );

/** CPU types Talos boots on: x86-64-v2 and newer (or the host's own). */
export const TALOS_CPU_TYPES = ['x86-64-v2', 'x86-64-v2-AES', 'x86-64-v3', 'x86-64-v4', 'host', 'max'] as const;

const Size = (
  what: string,
  defaults: { cores: number; memory_mb: number; disk_gb: number },
  count: z.ZodType<number>,
) =>
  z.strictObject({
    count,
    cores: z.number().int().min(1).max(128).default(defaults.cores),
    memory_mb: z
      .number()
      .int()
      .min(1024, `a Talos ${what} needs at least 1024 MiB`)
      .max(1_048_576)
      .default(defaults.memory_mb),
    disk_gb: z.number().int().min(10, 'Talos needs a disk of at least 10 GiB').max(65_536).default(defaults.disk_gb),
  });

/** A Talos machine-config patch in strategic-merge form (a partial machine config). */
const ConfigPatch = z
  .record(z.string(), z.unknown())
  .refine((p) => Object.keys(p).length > 0, 'a patch cannot be empty');

const StaticAddresses = z.strictObject({
  /** Prefix length of the node network, e.g. 24. */
  prefix: z.number().int().min(8).max(30),
  gateway: ipv4,
  nameservers: z.array(ipv4).min(1).max(3),
  /** One address per control plane, in order. */
  control_plane: z.array(ipv4),
  /** One address per worker, in order. */
  workers: z.array(ipv4).default([]),
});

export const ClusterProfile = z
  .strictObject({
    name: clusterName,
    /** The environment (from the configuration) the cluster lives in. */
    environment: z.string().min(1),
    description: z.string().max(500).optional(),
    /** The Talos template to clone; its vmid *and* name are checked before anything is cloned. */
    template: z.strictObject({
      vmid: z.number().int().min(100).max(999_999_999),
      name: z.string().min(1),
    }),
    /** Storage for the clones' disks; the template's when absent. */
    storage: z
      .string()
      .regex(/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i, 'must be a PVE storage id')
      .optional(),
    control_plane: Size(
      'control plane',
      { cores: 2, memory_mb: 4096, disk_gb: 20 },
      z
        .number()
        .int()
        .min(1)
        .max(7)
        .refine((n) => n % 2 === 1, 'must be odd (etcd needs a majority to survive a failure)'),
    ),
    workers: Size('worker', { cores: 4, memory_mb: 8192, disk_gb: 40 }, z.number().int().min(0).max(64)).default({
      count: 0,
      cores: 4,
      memory_mb: 8192,
      disk_gb: 40,
    }),
    /** spread: control planes on distinct nodes, the rest where most memory stays free; pack: fill the roomiest node first. */
    placement: z.enum(['spread', 'pack']).default('spread'),
    vm: z
      .strictObject({
        cpu: z
          .enum(TALOS_CPU_TYPES, {
            error: `Talos needs a CPU type of x86-64-v2 or newer: one of ${TALOS_CPU_TYPES.join(', ')}`,
          })
          .default('x86-64-v2-AES'),
        hotplug: z
          .array(z.enum(['disk', 'network', 'usb', 'cpu', 'memory', 'cloudinit']))
          .default(['disk', 'network', 'usb'])
          .refine((h) => !h.includes('memory'), 'Talos does not support memory hotplug: leave out memory'),
      })
      .default({ cpu: 'x86-64-v2-AES', hotplug: ['disk', 'network', 'usb'] }),
    network: z
      .strictObject({
        /** Bridge of the VMs' NIC; the environment's defaults.network_bridge when absent. */
        bridge: z
          .string()
          .regex(/^[a-zA-Z][a-zA-Z0-9_.-]{0,14}$/, 'must be a bridge name such as vmbr0')
          .optional(),
        vlan: z.number().int().min(1).max(4094).optional(),
        addressing: z.enum(['dhcp', 'static']).default('dhcp'),
        static: StaticAddresses.optional(),
        /** Kubernetes API endpoint host (a VIP or DNS name); the first control plane's address when absent. */
        endpoint: host.optional(),
      })
      .default({ addressing: 'dhcp' }),
    /** Extra tags on every VM of the cluster (besides the cluster's own tag). */
    tags: z.array(pveTag).max(16).default([]),
    talos: z.strictObject({
      /** The Talos release of the template image, e.g. v1.11.3. */
      version: z.string().regex(/^v\d+\.\d+\.\d+$/, 'must be a Talos release such as v1.11.3'),
      kubernetes_version: z
        .string()
        .regex(/^\d+\.\d+\.\d+$/, 'must be a Kubernetes release such as 1.34.1')
        .optional(),
      /** Installer image (an Image Factory installer with the template's schematic); Talos's default when absent. */
      install_image: z.string().min(1).optional(),
      patches: z
        .strictObject({
          all: z.array(ConfigPatch).default([]),
          control_plane: z.array(ConfigPatch).default([]),
          worker: z.array(ConfigPatch).default([]),
        })
        .default({ all: [], control_plane: [], worker: [] }),
    }),
    /** Flux bootstrap after the cluster is healthy. */
    flux: z
      .strictObject({
        repository: z.string().regex(/^(https:\/\/|ssh:\/\/)\S+$/, 'must be an https:// or ssh:// Git URL'),
        path: z.string().min(1),
        branch: z.string().min(1).default('main'),
      })
      .optional(),
  })
  .superRefine((p, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    const { network } = p;
    if (network.addressing === 'static') {
      const addresses = network.static;
      if (!addresses) {
        issue(['network', 'static'], 'static addressing needs prefix, gateway, nameservers and one address per VM');
        return;
      }
      if (addresses.control_plane.length !== p.control_plane.count) {
        issue(
          ['network', 'static', 'control_plane'],
          `lists ${addresses.control_plane.length} addresses for ${p.control_plane.count} control planes`,
        );
      }
      if (addresses.workers.length !== p.workers.count) {
        issue(
          ['network', 'static', 'workers'],
          `lists ${addresses.workers.length} addresses for ${p.workers.count} workers`,
        );
      }
      const seen = new Set<string>();
      for (const [group, list] of [
        ['control_plane', addresses.control_plane],
        ['workers', addresses.workers],
      ] as const) {
        list.forEach((ip, i) => {
          if (seen.has(ip)) issue(['network', 'static', group, i], `${ip} is listed twice`);
          seen.add(ip);
          if (ip === addresses.gateway) issue(['network', 'static', group, i], `${ip} is the gateway`);
          if (!sameSubnet(ip, addresses.gateway, addresses.prefix)) {
            issue(['network', 'static', group, i], `${ip} is not in the gateway's /${addresses.prefix} network`);
          }
        });
      }
    } else if (network.static) {
      issue(['network', 'static'], 'only used with addressing: static');
    }
  });

export type ClusterProfile = z.output<typeof ClusterProfile>;

function ipv4Number(ip: string): number {
  return ip.split('.').reduce((n, octet) => n * 256 + Number(octet), 0);
}

function sameSubnet(a: string, b: string, prefix: number): boolean {
  const size = 2 ** (32 - prefix);
  return Math.floor(ipv4Number(a) / size) === Math.floor(ipv4Number(b) / size);
}

export class ProfileError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid cluster profile ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ProfileError';
  }
}

export class ProfileNotFoundError extends Error {
  constructor(name: string, known: string[]) {
    super(`no cluster profile '${name}' (available: ${known.join(', ') || 'none'})`);
    this.name = 'ProfileNotFoundError';
  }
}

/** Validates a parsed profile; `expectedName` is the file's name, which the profile must carry. */
export function parseClusterProfile(raw: unknown, source: string, expectedName?: string): ClusterProfile {
  const parsed = ClusterProfile.safeParse(raw);
  if (!parsed.success) throw new ProfileError(source, formatIssues(parsed.error.issues));
  if (expectedName !== undefined && parsed.data.name !== expectedName) {
    throw new ProfileError(source, [`name: is '${parsed.data.name}', but the file is named ${expectedName}.yaml`]);
  }
  return parsed.data;
}

/** `PM_CLUSTERS_DIR`, else the repository's clusters/. */
export function defaultClustersDir(): string {
  return process.env.PM_CLUSTERS_DIR ?? fileURLToPath(new URL('../../clusters/', import.meta.url));
}

export async function listClusterProfiles(dir: string): Promise<string[]> {
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return entries
    .filter((f) => f.endsWith('.yaml') && CLUSTER_NAME.test(f.slice(0, -5)))
    .map((f) => f.slice(0, -5))
    .sort();
}

export interface LoadedProfile {
  profile: ClusterProfile;
  path: string;
  /** SHA-256 of the file: the plan records it, and applying refuses a profile changed since. */
  sha256: string;
}

export async function loadClusterProfile(dir: string, name: string): Promise<LoadedProfile> {
  if (!CLUSTER_NAME.test(name)) throw new ProfileNotFoundError(name, await listClusterProfiles(dir));
  const path = join(dir, `${name}.yaml`);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new ProfileNotFoundError(name, await listClusterProfiles(dir));
    throw err;
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ProfileError(path, [`(yaml): ${(err as Error).message.split('\n')[0]}`]);
  }
  return {
    profile: parseClusterProfile(raw, path, name),
    path,
    sha256: createHash('sha256').update(text).digest('hex'),
  };
}
