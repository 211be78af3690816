/**
 * Every operation the orchestrator can run: its request body (validated at the API edge),
 * the workflow that runs it, and how its workflow ID is formed. The API and the worker
 * both read this list; adding a kind is one entry here plus the checklist in
 * docs/architecture.md, which test/unit/operation-registration.test.ts enforces.
 */
import { z } from 'zod';
import type { OperationMeta } from './plan.js';
import type { EvacuationRequest } from '../planning/evacuation.js';
import { SERVICE_PATTERN } from '../lifecycle/naming.js';
import { TAG_EXPRESSION_LIMITS, tagExpressionProblem } from '../lifecycle/tag-expression.js';
import { DEFAULT_UPGRADE_COMMAND } from '../maintenance/upgrade.js';
import { clusterUpOperationPrefix } from '../clusters/identity.js';
import { CLUSTER_NAME } from '../clusters/profile.js';
import { parseRunbookMarkdown, RunbookError } from '../runbooks/markdown.js';

const vmid = z.number().int().min(100).max(999_999_999);
// A node name is a host name label (pve-node): at most 63 characters, as PVE's own format says.
const nodeName = z
  .string()
  .max(63)
  .regex(/^[a-zA-Z0-9][a-zA-Z0-9-]*$/, 'must be a PVE node name');

/** Fields every operation request may carry besides its own. */
const common = {
  environment: z.string().min(1),
  dryRun: z.boolean().default(false),
};

export interface OperationKind<S extends z.ZodType = z.ZodType> {
  kind: string;
  /** Exported name of the workflow function in workflows/index.ts: the camelCase of the kind, or of the kind whose workflow it shares. */
  workflowType: string;
  /** The page under docs/ that explains the kind to an operator. */
  docs: string;
  description: string;
  body: S;
  /** Readable, unique workflow ID; `at` is the request time (compact ISO). */
  workflowId: (body: z.infer<S>, at: string) => string;
  /** Nodes the request names, for listing operations by node before a plan exists. */
  nodes?: (body: z.infer<S>) => string[];
}

function defineOperation<S extends z.ZodType>(op: OperationKind<S>): OperationKind<S> {
  return op;
}

export const inventoryOperation = defineOperation({
  kind: 'inventory',
  workflowType: 'inventory',
  docs: 'api.md',
  description: 'Read every node, VM and container of an environment (read-only).',
  body: z.strictObject({ ...common }),
  workflowId: (b, at) => `inventory/${b.environment}/${at}`,
});

export const vmActionOperation = defineOperation({
  kind: 'vm-action',
  workflowType: 'vmAction',
  docs: 'operations.md',
  description: 'Start, stop, shut down, reboot, snapshot, roll back, migrate or delete one VM.',
  body: z.strictObject({
    ...common,
    vmid,
    /** The VM's name as the operator knows it: checked against PVE before anything happens. */
    name: z.string().min(1),
    action: z.enum(['start', 'stop', 'shutdown', 'reboot', 'snapshot', 'rollback', 'migrate', 'delete']),
    snapshot: z
      .string()
      .regex(/^[a-zA-Z][a-zA-Z0-9_-]{1,39}$/, 'must be a PVE snapshot name')
      .optional(),
    target: nodeName.optional(),
    shutdownTimeoutSeconds: z.number().int().min(1).max(3600).default(120),
    forceStopAfterTimeout: z.boolean().default(false),
  }),
  workflowId: (b, at) => `vm-action/${b.environment}/${b.vmid}/${b.action}/${at}`,
});

export const evacuationOperation = defineOperation({
  kind: 'evacuation',
  workflowType: 'evacuation',
  docs: 'evacuation.md',
  description:
    'Empty a node before maintenance: place its guests on other nodes, approve the plan, migrate in parallel, verify.',
  body: z.strictObject({
    ...common,
    node: nodeName,
    allowTargets: z.array(nodeName).min(1).optional(),
    denyTargets: z.array(nodeName).optional(),
    maxParallel: z.number().int().min(1).max(32).default(4),
    maxParallelPerTarget: z.number().int().min(1).max(16).default(2),
    bwlimitMiBps: z.number().int().min(1).max(1_000_000).optional(),
    includeStopped: z.boolean().default(true),
    includeTemplates: z.boolean().default(false),
    localDisks: z.enum(['migrate', 'leave']).default('migrate'),
    targetStorage: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9\-_.]*[A-Za-z0-9]$/, 'must be a PVE storage id')
      .optional(),
    containers: z.enum(['restart', 'leave']).default('leave'),
    containerShutdownTimeoutSeconds: z.number().int().min(1).max(3600).default(180),
    onFailure: z.enum(['stop', 'continue']).default('stop'),
    haMaintenance: z.boolean().default(false),
    linkGbps: z.number().positive().max(800).default(10),
  }) satisfies z.ZodType<EvacuationRequest>,
  workflowId: (b, at) => `evacuate/${b.environment}/${b.node}/${at}`,
  nodes: (b) => [b.node],
});

