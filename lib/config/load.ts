/**
 * Loading configuration: YAML file -> environments resolved -> one zod validation.
 * A bad file fails with every problem listed as `path: reason`, never a stack trace.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { AppConfig } from './schema.js';

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: string[],
  ) {
    super(`invalid configuration in ${source}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** `a.b.0.c: reason` lines for every issue zod found. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`);
}

function readYaml(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(path, [`(file): cannot read (${code ?? 'error'})`]);
  }
  try {
    return parseYaml(text);
  } catch (err) {
    throw new ConfigError(path, [`(yaml): ${(err as Error).message.split('\n')[0]}`]);
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Environments may point at a seed `cluster-config.yaml` with `file:`, and override any
 * of its keys beside it. A file that is itself a seed cluster-config becomes the single
 * environment `default`, so operators can drop theirs in unchanged.
 */
function resolveEnvironments(raw: Record<string, unknown>, baseDir: string): Record<string, unknown> {
  if (!('environments' in raw) && 'cluster' in raw) {
    return { environments: { default: raw } };
  }
  const envs = raw.environments;
  if (!isRecord(envs)) return raw;
  const resolved: Record<string, unknown> = {};
  for (const [name, env] of Object.entries(envs)) {
    if (isRecord(env) && typeof env.file === 'string') {
      const { file, ...overrides } = env;
      const base = readYaml(resolve(baseDir, file));
      resolved[name] = isRecord(base) ? { ...base, ...overrides } : base;
    } else {
      resolved[name] = env;
    }
  }
  return { ...raw, environments: resolved };
}

export function parseConfig(raw: unknown, source: string, baseDir = process.cwd()): AppConfig {
  const input = isRecord(raw) ? resolveEnvironments(raw, baseDir) : raw;
  const result = AppConfig.safeParse(input);
  if (!result.success) throw new ConfigError(source, formatIssues(result.error.issues));
  return result.data;
}

/** The config file: `PM_CONFIG`, else `config/proxmox-manager.yaml`. */
export function configPath(): string {
  return resolve(process.env.PM_CONFIG ?? 'config/proxmox-manager.yaml');
}

export function loadConfig(path = configPath()): AppConfig {
  return parseConfig(readYaml(path), path, dirname(path));
}
