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

/** The configured settings; drift is checked every 15 minutes unless the config says otherwise. */
export function manifestSettings(config: AppConfig): ManifestSettings {
  const { path, drift_interval, drift_dir } = config.manifests;
  return { path, driftInterval: drift_interval ?? '15m', driftDir: drift_dir };
}