// Guest lifecycle: create, clone, resize, bulk actions by tag, container patching, ISOs,
// storage clean-up and stateful PXE installs.

const storageId = z.string().regex(/^[A-Za-z][A-Za-z0-9\-_.]*[A-Za-z0-9]$/, 'must be a PVE storage id');
const pveTag = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_\-+.]*$/, 'must be a PVE tag (letters, digits, _ - + .)');
const dnsName = z
  .string()
  .regex(
    /^(?=.{1,63}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$/,
    'must be a DNS name (letters, digits, dashes; at most 63)',
  );
const snapshotName = z.string().regex(/^[a-zA-Z][a-zA-Z0-9_-]{1,39}$/, 'must be a PVE snapshot name');
const volumeId = (content: 'iso' | 'vztmpl') =>
  z
    .string()
    .regex(
      new RegExp(`^[A-Za-z][A-Za-z0-9\\-_.]*[A-Za-z0-9]:${content}/[^/]+$`),
      `must be a volume id such as 'local:${content}/<file>'`,
    );
const tagExpression = z
  .string()
  .min(1)
  .superRefine((value, ctx) => {
    const problem = tagExpressionProblem(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  })
  // A grammar JSON Schema cannot state: the document names it as a format.
  .meta({ format: 'pm-tag-expression', maxLength: TAG_EXPRESSION_LIMITS.length });
const sshHostKey = z
  .string()
  .regex(/^SHA256:[A-Za-z0-9+/]{43}=?$/, 'must be an OpenSSH SHA256 host-key fingerprint (SHA256:...)');

/** What a new guest may set; everything left out comes from the environment's `defaults`. */
const newGuest = {
  /** What the guest is for: names it through the naming policy (`auto-{service}-{vmid}`). */
  service: z
    .string()
    .regex(SERVICE_PATTERN, 'must be a service name: lowercase letters, digits and dashes (at most 32)'),
  /** Overrides the naming policy. */
  name: dnsName.optional(),
  /** A specific VMID instead of the next free one in the VM range; refused when it exists. */
  vmid: vmid.optional(),
  node: nodeName.optional(),
  cores: z.number().int().min(1).max(512).optional(),
  memoryMb: z.number().int().min(16).max(8_388_608).optional(),
  storage: storageId.optional(),
  bridge: z
    .string()
    .regex(/^[a-zA-Z][a-zA-Z0-9_.-]{0,14}$/, 'must be a bridge name such as vmbr0')
    .optional(),
  tags: z.array(pveTag).max(32).default([]),
  start: z.boolean().default(false),
};
const diskGb = z.number().int().min(1).max(65_536).optional();

export const vmCreateOperation = defineOperation({
  kind: 'vm-create',
  workflowType: 'vmCreate',
  docs: 'operations.md',
  description:
    'Create a VM (or a container from a template) with a fresh VMID, the cluster defaults and the naming policy.',
  body: z
    .strictObject({
      ...common,
      type: z.enum(['qemu', 'lxc']).default('qemu'),
      ...newGuest,
      diskGb,
      /** VMs: an ISO to put in the CD drive. */
      iso: volumeId('iso').optional(),
      /** Containers: the template archive to create from. */
      ostemplate: volumeId('vztmpl').optional(),
    })
    .superRefine((b, ctx) => {
      if (b.type === 'lxc' && !b.ostemplate)
        ctx.addIssue({ code: 'custom', path: ['ostemplate'], message: 'a container needs a template' });
      if (b.type === 'qemu' && b.ostemplate)
        ctx.addIssue({
          code: 'custom',
          path: ['ostemplate'],
          message: 'only containers are created from a template archive',
        });
      if (b.type === 'lxc' && b.iso)
        ctx.addIssue({ code: 'custom', path: ['iso'], message: 'containers have no CD drive' });
    })
    // The same rules, for the OpenAPI document.
    .meta({
      if: { properties: { type: { const: 'lxc' } }, required: ['type'] },
      then: { required: ['ostemplate'], not: { required: ['iso'] } },
      else: { not: { required: ['ostemplate'] } },
    }),
  workflowId: (b, at) => `vm-create/${b.environment}/${b.service}/${at}`,
  nodes: (b) => (b.node ? [b.node] : []),
});

export const vmCloneOperation = defineOperation({
  kind: 'vm-clone',
  workflowType: 'vmCreate',
  docs: 'operations.md',
  description: 'Clone a VM or template (full or linked) into a new VM with a fresh VMID and the naming policy.',
  body: z.strictObject({
    ...common,
    sourceVmid: vmid,
    /** Checked against PVE together with the VMID before cloning. */
    sourceName: z.string().min(1),
    /** A linked clone (full: false) needs a template as its source. */
    full: z.boolean().default(true),
    ...newGuest,
  }),
  workflowId: (b, at) => `vm-clone/${b.environment}/${b.sourceVmid}/${at}`,
  nodes: (b) => (b.node ? [b.node] : []),
});

export const vmResizeOperation = defineOperation({
  kind: 'vm-resize',
  workflowType: 'vmAction',
  docs: 'operations.md',
  description: 'Change the cores or memory of a VM or container, or grow a VM disk (snapshot first, by policy).',
  body: z
    .strictObject({
      ...common,
      vmid,
      name: z.string().min(1),
      action: z.literal('resize').default('resize'),
      cores: z.number().int().min(1).max(512).optional(),
      memoryMb: z.number().int().min(16).max(8_388_608).optional(),
      disk: z
        .strictObject({
          key: z.string().regex(/^((scsi|virtio|sata|ide)\d+|rootfs|mp\d+)$/, 'must be a disk key such as scsi0'),
          sizeGb: z.number().int().min(1).max(65_536),
        })
        .optional(),
    })
    .refine((b) => b.cores !== undefined || b.memoryMb !== undefined || b.disk !== undefined, {
      message: 'name at least one of cores, memoryMb, disk',
      path: ['cores'],
    })
    .meta({ anyOf: [{ required: ['cores'] }, { required: ['memoryMb'] }, { required: ['disk'] }] }),
  workflowId: (b, at) => `vm-resize/${b.environment}/${b.vmid}/${at}`,
});

export const bulkActionOperation = defineOperation({
  kind: 'bulk-action',
  workflowType: 'bulkAction',
  docs: 'operations.md',
  description:
    'Start, shut down, stop, reboot, snapshot or delete every guest matching a tag expression (e.g. `web & !prod`).',
  body: z.strictObject({
    ...common,
    /** `web`, `web & !prod`, `a | b`, `(web | api) & !canary`. */
    tags: tagExpression,
    action: z.enum(['start', 'shutdown', 'stop', 'reboot', 'snapshot', 'delete']),
    types: z
      .array(z.enum(['qemu', 'lxc']))
      .min(1)
      .default(['qemu', 'lxc']),
    nodes: z.array(nodeName).min(1).optional(),
    snapshot: snapshotName.optional(),
    shutdownTimeoutSeconds: z.number().int().min(1).max(3600).default(120),
    forceStopAfterTimeout: z.boolean().default(false),
    maxParallel: z.number().int().min(1).max(64).default(8),
  }),
  workflowId: (b, at) => `bulk-action/${b.environment}/${b.action}/${at}`,
  nodes: (b) => b.nodes ?? [],
});

export const lxcPatchOperation = defineOperation({
  kind: 'lxc-patch',
  workflowType: 'lxcPatch',
  docs: 'operations.md',
  description: 'Upgrade the packages of every running container (apt), snapshot first, rolling back failures if asked.',
  body: z.strictObject({
    ...common,
    /** Only containers matching this tag expression; all running containers when absent. */
    tags: tagExpression.optional(),
    nodes: z.array(nodeName).min(1).optional(),
    maxParallel: z.number().int().min(1).max(32).default(4),
    rollbackOnFailure: z.boolean().default(false),
    commandTimeoutSeconds: z.number().int().min(30).max(7200).default(1800),
  }),
  workflowId: (b, at) => `lxc-patch/${b.environment}/${at}`,
  nodes: (b) => b.nodes ?? [],
});

const checksumLength = { md5: 32, sha1: 40, sha224: 56, sha256: 64, sha384: 96, sha512: 128 } as const;

export const isoImportOperation = defineOperation({
  kind: 'iso-import',
  workflowType: 'isoImport',
  docs: 'operations.md',
  description: 'Download an ISO image into a storage by URL, verifying its checksum.',
  body: z
    .strictObject({
      ...common,
      node: nodeName,
      storage: storageId,
      url: z.string().regex(/^https?:\/\/\S+$/, 'must be an http(s) URL'),
      filename: z
        .string()
        .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,250}\.(iso|img)$/, 'must be a file name ending .iso or .img'),
      checksum: z.string().regex(/^[0-9a-fA-F]+$/, 'must be a hex digest'),
      checksumAlgorithm: z.enum(['md5', 'sha1', 'sha224', 'sha256', 'sha384', 'sha512']).default('sha256'),
    })
    .superRefine((b, ctx) => {
      const length = checksumLength[b.checksumAlgorithm];
      if (b.checksum.length !== length) {
        ctx.addIssue({
          code: 'custom',
          path: ['checksum'],
          message: `a ${b.checksumAlgorithm} digest has ${length} hex digits`,
        });
      }
    })
    // The same rule, for the OpenAPI document (sha256 when no algorithm is named).
    .meta({
      allOf: Object.entries(checksumLength).map(([algorithm, length]) => ({
        if:
          algorithm === 'sha256'
            ? {
                anyOf: [
                  { not: { required: ['checksumAlgorithm'] } },
                  { properties: { checksumAlgorithm: { const: algorithm } } },
                ],
              }
            : { properties: { checksumAlgorithm: { const: algorithm } }, required: ['checksumAlgorithm'] },
        then: { properties: { checksum: { minLength: length, maxLength: length } } },
      })),
    }),
  workflowId: (b, at) => `iso-import/${b.environment}/${b.node}/${b.filename}/${at}`,
  nodes: (b) => [b.node],
});

