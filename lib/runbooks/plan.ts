/**
 * From a runbook, its resolved parameters and facts read from the cluster to the concrete
 * steps an approver reviews: conditions decided, placeholders filled in (except values only
 * known while applying: an allocated VMID, output captured by an earlier step), and every
 * API call checked with PVE's own parameter rules before anything is sent.
 */
import { durationMs } from '../config/duration.js';
import type { EnvironmentConfig } from '../config/schema.js';
import { decodeFormParams, type Method } from '../pve/endpoint.js';
import { secretParams } from '../pve/params.js';
import { type EndpointName, endpoints } from '../pve/registry.js';
import { encodeValue } from '../pve/params.js';
import { evaluateCondition, parseCondition } from './conditions.js';
import type { ResolvedParameters } from './parameters.js';
import { renderParam, renderString, UnresolvedPlaceholderError, type Value, type Vars } from './placeholders.js';
import { capturesOf, DESTRUCTIVE_ENDPOINTS, type CleanupDef, type Runbook, type StepDef } from './schema.js';

/** What planning reads from the cluster about the node a runbook runs on. */
export interface RunbookFacts {
  node: string;
  /** e.g. `9.1.2` */
  pveVersion: string;
  /** Storages available on the node, with the content types each is configured for. */
  storages: Record<string, readonly string[]>;
}

interface StepBase {
  id: string;
  description: string;
  /** Placeholders still to fill in while applying. */
  pending: string[];
  /** Variables the step captures from its output (named groups of `expectOutput`). */
  captures: string[];
  expectOutput?: string;
  timeoutMs: number;
}

export type ResolvedStep =
  | (StepBase & {
      kind: 'api';
      api: EndpointName;
      method: Method;
      params: Record<string, Value>;
      /** Returns a task to wait for. */
      async: boolean;
      destructive: boolean;
      verifyName?: string;
    })
  | (StepBase & { kind: 'ssh'; node: string; command: string; expectExit: number })
  | (StepBase & { kind: 'guest'; vmid: string; user: string; command: string; hostKey: string; expectExit: number })
  | (StepBase & {
      kind: 'ansible';
      playbook: string;
      limit?: string;
      tags?: string[];
      extraVars?: Record<string, Value>;
      expectExit: number;
    });

type WithoutPending<S> = S extends unknown ? Omit<S, 'pending'> : never;

export type ResolvedCleanup = ResolvedStep & { after: string; on: 'failure' | 'always' };

export interface RunbookPlan {
  steps: ResolvedStep[];
  cleanup: ResolvedCleanup[];
  /** Steps whose condition did not hold, and why. */
  skipped: { id: string; why: string }[];
  /** Values known so far (parameters and built-ins); the apply phase adds allocations and captures. */
  vars: Record<string, Value>;
  /** The VMID taken while applying: which parameter, from which range, by which create step. */
  allocate?: NonNullable<ResolvedParameters['allocate']> & { step: string; param: 'vmid' | 'newid' };
  risk: 'low' | 'medium' | 'high';
  reasons: string[];
}

export class PlanError extends Error {
  constructor(readonly issues: readonly string[]) {
    super(`the runbook cannot run here:\n${issues.map((i) => `  ${i}`).join('\n')}`);
    this.name = 'PlanError';
  }
}

const DEFAULT_TIMEOUT_MS = { api: 2 * 3_600_000, ssh: 15 * 60_000, guest: 15 * 60_000, ansible: 60 * 60_000 } as const;

/** The node a runbook acts on: its `node` parameter, else its first node parameter, else the first configured node. */
export function runbookNode(runbook: Runbook, params: ResolvedParameters, env: EnvironmentConfig): string {
  const nodeParams = Object.entries(runbook.parameters).filter(([, p]) => p.type === 'node');
  const chosen = nodeParams.find(([n]) => n === 'node') ?? nodeParams[0];
  const value = chosen ? params.values[chosen[0]] : undefined;
  return value === undefined ? env.cluster.nodes[0]!.name : String(value);
}

