/**
 * The one schema for proxmox-manager's configuration.
 *
 * An environment is a Proxmox cluster described in the `cluster-config.yaml` format the
 * operators already use (cluster, defaults, vmid_ranges, credentials, tags, cloudinit,
 * ansible), extended with what a durable orchestrator needs to reach it safely (TLS
 * pinning, SSH host keys, API port) and the safety policy it enforces.
 */
import { z } from 'zod';
import * as qemuFormats from '../pve/qemu/formats.js';
import { pve } from '../pve/params.js';
import { BACKUP_BEFORE } from '../backup/before.js';

export const durationPattern = /^(\d+)(ms|s|m|h|d)$/;
export const Duration = z.string().regex(durationPattern, 'must be a duration such as 30s, 15m, 24h or 7d');

/** Where a secret lives. Secrets are resolved only inside the worker (lib/config/secrets.ts). */
export const SecretRef = z.union([
  z.strictObject({ env: z.string().min(1).describe('environment variable holding the secret') }),
  z.strictObject({ file: z.string().min(1).describe('file holding the secret') }),
  z.strictObject({ pass: z.string().min(1).describe('`pass` entry holding the secret') }),
]);
export type SecretRef = z.infer<typeof SecretRef>;

const sha256Fingerprint = z
  .string()
  .regex(
    /^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/,
    'must be a SHA-256 fingerprint as PVE shows it (32 hex pairs separated by colons)',
  );
const sshHostKey = z
  .string()
  .regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, 'must be an OpenSSH SHA256 host-key fingerprint (SHA256:...)');

export const NodeConfig = z.object({
  name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9-]*$/, 'must be a PVE node name'),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(8006),
  ssh_port: z.number().int().min(1).max(65535).default(22),
  /** Pinned SSH host key of this node; SSH to a node without one is refused. */
  ssh_host_key: sshHostKey.optional(),
  /**
   * SHA-256 fingerprint of this node's own API certificate (its `pve-ssl.pem`: every PVE node
   * has a different one). Takes precedence over `tls.fingerprint`.
   */
  tls_fingerprint: sha256Fingerprint.optional(),
});
export type NodeConfig = z.infer<typeof NodeConfig>;

const VmidRange = z
  .string()
  .regex(/^\d+-\d+$/, 'must be a range such as 1000-9999')
  .transform((s) => {
    const [min, max] = s.split('-').map(Number) as [number, number];
    return { min, max };
  })
  .refine((r) => r.min >= 100 && r.max <= 999_999_999 && r.min <= r.max, {
    message: 'must lie within 100-999999999 with the lower bound first',
  });
export type VmidRange = { min: number; max: number };

export const VmDefaults = z.object({
  storage: pve.storageId().default('local-lvm'),
  network_bridge: pve.string({ format: 'pve-bridge-id' }).default('vmbr0'),
  bios: z.enum(['seabios', 'ovmf']).default('ovmf'),
  machine: pve.string({ format: qemuFormats.machine }).default('q35'),
  cpu: pve.string({ format: 'pve-vm-cpu-conf' }).default('host'),
  scsi_controller: z
    .enum(['lsi', 'lsi53c810', 'virtio-scsi-pci', 'virtio-scsi-single', 'megasas', 'pvscsi'])
    .default('virtio-scsi-single'),
  efidisk_pre_enrolled_keys: z.boolean().default(false),
  guest_agent: z.boolean().default(true),
  cores: z.number().int().min(1).default(2),
  memory_mb: z.number().int().min(16).default(2048),
  disk_gb: z.number().int().min(1).default(32),
});
export type VmDefaults = z.infer<typeof VmDefaults>;

export const Tls = z.object({
  /** PEM file of the cluster CA (`/etc/pve/pve-root-ca.pem`), which signed every node's certificate. */
  ca_file: z.string().optional(),
  /**
   * SHA-256 fingerprint of one certificate all nodes present: a single-node install, or a
   * cluster serving one custom certificate. Nodes of a cluster pin `tls_fingerprint` each.
   */
  fingerprint: sha256Fingerprint.optional(),
  /** Skip verification entirely. Loud, explicit, never a default. */
  insecure: z.boolean().default(false),
});
export type Tls = z.infer<typeof Tls>;

