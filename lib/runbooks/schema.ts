/**
 * The runbook format: the one schema for a runbook's front matter (the `_template.md` format
 * made machine-readable). A runbook stays readable markdown; its parameters and steps live
 * in the front matter so one generic workflow can run it.
 *
 * Every problem is reported as `path: reason`, e.g.
 * `steps.3.params.scsihw: value 'lsi9' does not have a value in the enumeration '...'`.
 */
import { z } from 'zod';
import { Duration } from '../config/schema.js';
import { type EndpointName, endpoints } from '../pve/registry.js';
import { conditionNames, ConditionSyntaxError, parseCondition } from './conditions.js';
import { conventionDef, knownConventions, type ConventionKind } from './conventions.js';
import { placeholdersIn } from './placeholders.js';
import { linearRegExp, regexProblem } from './safe-regex.js';

/** Values every runbook may use without declaring them. */
const BUILTIN_VARS = {
  operation_id: 'the operation (workflow) id running the runbook',
  environment: 'the environment the runbook runs in',
  pve_version: "the PVE version of the step's node, e.g. 9.1.2",
} as const;

export const RUNBOOK_NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const IDENT = /^[a-z][a-z0-9_]*$/;
const STEP_ID = /^[a-z][a-z0-9-]*$/;

/** Endpoints that take something away; a step calling one on a guest must name the guest it expects. */
export const DESTRUCTIVE_ENDPOINTS: ReadonlySet<EndpointName> = new Set<EndpointName>([
  'qemuDestroy',
  'lxcDestroy',
  'qemuStop',
  'lxcStop',
  'qemuSnapshotRollback',
  'lxcSnapshotRollback',
  'qemuSnapshotDelete',
  'lxcSnapshotDelete',
  'storageDeleteVolume',
]);

const PARAMETER_TYPES = [
  'string',
  'integer',
  'boolean',
  'enum',
  'vmid',
  'node',
  'storage',
  'bridge',
  'url',
  'checksum',
  'dns_name',
  'tags',
  'public_keys',
] as const;
type ParameterType = (typeof PARAMETER_TYPES)[number];

/** Which conventions fit which parameter types. */
const CONVENTION_KINDS: Record<ParameterType, readonly ConventionKind[]> = {
  string: ['string'],
  enum: ['string'],
  dns_name: ['string'],
  bridge: ['string'],
  storage: ['string'],
  integer: ['integer'],
  boolean: ['boolean'],
  tags: ['tags'],
  public_keys: ['file'],
  vmid: [],
  node: [],
  url: [],
  checksum: [],
};

const Scalar = z.union([z.string(), z.number(), z.boolean()]);

export const Parameter = z.strictObject({
  type: z.enum(PARAMETER_TYPES),
  description: z.string().min(1, 'say what the parameter is for'),
  required: z.boolean().default(false),
  default: z.union([Scalar, z.array(z.string())]).optional(),
  /** A cluster convention (cluster-config.yaml) that supplies the value unless the operator gives one. */
  convention: z.string().optional(),
  /** enum: the allowed values. */
  values: z.array(z.string().min(1)).min(1).optional(),
  /** vmid: which configured range the VMID must lie in. */
  range: z.enum(['templates', 'vms']).optional(),
  /** vmid: when no value is given, the next free VMID in `range` is taken while applying. */
  allocate: z.boolean().default(false),
  /** integer bounds. */
  min: z.number().int().optional(),
  max: z.number().int().optional(),
  /** string: a regex the whole value must match. */
  pattern: z.string().optional(),
});
export type Parameter = z.output<typeof Parameter>;

const Regex = z.string().min(1);

const common = {
  id: z.string().regex(STEP_ID, 'must be a step id such as create-vm (lowercase, digits, dashes)'),
  description: z.string().min(1, 'say what the step does'),
  when: z.string().optional(),
  unless: z.string().optional(),
  /** How long the step may take (SSH commands, playbooks). */
  timeout: Duration.optional(),
};