export function planRunbook(
  runbook: Runbook,
  params: ResolvedParameters,
  facts: RunbookFacts,
  builtins: { operation_id: string; environment: string },
): RunbookPlan {
  const issues: string[] = [];
  const vars: Record<string, Value> = { ...params.values, ...builtins, pve_version: facts.pveVersion };
  const optional = new Set(params.unset);
  const later = new Set<string>(params.allocate ? [params.allocate.name] : []);
  const conditionFacts = {
    values: vars,
    storageContent: (storage: string) => facts.storages[storage],
  };

  for (const [name, p] of Object.entries(runbook.parameters)) {
    const value = params.values[name];
    if (p.type === 'storage' && value !== undefined && !facts.storages[String(value)]) {
      issues.push(
        `parameters.${name}: storage '${value}' is not available on node ${facts.node} (available: ${Object.keys(facts.storages).join(', ') || 'none'})`,
      );
    }
  }

  const skipped: RunbookPlan['skipped'] = [];
  const runs = (step: StepDef): boolean => {
    try {
      if (step.when && !evaluateCondition(parseCondition(step.when), conditionFacts)) {
        skipped.push({ id: step.id, why: `when: ${step.when}` });
        return false;
      }
      if (step.unless && evaluateCondition(parseCondition(step.unless), conditionFacts)) {
        skipped.push({ id: step.id, why: `unless: ${step.unless}` });
        return false;
      }
      return true;
    } catch (err) {
      issues.push(`steps.${step.id}: ${(err as Error).message}`);
      return false;
    }
  };

  const steps: ResolvedStep[] = [];
  for (const def of runbook.steps) {
    if (!runs(def)) continue;
    const step = resolveStep(def, vars, later, optional, issues);
    if (step) steps.push(step);
    for (const c of capturesOf(def)) later.add(c);
  }
  const ran = new Set(steps.map((s) => s.id));
  const cleanup: ResolvedCleanup[] = [];
  for (const def of runbook.cleanup) {
    if (!ran.has(def.after) || !runs(def)) continue;
    const step = resolveStep(def, vars, later, optional, issues);
    if (step) cleanup.push({ ...step, after: (def as CleanupDef).after, on: (def as CleanupDef).on });
  }
  const allocate = params.allocate ? allocatingStep(params.allocate, steps, issues) : undefined;
  if (issues.length > 0) throw new PlanError(issues);

  const destructive = steps.filter((s) => s.kind === 'api' && s.destructive);
  const changing = steps.filter((s) => s.kind !== 'api' || s.method !== 'GET');
  const reasons = [
    ...destructive.map((s) => `step ${s.id} is destructive (${s.kind === 'api' ? s.api : s.kind})`),
    ...(changing.some((s) => s.kind === 'ssh') ? ['runs commands on PVE nodes over SSH'] : []),
    ...(changing.some((s) => s.kind === 'ansible') ? ['runs Ansible playbooks'] : []),
    ...(changing.length > 0 && destructive.length === 0 ? ['creates or changes cluster resources'] : []),
  ];
  return {
    steps,
    cleanup,
    skipped,
    vars,
    ...(allocate ? { allocate } : {}),
    risk: destructive.length > 0 ? 'high' : changing.length > 0 ? 'medium' : 'low',
    reasons: reasons.length > 0 ? reasons : ['only reads'],
  };
}

/** Steps that create a guest under a VMID they are given, and the parameter carrying it. */
const CREATES: Partial<Record<EndpointName, 'vmid' | 'newid'>> = {
  qemuCreate: 'vmid',
  lxcCreate: 'vmid',
  qemuClone: 'newid',
};

/**
 * An allocated VMID is taken by the first step that uses it, which must create the guest:
 * PVE refuses to create an existing VMID, which is what makes taking the next free one safe.
 */
function allocatingStep(
  allocate: NonNullable<ResolvedParameters['allocate']>,
  steps: ResolvedStep[],
  issues: string[],
): RunbookPlan['allocate'] {
  const first = steps.find((s) => s.pending.includes(allocate.name));
  if (!first) return undefined;
  const param = first.kind === 'api' ? CREATES[first.api] : undefined;
  const placeholder = new RegExp(`^\\{\\{\\s*${allocate.name}\\s*\\}\\}$`);
  if (first.kind !== 'api' || !param || !placeholder.test(String(first.params[param] ?? ''))) {
    issues.push(
      `steps.${first.id}: uses {{${allocate.name}}} before a step creates the guest with it (the first use must be ` +
        `qemuCreate/lxcCreate with vmid: '{{${allocate.name}}}' or qemuClone with newid: '{{${allocate.name}}}')`,
    );
    return undefined;
  }
  return { ...allocate, step: first.id, param };
}