export const storageCleanupOperation = defineOperation({
  kind: 'storage-cleanup',
  workflowType: 'storageCleanup',
  docs: 'operations.md',
  description: 'Remove disk images no guest uses (and, if asked, ISO images no VM has inserted).',
  body: z.strictObject({
    ...common,
    node: nodeName.optional(),
    storage: storageId.optional(),
    includeIsos: z.boolean().default(false),
  }),
  workflowId: (b, at) => `storage-cleanup/${b.environment}/${at}`,
  nodes: (b) => (b.node ? [b.node] : []),
});

export const statefulVmOperation = defineOperation({
  kind: 'create-stateful-vm',
  workflowType: 'createStatefulVm',
  docs: 'operations.md',
  description: 'Create a VM that boots from the network, install Alpine to its disk over SSH, and reboot it from disk.',
  body: z.strictObject({
    ...common,
    ...newGuest,
    diskGb,
    /** Alpine packages installed on the new system after the disk install. */
    packages: z
      .array(z.string().regex(/^[a-z0-9][a-z0-9+._-]*$/, 'must be an Alpine package name'))
      .max(50)
      .default([]),
    /** Fingerprint of the network-booted live image's SSH host key (the gold image's). */
    liveImageHostKey: sshHostKey.optional(),
    /** Keep the VM when the install fails part-way, for inspection. */
    keepOnFailure: z.boolean().default(false),
    installTimeoutSeconds: z.number().int().min(60).max(7200).default(1800),
  }),
  workflowId: (b, at) => `create-stateful-vm/${b.environment}/${b.service}/${at}`,
  nodes: (b) => (b.node ? [b.node] : []),
});

