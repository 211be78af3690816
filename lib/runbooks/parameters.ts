/**
 * A runbook's parameters, resolved for one environment: the operator's value, else the
 * cluster convention the parameter names, else the runbook's default. Every value is checked
 * against its type and the environment (VMID ranges, node names); problems are reported
 * together as `parameters.<name>: reason`.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import type { EnvironmentConfig, VmidRange } from '../config/schema.js';
import { conventionValue } from './conventions.js';
import type { Value } from './placeholders.js';
import { checkValue, type Parameter, type Runbook } from './schema.js';

export type ParameterInput = Value | string[];

export interface ResolvedParameters {
  /** Ready to substitute: tags joined with `;`, public keys URL-encoded (as PVE's `sshkeys` wants them). */
  values: Record<string, Value>;
  /** Where each value came from, for the plan. */
  sources: Record<string, 'given' | 'convention' | 'default'>;
  /** Optional parameters that have no value; steps leave out parameters that are exactly these. */
  unset: string[];
  /** The VMID parameter taken while applying, and the range it is taken from. */
  allocate?: { name: string; range: VmidRange };
}

export class ParameterError extends Error {
  constructor(readonly issues: readonly string[]) {
    super(`invalid parameters:\n${issues.map((i) => `  ${i}`).join('\n')}`);
    this.name = 'ParameterError';
  }
}

export interface ResolveOptions {
  /** Reads files named by conventions such as cloudinit.ssh_keys_source. */
  readTextFile?: (path: string) => Promise<string>;
}

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? `${homedir()}${path.slice(1)}` : path;
}

function render(p: Parameter, value: ParameterInput): Value {
  if (p.type === 'tags') return (value as string[]).join(';');
  if (p.type === 'public_keys') return encodeURIComponent(String(value).trim());
  return value as Value;
}

export async function resolveParameters(
  runbook: Runbook,
  given: Readonly<Record<string, ParameterInput>>,
  env: EnvironmentConfig,
  opts: ResolveOptions = {},
): Promise<ResolvedParameters> {
  const read = opts.readTextFile ?? ((path: string) => readFile(path, 'utf8'));
  const issues: string[] = [];
  const resolved: ResolvedParameters = { values: {}, sources: {}, unset: [] };
  const names = Object.keys(runbook.parameters);

  for (const name of Object.keys(given)) {
    if (!(name in runbook.parameters)) {
      issues.push(
        `parameters.${name}: runbook '${runbook.name}' has no such parameter (it has: ${names.join(', ') || 'none'})`,
      );
    }
  }

  for (const [name, p] of Object.entries(runbook.parameters)) {
    const at = `parameters.${name}`;
    let value: ParameterInput | undefined = given[name];
    let source: 'given' | 'convention' | 'default' = 'given';
    let from = '';
    if (value === undefined && p.convention) {
      const convention = conventionValue(p.convention, env);
      if (convention !== undefined && p.type === 'public_keys') {
        const path = expandHome(String(convention));
        try {
          value = await read(path);
        } catch (err) {
          issues.push(
            `${at}: cannot read ${path} (from ${p.convention}): ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
          );
          continue;
        }
      } else if (convention !== undefined) {
        value = Array.isArray(convention) ? [...convention] : (convention as Value);
      }
      source = 'convention';
      from = ` (from ${p.convention})`;
    }
    if (value === undefined && p.default !== undefined) {
      value = Array.isArray(p.default) ? [...p.default] : p.default;
      source = 'default';
      from = ' (the default)';
    }
    if (value === undefined) {
      if (p.allocate && p.range) resolved.allocate = { name, range: env.vmid_ranges[p.range] };
      else if (p.required) {
        issues.push(`${at}: required${p.convention ? `, and the environment does not set ${p.convention}` : ''}`);
      } else resolved.unset.push(name);
      continue;
    }

    const problem =
      typeof value === 'string' && value.includes('{{')
        ? 'must not contain {{ (placeholders are the runbook author’s, not values)'
        : (checkValue(p, value) ?? checkInEnvironment(p, value, env));
    if (problem) {
      issues.push(`${at}: ${source === 'given' ? '' : `${JSON.stringify(value)}${from} `}${problem}`);
      continue;
    }
    resolved.values[name] = render(p, value);
    resolved.sources[name] = source;
  }
  if (issues.length > 0) throw new ParameterError(issues);
  return resolved;
}

function checkInEnvironment(p: Parameter, value: ParameterInput, env: EnvironmentConfig): string | undefined {
  if (p.type === 'vmid' && p.range) {
    const { min, max } = env.vmid_ranges[p.range];
    const n = value as number;
    if (n < min || n > max) return `VMID ${n} is outside the ${p.range} range ${min}-${max}`;
  }
  if (p.type === 'node') {
    const nodes = env.cluster.nodes.map((n) => n.name);
    if (!nodes.includes(String(value)))
      return `'${value}' is not a node of cluster ${env.cluster.name} (nodes: ${nodes.join(', ')})`;
  }
  return undefined;
}