function resolveStep(
  def: StepDef,
  vars: Vars,
  later: ReadonlySet<string>,
  optional: ReadonlySet<string>,
  issues: string[],
): ResolvedStep | undefined {
  const pending = new Set<string>();
  const at = `steps.${def.id}`;
  const text = (value: string, path: string, context: 'text' | 'shell' | 'regex' = 'text'): string => {
    try {
      const out = renderString(value, vars, context, later);
      for (const m of out.matchAll(/\{\{\s*([a-z][a-z0-9_]*)\s*\}\}/g)) pending.add(m[1]!);
      return out;
    } catch (err) {
      if (!(err instanceof UnresolvedPlaceholderError)) throw err;
      issues.push(
        `${at}.${path}: ${err.message} (an optional parameter left unset can only stand alone as an API parameter)`,
      );
      return value;
    }
  };
  const expectOutput = def.expect.output === undefined ? undefined : text(def.expect.output, 'expect.output', 'regex');
  const base = {
    id: def.id,
    description: def.description,
    captures: capturesOf(def),
    ...(expectOutput === undefined ? {} : { expectOutput }),
    timeoutMs: def.timeout ? durationMs(def.timeout) : DEFAULT_TIMEOUT_MS[def.kind],
  };
  const done = (step: WithoutPending<ResolvedStep>): ResolvedStep =>
    ({ ...step, pending: [...pending] }) as ResolvedStep;

  switch (def.kind) {
    case 'api': {
      const endpoint = endpoints[def.api];
      const params: Record<string, Value> = {};
      for (const [key, raw] of Object.entries(def.params)) {
        try {
          const value = renderParam(raw, vars, later, optional);
          if (value === undefined) continue;
          params[key] = value;
          if (typeof value === 'string')
            for (const m of value.matchAll(/\{\{\s*([a-z][a-z0-9_]*)\s*\}\}/g)) pending.add(m[1]!);
        } catch (err) {
          if (!(err instanceof UnresolvedPlaceholderError)) throw err;
          issues.push(
            `${at}.params.${key}: ${err.message} (an optional parameter left unset can only stand alone as an API parameter)`,
          );
        }
      }
      checkApiParams(def.api, params, def.params, at, issues);
      const verifyName = def.verify ? text(def.verify.name, 'verify.name') : undefined;
      return done({
        ...base,
        kind: 'api',
        api: def.api,
        method: endpoint.method,
        params,
        async: endpoint.async,
        destructive: DESTRUCTIVE_ENDPOINTS.has(def.api),
        ...(verifyName === undefined ? {} : { verifyName }),
      });
    }
    case 'ssh':
      return done({
        ...base,
        kind: 'ssh',
        node: text(def.ssh.node, 'ssh.node'),
        command: text(def.ssh.command, 'ssh.command', 'shell'),
        expectExit: def.expect.exit,
      });
    case 'guest':
      return done({
        ...base,
        kind: 'guest',
        vmid: text(String(def.guest.vmid), 'guest.vmid'),
        user: text(def.guest.user, 'guest.user'),
        command: text(def.guest.command, 'guest.command', 'shell'),
        hostKey: text(def.guest.host_key, 'guest.host_key'),
        expectExit: def.expect.exit,
      });
    case 'ansible': {
      const extraVars = def.ansible.extra_vars
        ? Object.fromEntries(
            Object.entries(def.ansible.extra_vars).map(([k, v]) => [
              k,
              typeof v === 'string' ? text(v, `ansible.extra_vars.${k}`) : v,
            ]),
          )
        : undefined;
      return done({
        ...base,
        kind: 'ansible',
        playbook: def.ansible.playbook,
        ...(def.ansible.limit ? { limit: text(def.ansible.limit, 'ansible.limit') } : {}),
        ...(def.ansible.tags ? { tags: def.ansible.tags } : {}),
        ...(extraVars ? { extraVars } : {}),
        expectExit: def.expect.exit,
      });
    }
  }
}

/**
 * PVE's parameter verification, run on what a step will send. Values still waiting for a
 * placeholder are checked once filled in, while applying. A refused value that came from a
 * placeholder names it, so the operator finds the runbook parameter to fix.
 */