export const SafetyPolicy = z
  .object({
    /** Fraction of a target node's memory that must stay free after any placement. */
    memory_headroom: z.number().min(0).max(0.9).default(0.2),
    /**
     * What a target already holds, when placing guests: `configured` counts the configured memory
     * of its running guests (as PVE's static CRS does, and as arrivals are counted); `used`
     * counts what the node reports in use, which lets guests that use little be overcommitted.
     */
    memory_basis: z.enum(['configured', 'used']).default('configured'),
    /** Allowed ratio of assigned vCPUs to physical cores on a target node. */
    cpu_oversubscription: z.number().min(0.5).max(64).default(4),
    /** Snapshot a guest before config changes and rollbacks. */
    snapshot_before_change: z.boolean().default(true),
    /** Plans that back the guest up (vzdump to `backup_storage`) before their destructive step. */
    backup_before: z.array(z.enum(BACKUP_BEFORE)).default([]),
    /** The storage (content `backup`) those backups go to. */
    backup_storage: z
      .string()
      .regex(/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i, 'must be a PVE storage id')
      .optional(),
  })
  .refine((p) => p.backup_before.length === 0 || p.backup_storage !== undefined, {
    message: 'backup_before needs backup_storage',
    path: ['backup_storage'],
  });
export type SafetyPolicy = z.infer<typeof SafetyPolicy>;

/**
 * A restore drill every `every`, of the guests `vmid` or `tags` selects (exactly one), run as
 * a `restore-drill` operation the worker's Temporal Schedule starts.
 */
export const DrillSchedule = z
  .strictObject({
    every: Duration,
    vmid: z.number().int().min(100).max(999_999_999).optional(),
    tags: z.string().min(1).optional(),
    bridge: z
      .string()
      .regex(/^vmbr\d{1,4}$/, 'must be a Linux bridge name such as vmbr99')
      .default('vmbr99'),
    agent_timeout_seconds: z.number().int().min(10).max(3600).default(300),
    max_parallel: z.number().int().min(1).max(8).default(2),
  })
  .refine((d) => (d.vmid === undefined) !== (d.tags === undefined), {
    message: 'name exactly one of vmid or tags',
    path: ['vmid'],
  });
export type DrillSchedule = z.infer<typeof DrillSchedule>;

/** Where the nodes may download from (ISO imports, template images) without a person approving. */
export const DownloadPolicy = z.object({
  /**
   * Hosts (`releases.ubuntu.com`, `*.debian.org`) or URL prefixes (`https://mirror.lan/iso/`);
   * when absent, any public host. Loopback, link-local and private addresses are inside only
   * when an entry names them.
   */
  allow: z.array(z.string().min(1)).optional(),
  /** Whether a URL may carry `user:password@` and still be approved by policy. */
  credentials_in_urls: z.boolean().default(false),
});
export type DownloadPolicy = z.infer<typeof DownloadPolicy>;