const ApiStep = z.strictObject({
  ...common,
  kind: z.literal('api'),
  /** An endpoint of lib/pve/registry.ts, by name. */
  api: z.enum(Object.keys(endpoints) as [EndpointName, ...EndpointName[]], {
    error: (iss) => `unknown PVE endpoint '${String(iss.input)}' (see lib/pve/registry.ts)`,
  }),
  params: z.record(z.string(), Scalar).default({}),
  expect: z
    .strictObject({
      /** Tasks must end OK (or with warnings); stated for readers, it is always checked. */
      task: z.literal('ok').optional(),
      /** A regex the JSON answer of a synchronous call must match; named groups become variables. */
      output: Regex.optional(),
    })
    .default({}),
  /** For destructive calls on a guest: the name the guest must have, checked right before acting. */
  verify: z.strictObject({ name: z.string().min(1) }).optional(),
});

const ShellExpect = z
  .strictObject({
    exit: z.number().int().min(0).max(255).default(0),
    /** A regex stdout must match; named groups (`(?<disk>...)`) become variables for later steps. */
    output: Regex.optional(),
  })
  .default({ exit: 0 });

const SshStep = z.strictObject({
  ...common,
  kind: z.literal('ssh'),
  /** A command on a PVE node, as the configured SSH user; parameter values are shell-quoted. */
  ssh: z.strictObject({ node: z.string().min(1), command: z.string().min(1) }),
  expect: ShellExpect,
});

const GuestStep = z.strictObject({
  ...common,
  kind: z.literal('guest'),
  /** A command inside a VM, over SSH to the address its guest agent reports. */
  guest: z.strictObject({
    vmid: z.union([z.number().int(), z.string()]),
    user: z.string().min(1),
    command: z.string().min(1),
    /** The guest's pinned SSH host key (SHA256:...): guests are never trusted on first use. */
    host_key: z.string().min(1),
  }),
  expect: ShellExpect,
});

const AnsibleStep = z.strictObject({
  ...common,
  kind: z.literal('ansible'),
  /** A playbook of the environment's `ansible.fleet_infra_path`, run with its inventory; never edited. */
  ansible: z.strictObject({
    playbook: z
      .string()
      .regex(/^(?!\/)(?!.*(^|\/)\.\.(\/|$)).+\.ya?ml$/, 'must be a .yaml/.yml path inside the fleet-infra repository'),
    limit: z.string().optional(),
    tags: z.array(z.string().regex(/^[A-Za-z0-9_-]+$/)).optional(),
    extra_vars: z.record(z.string().regex(IDENT, 'must be a variable name'), Scalar).optional(),
  }),
  expect: ShellExpect,
});

const STEP_KINDS = ['api', 'ssh', 'guest', 'ansible'] as const;

/** A step is whichever of `api`, `ssh`, `guest`, `ansible` it has; exactly one. */
function withKind(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  const present = STEP_KINDS.filter((k) => k in value);
  return present.length === 1 ? { ...value, kind: present[0] } : value;
}

const stepKindError = `a step needs exactly one of ${STEP_KINDS.join(', ')}`;
const AnyStep = z.preprocess(
  withKind,
  z.discriminatedUnion('kind', [ApiStep, SshStep, GuestStep, AnsibleStep], { error: stepKindError }),
);

const cleanupFields = {
  /** The step this cleans up after: it runs only if that step completed. */
  after: z.string().regex(STEP_ID, 'must name a step'),
  /** `failure`: when a later step fails (saga compensation); `always`: also after success. */
  on: z.enum(['failure', 'always']).default('failure'),
};

const CleanupStep = z.preprocess(
  withKind,
  z.discriminatedUnion(
    'kind',
    [
      ApiStep.extend(cleanupFields),
      SshStep.extend(cleanupFields),
      GuestStep.extend(cleanupFields),
      AnsibleStep.extend(cleanupFields),
    ],
    { error: stepKindError },
  ),
);

