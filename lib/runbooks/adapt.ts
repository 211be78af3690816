/**
 * Adapting a runbook written elsewhere to this cluster's conventions, as a reviewer would:
 * disks on the cluster's storage, NICs on its bridge, its firmware, machine, CPU and SCSI
 * controller, the guest agent, VMIDs from its ranges, and file names PVE accepts. Each
 * change is made in the YAML document itself (comments and layout kept) and recorded with
 * its reason, so the review shows a list of adaptations and a diff.
 *
 * Values become parameters that follow the convention (`{{storage}}` with
 * `convention: defaults.storage`) rather than this cluster's literal values, so the runbook
 * keeps following the configuration and an operator can still override each one.
 */
import type { Document } from 'yaml';
import type { EnvironmentConfig } from '../config/schema.js';
import type { EndpointName } from '../pve/registry.js';
import { conventionValue } from './conventions.js';
import { unifiedDiff } from './diff.js';
import { formatRunbookMarkdown, parseRunbookMarkdown, type RunbookFile } from './markdown.js';
import type { Value } from './placeholders.js';
import { checkValue, type Parameter, type Runbook } from './schema.js';

export interface Adaptation {
  /** Where in the front matter, e.g. `steps.2.params.scsi0`. */
  path: string;
  before: unknown;
  after: unknown;
  reason: string;
}

export interface AdaptedRunbook {
  runbook: Runbook;
  markdown: string;
  adaptations: Adaptation[];
  /** Unified diff of the submitted markdown against the adapted one; empty when nothing changed. */
  diff: string;
}

/** Parameter names that mean a convention wherever a runbook comes from. */
const CONVENTION_BY_NAME: Record<string, string> = {
  storage: 'defaults.storage',
  bridge: 'defaults.network_bridge',
  network_bridge: 'defaults.network_bridge',
  bios: 'defaults.bios',
  machine: 'defaults.machine',
  cpu: 'defaults.cpu',
  cpu_type: 'defaults.cpu',
  scsihw: 'defaults.scsi_controller',
  scsi_controller: 'defaults.scsi_controller',
  cores: 'defaults.cores',
  memory: 'defaults.memory_mb',
  memory_mb: 'defaults.memory_mb',
  disk_gb: 'defaults.disk_gb',
  disk_size_gb: 'defaults.disk_gb',
  agent: 'defaults.guest_agent',
  guest_agent: 'defaults.guest_agent',
  pre_enrolled_keys: 'defaults.efidisk_pre_enrolled_keys',
  ci_user: 'cloudinit.default_user',
  ciuser: 'cloudinit.default_user',
  default_user: 'cloudinit.default_user',
};

/** Guest settings that follow a convention, the parameter that carries it, and its type. */
const SETTINGS: { key: string; param: string; convention: string; type: Parameter['type']; what: string }[] = [
  { key: 'bios', param: 'bios', convention: 'defaults.bios', type: 'string', what: 'firmware' },
  { key: 'machine', param: 'machine', convention: 'defaults.machine', type: 'string', what: 'machine type' },
  { key: 'cpu', param: 'cpu', convention: 'defaults.cpu', type: 'string', what: 'CPU type' },
  { key: 'scsihw', param: 'scsihw', convention: 'defaults.scsi_controller', type: 'string', what: 'SCSI controller' },
  { key: 'agent', param: 'agent', convention: 'defaults.guest_agent', type: 'boolean', what: 'guest agent' },
];