/** An environment: the seed `cluster-config.yaml` format plus the orchestrator's extensions. */
export const EnvironmentConfig = z
  .object({
    cluster: z.object({
      name: z.string().min(1),
      nodes: z.array(NodeConfig).min(1, 'a cluster needs at least one node'),
    }),
    defaults: VmDefaults.default(VmDefaults.parse({})),
    vmid_ranges: z
      .object({ templates: VmidRange, vms: VmidRange })
      .default({ templates: { min: 100, max: 999 }, vms: { min: 1000, max: 9999 } }),
    credentials: z
      .object({
        /** The seeds' `pass` entry: line 1 token id, line 2 secret. */
        pass_path: z.string().optional(),
        /** API token as `user@realm!tokenid=secret`, or the two-line `pass` format. */
        token: SecretRef.optional(),
        ssh_user: z.string().default('root'),
        ssh_key: SecretRef.optional(),
      })
      .refine((c) => c.pass_path || c.token, { message: 'set token (env, file or pass) or pass_path' }),
    tls: Tls.default({ insecure: false }),
    tags: z.record(z.string(), z.array(z.string())).default({}),
    naming: z
      .object({ pattern: z.string().default('auto-{service}-{vmid}') })
      .default({ pattern: 'auto-{service}-{vmid}' }),
    policy: SafetyPolicy.default(SafetyPolicy.parse({})),
    /** Restore drills on a schedule (docs/backups.md); none when absent. */
    backups: z.object({ drill_schedule: DrillSchedule.optional() }).default({}),
    downloads: DownloadPolicy.default({ credentials_in_urls: false }),
    cloudinit: z
      .object({
        default_user: z.string().optional(),
        ssh_keys_source: z.string().optional(),
        vendor_snippet_path: z.string().optional(),
      })
      .optional(),
    ansible: z.object({ fleet_infra_path: z.string(), inventory: z.string() }).optional(),
    /** PXE infrastructure for stateful installs. */
    pxe: z
      .object({
        tftp_server: z.string(),
        boot_file: z.string().default('pxelinux.0'),
        /** The live image's SSH host key (`SHA256:...`), pinned for install sessions whose request names none. */
        live_image_host_key: z
          .string()
          .regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, 'must be an OpenSSH SHA256 host-key fingerprint (SHA256:...)')
          .optional(),
      })
      .optional(),
  })
  .refine(
    (env) =>
      env.tls.insecure ||
      env.tls.ca_file ||
      env.tls.fingerprint ||
      (env.cluster.nodes.length > 0 && env.cluster.nodes.every((n) => n?.tls_fingerprint)),
    {
      path: ['tls'],
      message: 'set ca_file or fingerprint, or tls_fingerprint on every node (or, knowingly, insecure: true)',
      // Reported beside other problems in the environment (every problem at once), whenever the
      // TLS settings and the node list could be read.
      when: ({ value }) => {
        const env = value as { tls?: unknown; cluster?: { nodes?: unknown } } | undefined;
        return typeof env?.tls === 'object' && env.tls !== null && Array.isArray(env.cluster?.nodes);
      },
    },
  );
export type EnvironmentConfig = z.infer<typeof EnvironmentConfig>;

export const Role = z.enum(['viewer', 'operator', 'approver', 'admin', 'agent']);
export type Role = z.infer<typeof Role>;

export const ApiToken = z.object({
  actor: z.string().regex(/^[a-zA-Z0-9._@-]+$/, 'must be a plain actor name'),
  /** SHA-256 (hex) of the bearer token; the token itself is never stored. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex SHA-256'),
  roles: z.array(Role).min(1),
  /** Environments this actor may touch; all when absent. */
  environments: z.array(z.string()).optional(),
});
export type ApiToken = z.infer<typeof ApiToken>;

export const Risk = z.enum(['low', 'medium', 'high']);
export type Risk = z.infer<typeof Risk>;

const TemporalTls = z
  .strictObject({
    /** CA that signed the frontend's certificate; the system's CAs when absent. */
    ca_file: z.string().min(1).optional(),
    cert_file: z.string().min(1).optional(),
    key_file: z.string().min(1).optional(),
    server_name: z.string().min(1).optional(),
  })
  .refine((t) => (t.cert_file === undefined) === (t.key_file === undefined), {
    message: 'cert_file and key_file go together (mutual TLS), or neither',
  });

/**
 * A Discord application's interactions endpoint (POST /v1/discord/interactions). Discord
 * users act through API tokens of their own, so the API's roles and approvals apply to them.
 */
export const DiscordConfig = z.object({
  /** The application's Ed25519 public key (hex), as the developer portal shows it. */
  public_key: z.string().regex(/^[0-9a-fA-F]{64}$/, 'must be the 64-hex-digit public key of the Discord application'),
  application_id: z.string().regex(/^\d+$/, 'must be a Discord application id (digits)'),
  /** The environment whose VMs the slash commands act on. */
  environment: z.string().min(1),
  /** Where follow-up messages go; tests point it at a local receiver. */
  api_base: z.string().url().default('https://discord.com/api/v10'),
  /** Requests signed longer ago than this are refused as replays. */
  max_age: Duration.default('5m'),
  /** Discord user id -> the API token that user acts with (its actor and roles). */
  users: z
    .record(z.string().regex(/^\d+$/, 'Discord user ids are digits'), z.strictObject({ token: SecretRef }))
    .default({}),
});
export type DiscordConfig = z.infer<typeof DiscordConfig>;