// Runbooks and templates: run a runbook, ingest one (adapted to the conventions, saved once
// approved), build a VM template from a template runbook.

const runbookName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a runbook name (lowercase letters, digits, dashes)');
/** Runbook parameter values; each is checked against the runbook's own declaration when planning. */
const runbookParameters = z
  .record(
    z.string().regex(/^[a-z][a-z0-9_]*$/),
    z.union([z.string().max(8192), z.number(), z.boolean(), z.array(z.string().max(256)).max(64)]),
    { error: (issue) => (issue.code === 'invalid_key' ? 'parameter names are lowercase identifiers' : undefined) },
  )
  .default({});

export const runbookRunOperation = defineOperation({
  kind: 'runbook-run',
  workflowType: 'runbookRun',
  docs: 'runbooks.md',
  description:
    'Run a runbook from runbooks/ with parameters: plan its steps, approve, run them, clean up if one fails.',
  body: z.strictObject({
    ...common,
    runbook: runbookName,
    parameters: runbookParameters,
    /** Leave what a failed run created in place, for debugging, instead of cleaning it up. */
    keepOnFailure: z.boolean().default(false),
  }),
  workflowId: (b, at) => `runbook/${b.environment}/${b.runbook}/${at}`,
});

/** What is wrong with a submitted runbook's front matter (`path: reason` each); none when it parses. */
function runbookProblems(markdown: string): readonly string[] {
  try {
    parseRunbookMarkdown(markdown, '(submitted)');
    return [];
  } catch (err) {
    if (err instanceof RunbookError) return err.issues;
    throw err;
  }
}