const CONFIG_STEPS: ReadonlySet<EndpointName> = new Set(['qemuCreate', 'qemuUpdateConfig', 'qemuUpdateConfigAsync']);
const DISK_KEY = /^(scsi\d+|virtio\d+|sata\d+|ide\d+|efidisk0|tpmstate0)$/;
const PLACEHOLDER = /\{\{/;

function formatConvention(env: EnvironmentConfig, name: string): string {
  const value = conventionValue(name, env);
  return `${name} = ${Array.isArray(value) ? value.join(';') : String(value)}`;
}

class Adapter {
  readonly adaptations: Adaptation[] = [];
  private readonly params: Record<string, Parameter>;

  constructor(
    private readonly runbook: Runbook,
    private readonly doc: Document,
    private readonly env: EnvironmentConfig,
  ) {
    this.params = { ...runbook.parameters };
  }

  private set(path: (string | number)[], before: unknown, after: unknown, reason: string): void {
    this.doc.setIn(path, after);
    this.adaptations.push({ path: path.join('.'), before, after, reason });
  }

  /** The parameter carrying a convention, added to the runbook when it has none. */
  private paramFor(name: string, convention: string, type: Parameter['type'], description: string): string {
    const existing = Object.entries(this.params).find(([, p]) => p.convention === convention);
    if (existing) return existing[0];
    let chosen = name;
    for (let n = 2; chosen in this.params; n++) chosen = `${name}_${n}`;
    const param = { type, convention, description } as const;
    this.params[chosen] = { ...param, required: false, allocate: false };
    this.doc.setIn(['parameters', chosen], this.doc.createNode(param));
    this.adaptations.push({
      path: `parameters.${chosen}`,
      before: undefined,
      after: param,
      reason: `new parameter following ${formatConvention(this.env, convention)}`,
    });
    return chosen;
  }

  /** Parameters whose names mean a convention follow it (when this environment sets it and it fits). */
  conventionParameters(): void {
    for (const [name, p] of Object.entries(this.runbook.parameters)) {
      const convention = CONVENTION_BY_NAME[name];
      if (!convention || p.convention) continue;
      const value = conventionValue(convention, this.env);
      if (value === undefined || checkValue({ ...p, convention }, value) !== undefined) continue;
      this.params[name] = { ...p, convention };
      this.set(
        ['parameters', name, 'convention'],
        undefined,
        convention,
        `follows ${formatConvention(this.env, convention)}` +
          (p.default !== undefined ? ` instead of the runbook's default ${JSON.stringify(p.default)}` : ''),
      );
    }
  }

  /** Literal guest settings, disks, bridges and EFI keys that contradict a convention. */
  guestSettings(): void {
    this.runbook.steps.forEach((step, i) => {
      if (step.kind !== 'api') return;
      const at = (...rest: string[]) => ['steps', i, 'params', ...rest];
      if (step.api === 'qemuClone' && typeof step.params.storage === 'string') {
        this.storage(at('storage'), step.params.storage, step.params.storage);
      }
      if (!CONFIG_STEPS.has(step.api)) return;
      for (const s of SETTINGS) {
        const raw = step.params[s.key];
        const convention = conventionValue(s.convention, this.env);
        if (convention === undefined) continue;
        if (raw === undefined) {
          if (step.api !== 'qemuCreate') continue;
          const param = this.paramFor(s.param, s.convention, s.type, `${capitalize(s.what)} (cluster convention)`);
          this.set(
            at(s.key),
            undefined,
            `{{${param}}}`,
            `the cluster sets the ${s.what}: ${formatConvention(this.env, s.convention)}`,
          );
        } else if (
          !(typeof raw === 'string' && PLACEHOLDER.test(raw)) &&
          !sameSetting(s.key, raw, convention as Value)
        ) {
          const param = this.paramFor(s.param, s.convention, s.type, `${capitalize(s.what)} (cluster convention)`);
          this.set(
            at(s.key),
            raw,
            `{{${param}}}`,
            `the cluster's ${s.what} is ${formatConvention(this.env, s.convention)}`,
          );
        }
      }
      for (const [key, raw] of Object.entries(step.params)) {
        if (typeof raw !== 'string') continue;
        if (DISK_KEY.test(key)) this.disk(at(key), key, raw);
        if (/^net\d+$/.test(key)) this.bridge(at(key), raw);
      }
    });
  }

  private storage(
    path: (string | number)[],
    raw: string,
    sid: string,
    rebuild = (param: string) => `{{${param}}}`,
  ): void {
    const convention = this.env.defaults.storage;
    if (PLACEHOLDER.test(sid) || sid === convention) return;
    const param = this.paramFor(
      'storage',
      'defaults.storage',
      'storage',
      'Storage for the guest’s disks (cluster convention)',
    );
    this.set(path, raw, rebuild(param), `disks go to the cluster's storage: defaults.storage = ${convention}`);
  }

  private disk(path: (string | number)[], key: string, raw: string): void {
    const [volume = '', ...options] = raw.split(',');
    const m = /^([a-z][a-z0-9\-_.]*[a-z0-9]):(.*)$/i.exec(volume);
    const isCdrom = options.includes('media=cdrom') || /:(iso|vztmpl|import)\//.test(volume);
    let value = raw;
    if (m && !isCdrom) {
      this.storage(
        path,
        raw,
        m[1]!,
        (param) => (value = `{{${param}}}:${m[2]}${options.length ? `,${options.join(',')}` : ''}`),
      );
    }
    if (key !== 'efidisk0') return;
    const keys = /(^|,)pre-enrolled-keys=([01])(,|$)/.exec(value);
    const wanted = this.env.defaults.efidisk_pre_enrolled_keys ? '1' : '0';
    if (keys && keys[2] !== wanted) {
      const param = this.paramFor(
        'pre_enrolled_keys',
        'defaults.efidisk_pre_enrolled_keys',
        'boolean',
        'Pre-enroll Secure Boot keys (cluster convention)',
      );
      const before = value;
      value = value.replace(/pre-enrolled-keys=[01]/, `pre-enrolled-keys={{${param}}}`);
      this.set(
        path,
        before,
        value,
        `EFI disks follow defaults.efidisk_pre_enrolled_keys = ${this.env.defaults.efidisk_pre_enrolled_keys}`,
      );
    }
  }

  private bridge(path: (string | number)[], raw: string): void {
    const m = /(^|,)bridge=([^,]+)/.exec(raw);
    const bridge = m?.[2];
    const convention = this.env.defaults.network_bridge;
    if (!bridge || PLACEHOLDER.test(bridge) || bridge === convention) return;
    const param = this.paramFor(
      'bridge',
      'defaults.network_bridge',
      'bridge',
      'Bridge of the NIC (cluster convention)',
    );
    this.set(
      path,
      raw,
      raw.replace(/bridge=[^,]+/, `bridge={{${param}}}`),
      `NICs go on the cluster's bridge: defaults.network_bridge = ${convention}`,
    );
  }

  /** Cloud images named `.img` are qcow2 inside; PVE refuses `.img` for content=import. */
  importFileNames(): void {
    this.runbook.steps.forEach((step, i) => {
      if (step.kind !== 'api' || step.api !== 'storageDownloadUrl' || step.params.content !== 'import') return;
      const name = step.params.filename;
      if (typeof name !== 'string' || PLACEHOLDER.test(name) || !/\.img$/.test(name)) return;
      const renamed = name.replace(/\.img$/, '.qcow2');
      this.set(
        ['steps', i, 'params', 'filename'],
        name,
        renamed,
        'PVE refuses .img names for content=import; the image is qcow2 inside',
      );
      this.replaceEverywhere(`:import/${name}`, `:import/${renamed}`, 'refers to the renamed download');
    });
  }

  /** The VMID range a runbook's new guests belong to: templates when it makes one. */
  private range(): 'templates' | 'vms' {
    return this.runbook.steps.some((s) => s.kind === 'api' && s.api === 'qemuTemplate') ? 'templates' : 'vms';
  }

  /** VMID parameters get this cluster's range; a default outside it gives way to allocation. */
  vmidParameters(): void {
    const range = this.range();
    const { min, max } = this.env.vmid_ranges[range];
    for (const [name, p] of Object.entries(this.runbook.parameters)) {
      if (p.type !== 'vmid' || p.range) continue;
      this.params[name] = { ...p, range };
      this.set(
        ['parameters', name, 'range'],
        undefined,
        range,
        `new guests take VMIDs from this cluster's ${range} range ${min}-${max}`,
      );
      const fallback = p.default;
      if (typeof fallback === 'number' && (fallback < min || fallback > max) && !p.required) {
        this.doc.deleteIn(['parameters', name, 'default']);
        this.adaptations.push({
          path: `parameters.${name}.default`,
          before: fallback,
          after: undefined,
          reason: `VMID ${fallback} is outside ${min}-${max}; the next free one is taken instead`,
        });
        this.params[name] = { ...p, range, allocate: true };
        this.set(['parameters', name, 'allocate'], undefined, true, 'allocated when no VMID is given');
      }
    }
  }

  /** A literal VMID outside this cluster's range becomes an allocated VMID parameter. */
  vmids(): void {
    const range = this.range();
    const { min, max } = this.env.vmid_ranges[range];
    this.runbook.steps.forEach((step, i) => {
      if (step.kind !== 'api') return;
      const key =
        step.api === 'qemuClone' ? 'newid' : step.api === 'qemuCreate' || step.api === 'lxcCreate' ? 'vmid' : undefined;
      const raw = key ? step.params[key] : undefined;
      if (key === undefined || raw === undefined || (typeof raw === 'string' && PLACEHOLDER.test(raw))) return;
      const literal = Number(raw);
      if (!Number.isInteger(literal) || (literal >= min && literal <= max)) return;
      if ('vmid' in this.params) return;
      const param = {
        type: 'vmid',
        range,
        allocate: true,
        description: `VMID, taken from the ${range} range (${min}-${max})`,
      } as const;
      this.params.vmid = { ...param, required: false };
      this.doc.setIn(['parameters', 'vmid'], this.doc.createNode(param));
      this.adaptations.push({
        path: 'parameters.vmid',
        before: undefined,
        after: param,
        reason: `VMID ${literal} is outside this cluster's ${range} range ${min}-${max}`,
      });
      this.set(['steps', i, 'params', key], raw, '{{vmid}}', `the next free VMID in ${min}-${max} replaces ${literal}`);
      this.replaceVmid(literal);
    });
  }

  private replaceVmid(literal: number): void {
    const word = new RegExp(`\\b${literal}\\b`, 'g');
    this.forEachStep((step, at) => {
      if (step.kind === 'api') {
        for (const key of ['vmid', 'newid']) {
          const raw = step.params[key];
          if (raw !== undefined && Number(raw) === literal && this.doc.getIn([...at, 'params', key]) !== '{{vmid}}') {
            this.set([...at, 'params', key], raw, '{{vmid}}', `follows the allocated VMID (was ${literal})`);
          }
        }
      }
      const command = step.kind === 'ssh' ? this.doc.getIn([...at, 'ssh', 'command']) : undefined;
      if (typeof command === 'string' && word.test(command)) {
        this.set(
          [...at, 'ssh', 'command'],
          command,
          command.replace(word, '{{vmid}}'),
          `follows the allocated VMID (was ${literal})`,
        );
      }
      word.lastIndex = 0;
    });
  }

  private replaceEverywhere(from: string, to: string, reason: string): void {
    this.forEachStep((step, at) => {
      const strings: [string[], unknown][] =
        step.kind === 'api'
          ? Object.entries(step.params).map(([k, v]) => [['params', k], this.doc.getIn([...at, 'params', k]) ?? v])
          : step.kind === 'ssh'
            ? [[['ssh', 'command'], this.doc.getIn([...at, 'ssh', 'command'])]]
            : [];
      for (const [path, value] of strings) {
        if (typeof value === 'string' && value !== from && value.includes(from)) {
          this.set([...at, ...path], value, value.replaceAll(from, to), reason);
        }
      }
    });
  }

  private forEachStep(fn: (step: Runbook['steps'][number], at: (string | number)[]) => void): void {
    this.runbook.steps.forEach((s, i) => fn(s, ['steps', i]));
    this.runbook.cleanup.forEach((s, i) => fn(s, ['cleanup', i]));
  }
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** PVE writes `agent: 1` and `agent: enabled=1` alike. */
function sameSetting(key: string, raw: Value, convention: Value): boolean {
  if (key !== 'agent') return String(raw) === String(convention);
  const enabled = raw === true || raw === 1 || /^(1|enabled=1)(,|$)/.test(String(raw));
  return enabled === convention;
}

export function adaptRunbook(
  file: RunbookFile,
  markdown: string,
  env: EnvironmentConfig,
  source = '(submitted)',
): AdaptedRunbook {
  const doc = file.document.clone();
  const adapter = new Adapter(file.runbook, doc, env);
  adapter.conventionParameters();
  adapter.guestSettings();
  adapter.importFileNames();
  adapter.vmidParameters();
  adapter.vmids();
  if (adapter.adaptations.length === 0) return { runbook: file.runbook, markdown, adaptations: [], diff: '' };
  const adapted = formatRunbookMarkdown(doc, file.body, markdown);
  const reparsed = parseRunbookMarkdown(adapted, `${source}, as adapted`);
  return {
    runbook: reparsed.runbook,
    markdown: adapted,
    adaptations: adapter.adaptations,
    diff: unifiedDiff(markdown, adapted, {
      from: `${file.runbook.name}.md (submitted)`,
      to: `${file.runbook.name}.md (adapted)`,
    }),
  };
}
