/**
 * Where manifests live and how often drift is checked: the configuration's `manifests`
 * section, with its defaults.
 */
import type { AppConfig } from '../config/schema.js';

export interface ManifestSettings {
  /** The manifest folder (relative to the worker's working directory, or absolute). */
  path: string;
  /** How often the drift schedule plans against the manifest, e.g. `15m`. */
  driftInterval: string;
  /** The folder the drift reports are written to, one file per environment. */
  driftDir: string;
}

export const DEFAULT_MANIFEST_SETTINGS: ManifestSettings = { path: 'manifests', driftInterval: '15m', driftDir: 'data/drift' };

interface ManifestsSection {
  path?: string;
  drift_interval?: string;
  drift_dir?: string;
}

/**
 * The configured settings. Reads `config.manifests` ({ path, drift_interval, drift_dir }) once
 * the configuration schema carries it; until then every environment uses the defaults.
 */
export function manifestSettings(config: AppConfig): ManifestSettings {
  const section = (config as AppConfig & { manifests?: ManifestsSection }).manifests ?? {};
  return {
    path: section.path ?? DEFAULT_MANIFEST_SETTINGS.path,
    driftInterval: section.drift_interval ?? DEFAULT_MANIFEST_SETTINGS.driftInterval,
    driftDir: section.drift_dir ?? DEFAULT_MANIFEST_SETTINGS.driftDir,
  };
}