export const runbookIngestOperation = defineOperation({
  kind: 'runbook-ingest',
  workflowType: 'runbookIngest',
  docs: 'runbooks.md',
  description:
    'Submit a runbook as markdown: it is validated and adapted to the environment’s conventions, and saved once approved.',
  body: z.strictObject({
    ...common,
    // Refused at the edge, every problem named, instead of failing the operation later.
    markdown: z
      .string()
      .min(1)
      .max(256 * 1024, 'a runbook may be at most 256 KiB')
      .superRefine((text, ctx) => {
        for (const problem of runbookProblems(text)) ctx.addIssue({ code: 'custom', message: problem });
      })
      // A runbook document (docs/runbooks.md): JSON Schema can only name its format.
      .meta({ format: 'pm-runbook-markdown' }),
    /** Replace an existing runbook of the same name (high risk). */
    replace: z.boolean().default(false),
  }),
  workflowId: (b, at) => `runbook-ingest/${b.environment}/${at}`,
});

export const templateBuildOperation = defineOperation({
  kind: 'template-build',
  workflowType: 'templateBuild',
  docs: 'templates.md',
  description:
    'Build a VM template from a template runbook: VMID from the template range, image checked, disk imported, conventions applied, result verified.',
  body: z.strictObject({
    ...common,
    runbook: runbookName,
    parameters: runbookParameters,
    /** Rebuild a template that exists under the same name, removing the old one once the new one is verified. */
    replaceExisting: z.boolean().default(false),
    /** Leave a half-built VM in place when a step fails, for debugging. */
    keepOnFailure: z.boolean().default(false),
  }),
  workflowId: (b, at) => `template-build/${b.environment}/${b.runbook}/${at}`,
  nodes: (b) => (typeof b.parameters.node === 'string' ? [b.parameters.node] : []),
});

// Clusters: a Talos Kubernetes cluster from a profile in clusters/, up and down as one operation.

const clusterName = z
  .string()
  .regex(CLUSTER_NAME, 'must be a cluster name: lowercase letters, digits and dashes (at most 24)');

export const clusterUpOperation = defineOperation({
  kind: 'cluster-up',
  workflowType: 'clusterUp',
  docs: 'clusters.md',
  description:
    'Bring up a Talos Kubernetes cluster from its profile (clusters/<profile>.yaml): VMIDs, names and placement planned, approved, VMs cloned in parallel and configured, Talos configs applied, etcd bootstrapped once, kubeconfig written on the worker. A half-built cluster is resumed.',
  body: z.strictObject({
    ...common,
    /** Name of a clusters/*.yaml profile (without .yaml). */
    profile: clusterName,
    /** VMs cloned and brought up at once; 1 brings them up one after the other. */
    maxParallel: z.number().int().min(1).max(32).default(8),
  }),
  workflowId: (b, at) => `${clusterUpOperationPrefix(b.environment, b.profile)}${at}`,
});

export const clusterDownOperation = defineOperation({
  kind: 'cluster-down',
  workflowType: 'clusterDown',
  docs: 'clusters.md',
  description:
    'Tear a cluster down: every VM carrying its tag (and only those) shut down gracefully, stopped after a timeout, destroyed with its disks; then nothing with the tag may remain, and its secrets are removed from the worker.',
  body: z.strictObject({
    ...common,
    /** The cluster's name (its profile's name); the profile file need not exist any more. */
    cluster: clusterName,
    shutdownTimeoutSeconds: z.number().int().min(1).max(3600).default(120),
    maxParallel: z.number().int().min(1).max(32).default(8),
  }),
  workflowId: (b, at) => `cluster-down/${b.environment}/${b.cluster}/${at}`,
});

