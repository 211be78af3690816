/**
 * What each request field means, and one example request per operation kind: the words the
 * OpenAPI document, the /docs page and docs/requests.md add to the catalog's zod schemas.
 * Types, defaults and limits come from the schemas themselves (`z.toJSONSchema`); only the
 * meaning is written here, once per field name (a kind overrides where its field differs).
 * test/unit/request-docs.test.ts fails when a field has no meaning, an example stops
 * validating, or docs/requests.md is not the rendering of this file.
 */
import { z } from 'zod';
import { operations, type OperationKind, type OperationKindName } from './catalog.js';

type JsonSchema = Record<string, unknown>;

const meanings: Record<string, string> = {
  environment: 'The environment (cluster) of the configuration to work on.',
  dryRun: 'Plan only: the answer carries the plan and nothing is changed.',
  vmid: 'The guest’s VMID; checked together with `name` before every step.',
  name: 'The guest’s name as PVE shows it; a mismatch with the VMID refuses the operation.',
  action: 'What to do.',
  snapshot: 'Snapshot name (PVE rules: a letter, then letters, digits, `-`, `_`).',
  target: 'Target node of a migration.',
  shutdownTimeoutSeconds: 'How long a shutdown may take before it counts as failed (or is forced).',
  forceStopAfterTimeout: 'Power the guest off when the shutdown times out, instead of failing.',
  node: 'The node to work on; for new guests, the node with the most free memory when absent.',
  allowTargets: 'Only these nodes may receive guests.',
  denyTargets: 'These nodes never receive guests.',
  maxParallel: 'How many steps (guests, migrations, clones) run at once.',
  maxParallelPerTarget: 'Migrations arriving at any one node at once.',
  bwlimitMiBps: 'Bandwidth cap per migration (PVE’s `bwlimit`), MiB/s.',
  includeStopped: 'Move stopped guests too (offline migration).',
  includeTemplates: 'Move templates too (offline migration).',
  localDisks: 'Guests with local disks: copy the disks along (`migrate`) or leave those guests (`leave`).',
  targetStorage: 'Storage on the target for copied local disks; the same storage id when absent.',
  containers: 'Running containers cannot live-migrate: `restart` them on the target (downtime) or `leave` them.',
  containerShutdownTimeoutSeconds: 'Restart migration of a container: how long PVE waits for its shutdown.',
  onFailure: 'After a failed migration: start no new ones (`stop`) or go on with the others (`continue`).',
  haMaintenance: 'Put the node into HA maintenance (ha-manager) while it is empty.',
  linkGbps: 'Link speed the time estimates assume (PVE does not report it).',
  type: 'A VM (`qemu`) or a container (`lxc`).',
  service: 'What the guest is for; names it through the naming policy (`auto-{service}-{vmid}`).',
  cores: 'CPU cores; the environment’s `defaults` when absent.',
  memoryMb: 'Memory in MiB; the environment’s `defaults` when absent.',
  storage: 'Storage id; the environment’s `defaults.storage` when absent.',
  bridge: 'Network bridge of the first NIC; `defaults.network_bridge` when absent.',
  tags: 'PVE tags the guest gets.',
  start: 'Start the guest once it is created.',
  diskGb: 'Size of the boot disk in GiB.',
  iso: 'VMs: an ISO volume to put in the CD drive (`local:iso/<file>`).',
  ostemplate: 'Containers: the template archive to create from (`local:vztmpl/<file>`).',
  sourceVmid: 'VMID of the VM or template to clone.',
  sourceName: 'Name of the source; checked together with `sourceVmid` before cloning.',
  full: 'A full copy; `false` makes a linked clone, which needs a template as its source.',
  disk: 'Grow one disk: `{ "key": "scsi0", "sizeGb": 64 }` (disks never shrink).',
  types: 'Guest types to select.',
  nodes: 'Only guests (or nodes) on these nodes; all when absent.',
  rollbackOnFailure: 'Roll a container whose upgrade fails back to its snapshot and start it again.',
  commandTimeoutSeconds: 'Time limit of each container’s upgrade command.',
  url: 'Where PVE downloads the file from (http or https).',
  filename: 'File name in the storage (`.iso` or `.img`); an existing file is never overwritten.',
  checksum: 'The file’s digest in hex; PVE verifies it and keeps nothing on a mismatch.',
  checksumAlgorithm: 'Algorithm of `checksum`.',
  includeIsos: 'Also remove ISO images no VM has in its CD drive.',
  packages: 'Alpine packages installed on the new system.',
  liveImageHostKey:
    'The network-booted live image’s SSH host key (`SHA256:...`); the environment’s `pxe.live_image_host_key` when absent.',
  keepOnFailure: 'Leave what a failed run created in place, for inspection, instead of removing it.',
  installTimeoutSeconds: 'Time limit of the disk install over SSH.',
  runbook: 'Name of a runbook in `runbooks/` (`GET /v1/runbooks` lists them).',
  parameters: 'The runbook’s parameters (`GET /v1/runbooks/{name}` lists them); checked when planning.',
  markdown: 'The runbook file: YAML front matter between `---` lines, then markdown. Checked on arrival.',
  replace: 'Replace an existing runbook of the same name (high risk).',
  replaceExisting: 'Rebuild a template that exists under the same name; the old one goes once the new one is verified.',
  profile: 'A cluster profile in `clusters/` (file name without `.yaml`).',
  cluster: 'The cluster’s name (its profile’s); every VM carrying its tag is removed.',
  manifests: 'A manifest folder relative to the worker; the configured `manifests.path` when absent.',
  keepOrder: 'Maintain the nodes in the order given instead of the cheapest-to-empty first.',
  upgrade: 'Upgrade each node’s packages.',
  upgradeCommand: 'The upgrade command, run over SSH as the configured user.',
  reboot: 'Reboot a node after its upgrade: when the upgrade asks for it, always, or never.',
  returnGuests: 'Migrate each node’s guests back once it is done.',
  approveEachNode: 'Wait for a person’s approval before each node, besides the plan’s.',
  parallelNodes: 'Nodes maintained at once.',
  minNodesUp: 'Nodes that must stay up; never fewer than quorum needs (the default).',
  maxNodeMinutes: 'A node taking longer starts no further step and halts for the operator.',
  pauseBetweenNodesSeconds: 'Pause between nodes.',
  overlap:
    'Empty the next node while the previous one’s guests return, where the plan finds both fit; off (or with a pause) a node’s round ends before the next begins.',
  stopOnFailure: 'Halt the rollout for a decision on a failed step; otherwise the node is skipped.',
  upgradeTimeoutSeconds: 'Time limit of one node’s upgrade.',
  bootTimeoutSeconds: 'How long a rebooted node may take to come back.',
  mode: 'vzdump mode: `snapshot` (guests keep running), `suspend` (paused while copied) or `stop` (shut down, started again).',
  compress: 'Compression of the archive.',
  notesTemplate:
    'Notes PVE stores with each backup; `{{cluster}}`, `{{guestname}}`, `{{node}}` and `{{vmid}}` are expanded.',
  protected: 'Protect the backups: PVE never prunes or deletes them until unprotected.',
  maxParallelPerStorage: 'Backups writing to the storage at once (they share its link).',
  maxParallelPerNode: 'Backups on one node at once; PVE runs one vzdump job per node, so more only queue there.',
  volume: 'The backup volume to restore (`GET /v1/backups` lists them).',
  newVmid: 'For a restore beside the original: a VMID in the environment’s VM range; the next free one when absent.',
  keepLast: 'Keep the newest N backups of each guest.',
  keepHourly: 'Keep the newest backup of each of the last N hours that have one.',
  keepDaily: 'Keep the newest backup of each of the last N days that have one.',
  keepWeekly: 'Keep the newest backup of each of the last N ISO weeks that have one.',
  keepMonthly: 'Keep the newest backup of each of the last N months that have one.',
  keepYearly: 'Keep the newest backup of each of the last N years that have one.',
  agentTimeoutSeconds: 'How long the restored copy’s guest agent may take to answer.',
};