const RunbookObject = z.strictObject({
  name: z.string().regex(RUNBOOK_NAME, 'must be lowercase letters, digits and dashes (it names the file)'),
  description: z.string().min(1),
  image_type: z.enum(['cloudinit', 'nocloud', 'iso', 'qcow2', 'raw', 'pxe', 'none']),
  requires: z.array(z.enum(STEP_KINDS)).min(1),
  parameters: z
    .record(z.string().regex(IDENT, 'parameter names are lowercase identifiers such as image_url'), Parameter)
    .default({}),
  steps: z.array(AnyStep).min(1, 'a runbook needs at least one step'),
  cleanup: z.array(CleanupStep).default([]),
  notes: z.union([z.string(), z.array(z.string())]).optional(),
});

export type Runbook = z.output<typeof RunbookObject>;
export type StepDef = Runbook['steps'][number];
export type CleanupDef = Runbook['cleanup'][number];

// ---------------------------------------------------------------------------------------------
// Checks that span fields.

type Issue = (path: (string | number)[], message: string) => void;

/** The strings of a step that may hold placeholders, with where they are and how they are used. */
function stepTemplates(step: StepDef): { path: (string | number)[]; text: string; regex?: boolean }[] {
  const out: { path: (string | number)[]; text: string; regex?: boolean }[] = [];
  const add = (path: (string | number)[], value: unknown, regex = false) => {
    if (typeof value === 'string') out.push({ path, text: value, regex });
  };
  switch (step.kind) {
    case 'api':
      for (const [k, v] of Object.entries(step.params)) add(['params', k], v);
      add(['verify', 'name'], step.verify?.name);
      break;
    case 'ssh':
      add(['ssh', 'node'], step.ssh.node);
      add(['ssh', 'command'], step.ssh.command);
      break;
    case 'guest':
      for (const k of ['vmid', 'user', 'command', 'host_key'] as const) add(['guest', k], step.guest[k]);
      break;
    case 'ansible':
      add(['ansible', 'limit'], step.ansible.limit);
      for (const [k, v] of Object.entries(step.ansible.extra_vars ?? {})) add(['ansible', 'extra_vars', k], v);
      break;
  }
  add(['expect', 'output'], step.expect.output, true);
  return out;
}