// Desired state: make an environment match its fleet manifest (lib/manifest, docs/desired-state.md).

export const reconcileOperation = defineOperation({
  kind: 'reconcile',
  workflowType: 'reconcile',
  docs: 'desired-state.md',
  description:
    'Make an environment match its fleet manifest: plan creates, in-place changes, restarts, replacements and deletes of claimed guests (terraform-plan style), approve, apply in dependency order.',
  body: z.strictObject({
    ...common,
    /** A manifest folder relative to the worker's working directory; the configured one when absent. */
    manifests: z
      .string()
      .regex(/^(?!\/)(?!(?:.*\/)?\.\.(?:\/|$))[A-Za-z0-9._/-]{1,200}$/, 'must be a relative folder path without ..')
      .optional(),
    /** Guests changed at once (clones of one template still go one at a time). */
    maxParallel: z.number().int().min(1).max(32).default(4),
  }),
  workflowId: (b, at) => `reconcile/${b.environment}/${at}`,
});

// Rolling node maintenance: every node in turn emptied, upgraded over SSH, rebooted if needed,
// its guests brought back. One per environment at a time: the workflow ID is the environment's.

export const rollingMaintenanceOperation = defineOperation({
  kind: 'rolling-maintenance',
  workflowType: 'rollingMaintenance',
  docs: 'maintenance.md',
  description:
    'Update the nodes of a cluster in turn: empty a node, upgrade its packages over SSH, reboot it if needed, bring its guests back, then the next node.',
  body: z.strictObject({
    ...common,
    /** Nodes to maintain; every node when absent. The plan orders them (cheapest to empty first) unless keepOrder. */
    nodes: z.array(nodeName).min(1).optional(),
    keepOrder: z.boolean().default(false),
    upgrade: z.boolean().default(true),
    /** Runs as the configured SSH user on each node; its output goes to the operation's log. */
    upgradeCommand: z
      .string()
      .min(1)
      .max(2000)
      .refine((c) => !/[\r\n]/.test(c), 'must be one line')
      .default(DEFAULT_UPGRADE_COMMAND),
    reboot: z.enum(['if-required', 'always', 'never']).default('if-required'),
    /** A runbook (with a `node` parameter) run on each node after its upgrade, planned per node up front. */
    runbook: z.strictObject({ name: runbookName, parameters: runbookParameters }).optional(),
    /** Migrate each node's guests back once it is done; otherwise they stay where they were moved. */
    returnGuests: z.boolean().default(true),
    /** Put each node into HA maintenance (ha-manager over SSH) while it is down. */
    haMaintenance: z.boolean().default(false),
    /** Wait for a person's approval before each node, besides the plan's. */
    approveEachNode: z.boolean().default(false),
    parallelNodes: z.number().int().min(1).max(8).default(1),
    /** Nodes that must stay up; never fewer than quorum needs, which is the default. */
    minNodesUp: z.number().int().min(1).max(64).optional(),
    /** A node that takes longer starts no further step and halts for the operator. */
    maxNodeMinutes: z.number().int().min(5).max(1440).default(120),
    pauseBetweenNodesSeconds: z.number().int().min(0).max(86_400).default(0),
    /** Empty the next node while the previous one's guests return, where the plan finds both fit; off (or with a pause) one node ends before the next begins. */
    overlap: z.boolean().default(true),
    /** A failed step halts the rollout for a decision (resume, skip-node, abort-and-return); otherwise the node is skipped. */
    stopOnFailure: z.boolean().default(true),
    upgradeTimeoutSeconds: z.number().int().min(60).max(14_400).default(3600),
    bootTimeoutSeconds: z.number().int().min(60).max(7200).default(900),
    // How each node is emptied, as for an evacuation.
    maxParallel: z.number().int().min(1).max(32).default(4),
    maxParallelPerTarget: z.number().int().min(1).max(16).default(2),
    bwlimitMiBps: z.number().int().min(1).max(1_000_000).optional(),
    includeStopped: z.boolean().default(false),
    localDisks: z.enum(['migrate', 'leave']).default('migrate'),
    containers: z.enum(['restart', 'leave']).default('restart'),
    containerShutdownTimeoutSeconds: z.number().int().min(1).max(3600).default(180),
    linkGbps: z.number().positive().max(800).default(10),
  }),
  workflowId: (b) => `rolling-maintenance/${b.environment}`,
  nodes: (b) => b.nodes ?? [],
});

