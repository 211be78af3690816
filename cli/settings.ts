/**
 * Where `pm` finds the API and its token: PM_URL / PM_TOKEN / PM_ENVIRONMENT from the
 * environment, else a YAML file (PM_CLIENT_CONFIG, default ~/.config/pm/config.yaml) that
 * only its owner may read — a token in a file others can read is refused, not used.
 *
 *   url: http://127.0.0.1:8080
 *   token: <bearer token>
 *   environment: home
 */
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';

export interface Settings {
  url: string;
  token: string;
  /** Used when a command names no --env. */
  environment?: string;
}

export class SettingsError extends Error {}

const FileSettings = z.strictObject({
  url: z.string().url().optional(),
  token: z.string().min(1).optional(),
  environment: z.string().min(1).optional(),
});

export function settingsPath(env: NodeJS.ProcessEnv): string {
  return (
    env.PM_CLIENT_CONFIG ?? join(env.XDG_CONFIG_HOME ?? join(env.HOME ?? homedir(), '.config'), 'pm', 'config.yaml')
  );
}

function readSettingsFile(path: string): z.infer<typeof FileSettings> {
  let mode: number;
  try {
    mode = statSync(path).mode;
  } catch {
    return {};
  }
  if ((mode & 0o077) !== 0) {
    throw new SettingsError(
      `${path} holds a token and is readable by others (mode ${(mode & 0o777).toString(8)}): run chmod 600 ${path}`,
    );
  }
  const parsed = FileSettings.safeParse(parse(readFileSync(path, 'utf8')) ?? {});
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(file)'}: ${i.message}`);
    throw new SettingsError(`${path} is not a valid pm config: ${problems.join('; ')}`);
  }
  return parsed.data;
}

/** The environment wins over the file, key by key. */
export function loadSettings(env: NodeJS.ProcessEnv): Settings {
  const path = settingsPath(env);
  const file = readSettingsFile(path);
  const url = env.PM_URL ?? file.url;
  const token = env.PM_TOKEN ?? file.token;
  if (!url || !token) {
    throw new SettingsError(`set PM_URL and PM_TOKEN, or url and token in ${path} (mode 0600)`);
  }
  const environment = env.PM_ENVIRONMENT ?? file.environment;
  return { url, token, ...(environment ? { environment } : {}) };
}