export const AppConfig = z
  .object({
    temporal: z
      .object({
        address: z.string().default('127.0.0.1:7233'),
        namespace: z.string().default('default'),
        task_queue: z.string().default('proxmox-manager'),
        ui_url: z.string().url().default('http://127.0.0.1:8233'),
        /** TLS to the Temporal frontend; with cert_file and key_file, mutual TLS (the identity the namespace authorizer sees). */
        tls: TemporalTls.optional(),
        /** Activities one worker process runs at once (PVE calls, SSH sessions, task waits). */
        max_concurrent_activities: z.number().int().min(1).max(10_000).default(100),
      })
      .default({
        address: '127.0.0.1:7233',
        namespace: 'default',
        task_queue: 'proxmox-manager',
        ui_url: 'http://127.0.0.1:8233',
        max_concurrent_activities: 100,
      }),
    api: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        max_body_bytes: z
          .number()
          .int()
          .min(1024)
          .default(1024 * 1024),
        tokens: z.array(ApiToken).default([]),
        /** How old the shared inventory snapshot GET /v1/inventory answers from may be. */
        inventory_max_age: Duration.default('2s'),
      })
      .default({ host: '127.0.0.1', port: 8080, max_body_bytes: 1024 * 1024, tokens: [], inventory_max_age: '2s' }),
    approvals: z
      .object({
        timeout: Duration.default('24h'),
        /** Risk levels a policy may approve without a person; high never is. */
        auto_approve: z.array(z.enum(['low', 'medium'])).default(['low']),
        /** The key the API signs decisions with and the worker checks them with (HMAC-SHA256); only those two processes read it. */
        signing_key: SecretRef.default({ env: 'PM_APPROVAL_SIGNING_KEY' }),
      })
      .default({ timeout: '24h', auto_approve: ['low'], signing_key: { env: 'PM_APPROVAL_SIGNING_KEY' } }),
    audit: z.object({ path: z.string().default('data/audit.log') }).default({ path: 'data/audit.log' }),
    /** Desired state: the fleet manifests and how often drift is checked against them. */
    manifests: z
      .object({
        path: z.string().default('manifests'),
        /** Off when absent: no drift schedule is created. */
        drift_interval: Duration.optional(),
        drift_dir: z.string().default('data/drift'),
      })
      .default({ path: 'manifests', drift_dir: 'data/drift' }),
    /** Backups: where the restore drills' history is kept (written by the worker, read by the API). */
    backups: z.object({ drill_dir: z.string().default('data/drills') }).default({ drill_dir: 'data/drills' }),
    /** Where the worker writes secrets it produces (kubeconfigs, talosconfigs). */
    secrets_dir: z.string().default('data/secrets'),
    /** The talosctl binary cluster-up runs; `PM_TALOSCTL` or `talosctl` on PATH when absent. */
    talosctl: z
      .object({
        binary: z.string().min(1),
        /** Added to the binary's environment (settings only: it is written in this file). */
        env: z.record(z.string(), z.string()).default({}),
      })
      .optional(),
    discord: DiscordConfig.optional(),
    environments: z
      .record(z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'environment names are lowercase words'), EnvironmentConfig)
      .refine((e) => Object.keys(e).length > 0, { message: 'define at least one environment' }),
  })
  .superRefine((config, ctx) => {
    if (config.discord && !(config.discord.environment in config.environments)) {
      ctx.addIssue({
        code: 'custom',
        path: ['discord', 'environment'],
        message: `names unknown environment '${config.discord.environment}'`,
      });
    }
    for (const [i, token] of config.api.tokens.entries()) {
      for (const env of token.environments ?? []) {
        if (!(env in config.environments)) {
          ctx.addIssue({
            code: 'custom',
            path: ['api', 'tokens', i, 'environments'],
            message: `names unknown environment '${env}'`,
          });
        }
      }
    }
  });
export type AppConfig = z.infer<typeof AppConfig>;