// Backups: vzdump of one guest, a tag expression or a node; restores from a backup volume.

const backupVolumeId = z
  .string()
  .regex(
    /^[a-z][a-z0-9\-_.]*[a-z0-9]:backup\/vzdump-(qemu|lxc)-\d+-[\d_-]+\.(vma|tar)(\.(zst|gz|lzo))?$/i,
    "must be a backup volume id such as 'nfs:backup/vzdump-qemu-101-2026_12_06-07_00_00.vma.zst'",
  );

export const backupOperation = defineOperation({
  kind: 'backup',
  workflowType: 'backup',
  docs: 'backups.md',
  description:
    'Back up one guest, every guest matching a tag expression, or every guest of a node with vzdump, a bounded number at a time per storage and per node.',
  body: z
    .strictObject({
      ...common,
      /** Exactly one of vmid, tags and node selects the guests. */
      vmid: vmid.optional(),
      tags: tagExpression.optional(),
      node: nodeName.optional(),
      storage: storageId,
      mode: z.enum(['snapshot', 'suspend', 'stop']).default('snapshot'),
      compress: z.enum(['zstd', 'gzip', 'lzo', 'none']).default('zstd'),
      /** PVE expands {{cluster}}, {{guestname}}, {{node}} and {{vmid}}. */
      notesTemplate: z.string().max(1024).default('{{guestname}}'),
      protected: z.boolean().default(false),
      /** PVE lets only holders of Sys.Modify on / set a per-job limit (the shipped role does not). */
      bwlimitMiBps: z.number().int().min(1).max(1_000_000).optional(),
      maxParallelPerStorage: z.number().int().min(1).max(16).default(2),
      /** PVE runs one vzdump job per node at a time; more only queue on the node's lock. */
      maxParallelPerNode: z.number().int().min(1).max(4).default(1),
    })
    .refine((b) => [b.vmid, b.tags, b.node].filter((x) => x !== undefined).length === 1, {
      message: 'name exactly one of vmid, tags or node',
      path: ['vmid'],
    })
    .meta({ oneOf: [{ required: ['vmid'] }, { required: ['tags'] }, { required: ['node'] }] }),
  workflowId: (b, at) => `backup/${b.environment}/${b.vmid ?? b.node ?? 'tags'}/${at}`,
  nodes: (b) => (b.node ? [b.node] : []),
});

export const restoreOperation = defineOperation({
  kind: 'restore',
  workflowType: 'restore',
  docs: 'backups.md',
  description:
    "Restore a guest from a backup volume: over the original (high risk) or as a new VMID in the environment's range.",
  body: z.strictObject({
    ...common,
    volume: backupVolumeId,
    /** `in-place` overwrites the guest the backup came from; `new` restores beside it. */
    target: z.enum(['in-place', 'new']),
    /** For `new`: a specific VMID in the environment's range instead of the next free one. */
    newVmid: vmid.optional(),
    /** Where restored disks go; each disk's original storage when absent. */
    storage: storageId.optional(),
    start: z.boolean().default(false),
  }),
  workflowId: (b, at) => `restore/${b.environment}/${b.volume.replace(/[^a-z0-9_.-]/gi, '_')}/${at}`,
});

const keepCount = z.number().int().min(1).max(10_000).optional();

export const backupPruneOperation = defineOperation({
  kind: 'backup-prune',
  workflowType: 'backupPrune',
  docs: 'backups.md',
  description:
    "Remove old backups from a storage by PVE's prune-backups rules (keep-last, keep-daily, ...); protected backups are never removed.",
  body: z
    .strictObject({
      ...common,
      storage: storageId,
      /** One guest's backups; every guest's when absent. */
      vmid: vmid.optional(),
      keepLast: keepCount,
      keepHourly: keepCount,
      keepDaily: keepCount,
      keepWeekly: keepCount,
      keepMonthly: keepCount,
      keepYearly: keepCount,
    })
    .refine(
      (b) =>
        [b.keepLast, b.keepHourly, b.keepDaily, b.keepWeekly, b.keepMonthly, b.keepYearly].some((k) => k !== undefined),
      {
        message: 'set at least one keep option (without one PVE keeps everything)',
        path: ['keepLast'],
      },
    )
    .meta({
      anyOf: ['keepLast', 'keepHourly', 'keepDaily', 'keepWeekly', 'keepMonthly', 'keepYearly'].map((k) => ({
        required: [k],
      })),
    }),
  workflowId: (b, at) => `backup-prune/${b.environment}/${b.storage}/${at}`,
});