function checkApiParams(
  api: EndpointName,
  params: Record<string, Value>,
  written: Readonly<Record<string, unknown>>,
  at: string,
  issues: string[],
): void {
  const ready = Object.fromEntries(
    Object.entries(params).filter(([, v]) => typeof v !== 'string' || !v.includes('{{')),
  );
  const waiting = new Set(Object.keys(params).filter((k) => !(k in ready)));
  const checked = decodeFormParams(
    endpoints[api],
    Object.fromEntries(Object.entries(ready).map(([k, v]) => [k, encodeValue(v)])),
  );
  if (!checked.ok) {
    for (const [key, message] of Object.entries(checked.errors)) {
      if (waiting.has(key)) continue;
      const from =
        typeof written[key] === 'string' ? [...written[key].matchAll(/\{\{\s*[^}]+?\s*\}\}/g)].map((m) => m[0]) : [];
      // Property-string refusals list one `<param>.<key>: reason` line per key; an issue is one line.
      issues.push(
        `${at}.params.${key}: ${message.replaceAll('\n', '; ')}${from.length ? ` (from ${from.join(', ')})` : ''}`,
      );
    }
  }
  for (const key of secretParams(endpoints[api].params)) {
    if (key in params)
      issues.push(
        `${at}.params.${key}: a password in a step would be kept in the plan and the workflow's history; use SSH keys instead`,
      );
  }
  const refusal = knownRefusal(api, ready);
  if (refusal) issues.push(`${at}.params.${refusal.param}: ${refusal.message}`);
}

/** Refusals PVE makes beyond its parameter schema (pve-storage download-url), caught before sending. */
function knownRefusal(
  api: EndpointName,
  params: Record<string, Value>,
): { param: string; message: string } | undefined {
  if (api !== 'storageDownloadUrl' || typeof params.filename !== 'string') return undefined;
  const name = params.filename;
  if (params.content === 'import' && !/\.(ova|qcow2|raw|vmdk)$/.test(name)) {
    return {
      param: 'filename',
      message: `PVE refuses '${name}' for content=import (it needs .ova, .qcow2, .raw or .vmdk); cloud images named .img are qcow2 inside, so save them as .qcow2`,
    };
  }
  if (params.content === 'iso' && !/\.(iso|img)$/.test(name)) {
    return { param: 'filename', message: `PVE refuses '${name}' for content=iso (it needs .iso or .img)` };
  }
  return undefined;
}

/**
 * Fills in what became known while applying (allocated VMID, captures); `later` names values
 * still to come (the VMID a creating step is about to take). Throws
 * UnresolvedPlaceholderError when a step still needs a value nobody supplied.
 */
export function finishStep<S extends ResolvedStep>(step: S, vars: Vars, later: ReadonlySet<string> = new Set()): S {
  if (step.pending.length === 0) return step;
  const t = (value: string, context: 'text' | 'shell' | 'regex' = 'text') => renderString(value, vars, context, later);
  const pending = step.pending.filter((name) => later.has(name));
  const expectOutput = step.expectOutput === undefined ? {} : { expectOutput: t(step.expectOutput, 'regex') };
  switch (step.kind) {
    case 'api':
      return {
        ...step,
        ...expectOutput,
        pending,
        params: Object.fromEntries(
          Object.entries(step.params).map(([k, v]) => [k, renderParam(v, vars, later) as Value]),
        ),
        ...(step.verifyName === undefined ? {} : { verifyName: t(step.verifyName) }),
      };
    case 'ssh':
      return { ...step, ...expectOutput, pending, node: t(step.node), command: t(step.command, 'shell') };
    case 'guest':
      return {
        ...step,
        ...expectOutput,
        pending,
        vmid: t(step.vmid),
        user: t(step.user),
        command: t(step.command, 'shell'),
        hostKey: t(step.hostKey),
      };
    case 'ansible':
      return {
        ...step,
        ...expectOutput,
        pending,
        ...(step.limit === undefined ? {} : { limit: t(step.limit) }),
        ...(step.extraVars
          ? {
              extraVars: Object.fromEntries(
                Object.entries(step.extraVars).map(([k, v]) => [k, renderParam(v, vars, later) as Value]),
              ),
            }
          : {}),
      };
  }
}