/** Where a kind's field means more than the shared words say. */
const kindMeanings: Partial<Record<OperationKindName, Record<string, string>>> = {
  'vm-action': { action: 'start, stop, shutdown, reboot, snapshot, rollback, migrate or delete.' },
  'vm-resize': { action: 'Always `resize`.', cores: 'New number of cores.', memoryMb: 'New memory in MiB.' },
  evacuation: { node: 'The node to empty.' },
  'bulk-action': {
    tags: 'A tag expression: `web`, `web & !prod`, `(web | api) & !canary`.',
    action: 'What to do to every matching guest.',
  },
  'lxc-patch': { tags: 'Only containers matching this tag expression; every running container when absent.' },
  'iso-import': { node: 'The node whose storage receives the file.', storage: 'A storage that holds ISO images.' },
  'storage-cleanup': {
    node: 'Only this node’s storages; all nodes when absent.',
    storage: 'Only this storage; all when absent.',
  },
  'rolling-maintenance': {
    nodes: 'Nodes to maintain; every node when absent.',
    runbook: 'A runbook (with a `node` parameter) run on each node after its upgrade: `{ "name", "parameters" }`.',
    includeStopped: 'Move stopped guests off each node too.',
  },
  'cluster-down': { shutdownTimeoutSeconds: 'How long each VM’s shutdown may take before it is stopped.' },
  backup: {
    vmid: 'Back up this guest (name exactly one of `vmid`, `tags`, `node`).',
    tags: 'Back up every guest matching this tag expression.',
    node: 'Back up every guest of this node.',
    storage: 'A storage that holds backups (content `backup`), available on the guests’ nodes.',
    bwlimitMiBps:
      'Bandwidth cap per backup, MiB/s; PVE allows it only with Sys.Modify on `/`, which the shipped role lacks.',
  },
  'restore-drill': {
    vmid: 'Drill this VM’s latest backup (name exactly one of `vmid`, `tags`).',
    tags: 'Drill the latest backup of every VM matching this tag expression.',
    bridge: 'The isolated bridge (no uplink) the temporary copies join.',
    maxParallel: 'Drills running at once.',
  },
  'backup-prune': {
    storage: 'The backup storage to prune.',
    vmid: 'Only this guest’s backups; every guest’s when absent.',
  },
  restore: {
    target: '`in-place` overwrites the guest the backup came from (high risk); `new` restores it beside it (medium).',
    storage: 'Storage for the restored disks; each disk’s original storage when absent.',
    start: 'Start the restored guest.',
  },
};