/** Variables a step's expected output captures (its regex's named groups). */
export function capturesOf(step: StepDef): string[] {
  const output = step.expect.output;
  return output ? [...output.matchAll(/\(\?<([A-Za-z_][A-Za-z0-9_]*)>/g)].map((m) => m[1]!) : [];
}

function checkParameters(params: Record<string, Parameter>, issue: Issue): void {
  const allocated = Object.entries(params).filter(([, p]) => p.allocate);
  if (allocated.length > 1) issue(['parameters'], 'only one parameter may be allocated');
  for (const [name, p] of Object.entries(params)) {
    const at = (...rest: string[]) => ['parameters', name, ...rest];
    if (name in BUILTIN_VARS) issue(at(), `'${name}' is a built-in value and cannot be a parameter`);
    if (p.type === 'enum' && !p.values) issue(at('values'), 'an enum parameter lists its values');
    if (p.type !== 'enum' && p.values) issue(at('values'), 'only enum parameters list values');
    if (p.type !== 'vmid' && (p.range || p.allocate))
      issue(at(p.range ? 'range' : 'allocate'), 'only vmid parameters have a range or are allocated');
    if (p.type === 'vmid' && p.allocate && !p.range)
      issue(at('range'), 'an allocated vmid needs the range to allocate from');
    if (p.allocate && (p.required || p.default !== undefined))
      issue(at('allocate'), 'an allocated vmid has no default and is not required');
    if (p.type !== 'integer' && (p.min !== undefined || p.max !== undefined))
      issue(at('min'), 'only integer parameters have bounds');
    if (p.type !== 'string' && p.pattern) issue(at('pattern'), 'only string parameters have a pattern');
    const patternProblem = p.pattern === undefined ? undefined : regexProblem(p.pattern);
    if (patternProblem) issue(at('pattern'), patternProblem);
    if (p.required && p.default !== undefined) issue(at('default'), 'a required parameter has no default');
    if (p.convention !== undefined) {
      const def = conventionDef(p.convention);
      if (!def)
        issue(at('convention'), `unknown convention '${p.convention}' (known: ${knownConventions().join(', ')})`);
      else if (!CONVENTION_KINDS[p.type].includes(def.kind)) {
        issue(
          at('convention'),
          `${p.convention} holds ${def.kind === 'file' ? 'a file path' : `a ${def.kind}`}, which does not fit ${/^[aeiou]/.test(p.type) ? 'an' : 'a'} ${p.type} parameter`,
        );
      }
    }
    if (p.default !== undefined) {
      const problem = checkValue(p, p.default);
      if (problem) issue(at('default'), problem);
    }
  }
}

const URL_RE = /^https?:\/\/[^\s/$.?#].[^\s]*$/i;
const DNS_NAME = /^(([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)\.)*([a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?)$/;
const TAG = /^[a-z0-9_][a-z0-9_\-+.]*$/i;

/**
 * Why a value does not fit a parameter, or undefined when it does. Range and cluster checks
 * (vmid ranges, node and storage names) need the environment and happen when resolving.
 */
export function checkValue(p: Parameter, value: unknown): string | undefined {
  const isString = typeof value === 'string';
  switch (p.type) {
    case 'integer':
    case 'vmid': {
      if (typeof value !== 'number' || !Number.isInteger(value)) return 'must be an integer';
      if (p.type === 'vmid' && (value < 100 || value > 999_999_999)) return 'must be a VMID (100-999999999)';
      if (p.min !== undefined && value < p.min) return `must be at least ${p.min}`;
      if (p.max !== undefined && value > p.max) return `must be at most ${p.max}`;
      return undefined;
    }
    case 'boolean':
      return typeof value === 'boolean' ? undefined : 'must be true or false';
    case 'tags':
      if (!Array.isArray(value) || !value.every((t) => typeof t === 'string')) return 'must be a list of tags';
      return value.find((t) => !TAG.test(t)) === undefined
        ? undefined
        : 'holds a tag PVE would refuse (letters, digits, _ - + . only)';
    case 'enum':
      return isString && p.values?.includes(value) ? undefined : `must be one of ${p.values?.join(', ')}`;
    case 'string':
      if (!isString) return 'must be a string';
      return p.pattern && !linearRegExp(`^(?:${p.pattern})$`).test(value) ? `must match ${p.pattern}` : undefined;
    case 'node':
      return isString && /^[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?$/.test(value) ? undefined : 'must be a PVE node name';
    case 'storage':
      return isString && /^[a-z][a-z0-9\-_.]*[a-z0-9]$/i.test(value) ? undefined : 'must be a PVE storage id';
    case 'bridge':
      return isString && /^[a-zA-Z][a-zA-Z0-9_.-]{0,15}$/.test(value)
        ? undefined
        : 'must be a bridge name such as vmbr0';
    case 'url':
      return isString && URL_RE.test(value) ? undefined : 'must be an http(s) URL';
    case 'checksum':
      return isString && /^[0-9a-f]{32,128}$/i.test(value) ? undefined : 'must be a hex checksum';
    case 'dns_name':
      return isString && DNS_NAME.test(value) ? undefined : 'must be a DNS name (letters, digits, dashes, dots)';
    case 'public_keys':
      return isString && value.split('\n').every((l) => l.trim() === '' || /^(ssh|ecdsa|sk)-\S+ \S+/.test(l.trim()))
        ? undefined
        : 'must be SSH public keys, one per line';
  }
}

function checkStep(
  step: StepDef,
  at: (string | number)[],
  known: ReadonlySet<string>,
  params: Record<string, Parameter>,
  issue: Issue,
): void {
  for (const { path, text, regex } of stepTemplates(step)) {
    for (const name of placeholdersIn(text)) {
      if (!known.has(name))
        issue([...at, ...path], `unknown placeholder {{${name}}} (not a parameter, built-in or earlier capture)`);
    }
    const problem = regex ? regexProblem(text.replace(/\{\{\s*[a-z][a-z0-9_]*\s*\}\}/g, 'x')) : undefined;
    if (problem) issue([...at, ...path], problem);
  }
  for (const key of ['when', 'unless'] as const) {
    const text = step[key];
    if (text === undefined) continue;
    try {
      const { names, storages } = conditionNames(parseCondition(text));
      for (const name of names) {
        if (!(name in params) && !(name in BUILTIN_VARS))
          issue([...at, key], `unknown name '${name}' (not a parameter or built-in)`);
      }
      for (const name of storages) {
        if (name in params && params[name]!.type !== 'storage')
          issue([...at, key], `'${name}' is not a storage parameter, so it cannot 'support' content`);
      }
    } catch (err) {
      if (!(err instanceof ConditionSyntaxError)) throw err;
      issue([...at, key], err.message);
    }
  }
  for (const name of capturesOf(step)) {
    if (!IDENT.test(name)) issue([...at, 'expect', 'output'], `capture '${name}' must be a lowercase identifier`);
    if (name in params || name in BUILTIN_VARS)
      issue([...at, 'expect', 'output'], `capture '${name}' would hide the parameter of that name`);
  }
  if (step.kind === 'api') {
    const endpoint = endpoints[step.api];
    const shape = endpoint.params.shape as Record<string, unknown>;
    for (const key of Object.keys(step.params)) {
      if (!(key in shape)) issue([...at, 'params', key], `${step.api} has no parameter '${key}'`);
    }
    if (step.expect.task && !endpoint.async)
      issue([...at, 'expect', 'task'], `${step.api} answers at once; it starts no task`);
    if (step.expect.output && endpoint.async)
      issue([...at, 'expect', 'output'], `${step.api} answers with a task id; match its outcome with expect.task`);
    if (DESTRUCTIVE_ENDPOINTS.has(step.api) && 'vmid' in shape && !step.verify) {
      issue(
        [...at, 'verify'],
        `${step.api} is destructive: name the guest it expects (verify.name) so vmid and name are checked first`,
      );
    }
  } else if ('verify' in step && step.verify !== undefined) {
    issue([...at, 'verify'], 'only API steps verify a guest');
  }
}

function crossCheck(rb: Runbook, ctx: z.RefinementCtx): void {
  const issue: Issue = (path, message) => ctx.addIssue({ code: 'custom', path, message });
  const { steps, cleanup } = rb;
  checkParameters(rb.parameters, issue);

  const ids = new Map<string, number>();
  const known = new Set([...Object.keys(rb.parameters), ...Object.keys(BUILTIN_VARS)]);
  const knownAfter = new Map<string, Set<string>>();
  steps.forEach((step, i) => {
    if (ids.has(step.id)) issue(['steps', i, 'id'], `duplicate step id '${step.id}'`);
    ids.set(step.id, i);
    checkStep(step, ['steps', i], known, rb.parameters, issue);
    for (const c of capturesOf(step)) known.add(c);
    knownAfter.set(step.id, new Set(known));
  });
  cleanup.forEach((step, i) => {
    if (ids.has(step.id)) issue(['cleanup', i, 'id'], `duplicate step id '${step.id}'`);
    const scope = knownAfter.get(step.after);
    if (!scope) issue(['cleanup', i, 'after'], `no step '${step.after}' to clean up after`);
    checkStep(step, ['cleanup', i], scope ?? known, rb.parameters, issue);
  });

  const used = new Set([...steps, ...cleanup].map((s) => s.kind));
  for (const kind of used) {
    if (!rb.requires.includes(kind)) {
      const first = [...steps, ...cleanup].find((s) => s.kind === kind)!;
      issue(['requires'], `steps use ${kind} (step ${first.id}) but requires does not list it`);
    }
  }
  for (const [i, kind] of rb.requires.entries()) {
    if (!used.has(kind)) issue(['requires', i], `lists ${kind} but no step uses it`);
  }
}

export const RunbookSchema = RunbookObject.superRefine(crossCheck);
