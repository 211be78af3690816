/**
 * Validates a configuration file without starting anything:
 *   npm run config:check -- config/proxmox-manager.yaml     (default: PM_CONFIG, else that path)
 * Exit 0 with a one-line summary per environment, or 1 with every problem as `path: reason`.
 */
import { ConfigError, configPath, loadConfig } from '../lib/config/load.js';

const path = process.argv[2] ?? configPath();
try {
  const config = loadConfig(path);
  console.log(`${path}: valid`);
  for (const [name, env] of Object.entries(config.environments)) {
    const perNode = env.cluster.nodes.every((n) => n.tls_fingerprint);
    const tls = env.tls.insecure
      ? 'TLS NOT VERIFIED (insecure: true)'
      : env.tls.ca_file
        ? 'TLS via CA file'
        : perNode
          ? 'TLS pinned per node'
          : 'TLS fingerprint pinned';
    const unpinned = env.cluster.nodes.filter((n) => !n.ssh_host_key).map((n) => n.name);
    console.log(
      `  ${name}: ${env.cluster.nodes.length} node(s) (${env.cluster.nodes.map((n) => n.name).join(', ')}), ${tls}` +
        (unpinned.length ? `; no SSH host key for ${unpinned.join(', ')} (SSH to them is refused)` : ''),
    );
  }
  console.log(
    `  API tokens: ${config.api.tokens.map((t) => `${t.actor} (${t.roles.join(', ')})`).join(', ') || 'none'}`,
  );
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(1);
}