const HELLO_RUNBOOK = [
  '---',
  'name: hello',
  'description: Says hello on a node',
  'image_type: none',
  'requires: [ssh]',
  'parameters:',
  '  node: { type: node, required: true, description: where to say it }',
  'steps:',
  '  - id: hello',
  '    description: Say hello',
  "    ssh: { node: '{{node}}', command: echo hello }",
  '---',
  '# Hello',
  '',
].join('\n');

/** One request per kind, valid on the demo's simulated homelab; dry runs unless reading is all it does. */
export const requestExamples: Record<OperationKindName, Record<string, unknown>> = {
  inventory: { environment: 'home' },
  'vm-action': { environment: 'home', vmid: 1004, name: 'web01', action: 'reboot', dryRun: true },
  evacuation: { environment: 'home', node: 'pve03', containers: 'restart', dryRun: true },
  'vm-create': { environment: 'home', service: 'app', cores: 2, memoryMb: 2048, diskGb: 16, dryRun: true },
  'vm-clone': {
    environment: 'home',
    sourceVmid: 100,
    sourceName: 'tpl-debian-13',
    service: 'web',
    full: false,
    dryRun: true,
  },
  'vm-resize': { environment: 'home', vmid: 1018, name: 'grafana', memoryMb: 4096, dryRun: true },
  'bulk-action': {
    environment: 'home',
    tags: 'web | dns',
    action: 'snapshot',
    snapshot: 'before_upgrade',
    dryRun: true,
  },
  'lxc-patch': { environment: 'home', tags: 'infra', dryRun: true },
  'iso-import': {
    environment: 'home',
    node: 'pve01',
    storage: 'local',
    url: 'https://releases.ubuntu.com/24.04/ubuntu-24.04.3-live-server-amd64.iso',
    filename: 'ubuntu-24.04.3.iso',
    checksum: 'cb4eb95d8b082f99349f159a136fc73cb0789a0f451580c247191fa17dc45440',
    dryRun: true,
  },
  'storage-cleanup': { environment: 'home', includeIsos: true, dryRun: true },
  'create-stateful-vm': { environment: 'home', service: 'alpine', diskGb: 8, packages: ['docker'], dryRun: true },
  'runbook-run': { environment: 'home', runbook: 'alpine-pxe-gold', parameters: { node: 'pve01' }, dryRun: true },
  'runbook-ingest': { environment: 'home', markdown: HELLO_RUNBOOK, dryRun: true },
  'template-build': { environment: 'home', runbook: 'alpine-pxe-gold', parameters: { node: 'pve01' }, dryRun: true },
  'cluster-up': { environment: 'home', profile: 'lab', dryRun: true },
  'cluster-down': { environment: 'home', cluster: 'lab', dryRun: true },
  reconcile: { environment: 'home', dryRun: true },
  'rolling-maintenance': { environment: 'home', dryRun: true },
  backup: {
    environment: 'home',
    tags: 'prod & web',
    storage: 'shared',
    mode: 'snapshot',
    compress: 'zstd',
    notesTemplate: '{{guestname}} before release',
  },
  restore: { environment: 'home', volume: 'shared:backup/vzdump-qemu-1004-2026_12_06-07_00_00.vma.zst', target: 'new' },
  'backup-prune': { environment: 'home', storage: 'shared', keepLast: 2, keepDaily: 7, dryRun: true },
  'restore-drill': { environment: 'home', tags: 'prod & web', bridge: 'vmbr99', dryRun: true },
};