export const restoreDrillOperation = defineOperation({
  kind: 'restore-drill',
  workflowType: 'restoreDrill',
  docs: 'backups.md',
  description:
    "Prove backups restorable: restore the latest backup of each chosen guest as a temporary guest on an isolated bridge, start it, check it came up (a VM's guest agent answers, a container runs with an address), then destroy it.",
  body: z
    .strictObject({
      ...common,
      /** Exactly one of vmid and tags selects the guests. */
      vmid: vmid.optional(),
      tags: tagExpression.optional(),
      /** A bridge without an uplink, so the restored copy cannot clash with its original. */
      bridge: z
        .string()
        .regex(/^vmbr\d{1,4}$/, 'must be a Linux bridge name such as vmbr99')
        .default('vmbr99'),
      agentTimeoutSeconds: z.number().int().min(10).max(3600).default(300),
      maxParallel: z.number().int().min(1).max(8).default(2),
    })
    .refine((b) => (b.vmid === undefined) !== (b.tags === undefined), {
      message: 'name exactly one of vmid or tags',
      path: ['vmid'],
    })
    .meta({ oneOf: [{ required: ['vmid'] }, { required: ['tags'] }] }),
  workflowId: (b, at) => `restore-drill/${b.environment}/${b.vmid ?? 'tags'}/${at}`,
});

export const operations = [
  inventoryOperation,
  vmActionOperation,
  evacuationOperation,
  vmCreateOperation,
  vmCloneOperation,
  vmResizeOperation,
  bulkActionOperation,
  lxcPatchOperation,
  isoImportOperation,
  storageCleanupOperation,
  statefulVmOperation,
  runbookRunOperation,
  runbookIngestOperation,
  templateBuildOperation,
  clusterUpOperation,
  clusterDownOperation,
  reconcileOperation,
  rollingMaintenanceOperation,
  backupOperation,
  restoreOperation,
  backupPruneOperation,
  restoreDrillOperation,
] as const satisfies readonly OperationKind[];

export type OperationKindName = (typeof operations)[number]['kind'];

export function findOperation(kind: string): OperationKind | undefined {
  return operations.find((o) => o.kind === kind);
}

/** What a workflow receives: the validated body plus who asked and under which policy. */
export type WorkflowInput<S extends z.ZodType> = z.infer<S> & { meta: OperationMeta };
export type InventoryInput = WorkflowInput<typeof inventoryOperation.body>;
export type VmActionInput = WorkflowInput<typeof vmActionOperation.body>;
export type EvacuationInput = WorkflowInput<typeof evacuationOperation.body>;
export type VmCreateInput = WorkflowInput<typeof vmCreateOperation.body>;
export type VmCloneInput = WorkflowInput<typeof vmCloneOperation.body>;
export type VmResizeInput = WorkflowInput<typeof vmResizeOperation.body>;
export type BulkActionInput = WorkflowInput<typeof bulkActionOperation.body>;
export type LxcPatchInput = WorkflowInput<typeof lxcPatchOperation.body>;
export type IsoImportInput = WorkflowInput<typeof isoImportOperation.body>;
export type StorageCleanupInput = WorkflowInput<typeof storageCleanupOperation.body>;
export type StatefulVmInput = WorkflowInput<typeof statefulVmOperation.body>;
export type RunbookRunInput = WorkflowInput<typeof runbookRunOperation.body>;
export type RunbookIngestInput = WorkflowInput<typeof runbookIngestOperation.body>;
export type TemplateBuildInput = WorkflowInput<typeof templateBuildOperation.body>;
export type ClusterUpInput = WorkflowInput<typeof clusterUpOperation.body>;
export type ClusterDownInput = WorkflowInput<typeof clusterDownOperation.body>;
export type ReconcileInput = WorkflowInput<typeof reconcileOperation.body>;
export type RollingMaintenanceInput = WorkflowInput<typeof rollingMaintenanceOperation.body>;
export type BackupInput = WorkflowInput<typeof backupOperation.body>;
export type RestoreInput = WorkflowInput<typeof restoreOperation.body>;
export type BackupPruneInput = WorkflowInput<typeof backupPruneOperation.body>;
export type RestoreDrillInput = WorkflowInput<typeof restoreDrillOperation.body>;