/** Examples that need something done first, so they cannot run on a freshly started demo (the docs test skips them). */
const exampleNeeds: Partial<Record<OperationKindName, string>> = {
  restore: 'a backup volume: run the backup example first and take a `volid` from `GET /v1/backups`',
  'restore-drill': 'backups to drill: run the backup example first',
};

export interface RequestField {
  name: string;
  type: string;
  required: boolean;
  default?: unknown;
  meaning: string;
}

function typeOf(schema: JsonSchema): string {
  if (Array.isArray(schema.enum)) return schema.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  if (Array.isArray(schema.anyOf)) return (schema.anyOf as JsonSchema[]).map(typeOf).join(' or ');
  const base = String(schema.type ?? 'any');
  if (base === 'array' && schema.items) return `${typeOf(schema.items as JsonSchema)}[]`;
  const range = [schema.minimum, schema.maximum].every((v) => typeof v === 'number')
    ? ` ${schema.minimum}–${schema.maximum}`
    : '';
  return `${base}${range}`;
}

export function meaningOf(kind: string, field: string): string | undefined {
  return kindMeanings[kind as OperationKindName]?.[field] ?? meanings[field];
}

function requestSchema(op: OperationKind): JsonSchema {
  return z.toJSONSchema(op.body, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as JsonSchema;
}

/** A kind's fields, as its schema accepts them, with their meaning. */
export function requestFields(op: OperationKind): RequestField[] {
  const schema = requestSchema(op);
  const required = new Set((schema.required ?? []) as string[]);
  return Object.entries((schema.properties ?? {}) as Record<string, JsonSchema>).map(([name, property]) => ({
    name,
    type: typeOf(property),
    required: required.has(name),
    ...(property.default !== undefined ? { default: property.default } : {}),
    meaning: meaningOf(op.kind, name) ?? '',
  }));
}

/** A request body's JSON schema with each field's meaning and the kind's example added (OpenAPI). */
export function describeRequestSchema(kind: string, schema: JsonSchema): JsonSchema {
  const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;
  const described = Object.fromEntries(
    Object.entries(properties).map(([name, property]) => {
      const meaning = meaningOf(kind, name);
      return [name, meaning && property.description === undefined ? { ...property, description: meaning } : property];
    }),
  );
  const example = requestExamples[kind as OperationKindName];
  return { ...schema, properties: described, ...(example ? { examples: [example] } : {}) };
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** docs/requests.md: every kind's fields and a copy-paste example against the demo. */
export function renderRequestsMarkdown(): string {
  const sections = operations.map((op) => {
    const rows = requestFields(op).map(
      (f) =>
        `| \`${f.name}\` | ${cell(f.type)} | ${f.required ? 'required' : f.default !== undefined ? `\`${cell(JSON.stringify(f.default))}\`` : '—'} | ${cell(f.meaning)} |`,
    );
    const body = JSON.stringify(requestExamples[op.kind]);
    return [
      `## \`${op.kind}\``,
      '',
      op.description,
      '',
      '| field | type | default | meaning |',
      '|---|---|---|---|',
      ...rows,
      '',
      ...(exampleNeeds[op.kind]
        ? [`Needs ${exampleNeeds[op.kind]}.`, '', `<!-- docs-test: skip (needs ${exampleNeeds[op.kind]}) -->`]
        : []),
      '```sh',
      `curl -s -X POST -H "Authorization: Bearer $PM_TOKEN_ALICE" -H 'content-type: application/json' \\`,
      `  -d '${body.replace(/'/g, "'\\''")}' \\`,
      `  http://127.0.0.1:8080/v1/operations/${op.kind}`,
      '```',
      '',
    ].join('\n');
  });
  return [
    '# Requests: every operation kind, field by field',
    '',
    '<!-- Generated by `npm run docs:requests` from lib/operations/catalog.ts (the zod schemas the API',
    '     validates with) and lib/operations/request-docs.ts (meanings, examples). Do not edit. -->',
    '',
    'Each kind is `POST /v1/operations/<kind>` with a JSON body; unknown fields are refused (400,',
    'naming the field). The examples run as written against the demo (`./scripts/demo.sh`, then',
    '`set -a; . data/demo/api-tokens.env; set +a`); most are dry runs, which answer with the plan',
    'and change nothing — drop `"dryRun": true` to run one for real, then approve it as an approver',
    '(see [api.md](api.md)). The same fields, with their JSON schemas, are in `/openapi.json` and',
    'on the API’s `/docs` page.',
    '',
    ...sections,
  ].join('\n');
}
