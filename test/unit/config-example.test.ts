import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../lib/config/load.js';

const examplePath = fileURLToPath(new URL('../../config/proxmox-manager.example.yaml', import.meta.url));

describe('config/proxmox-manager.example.yaml', () => {
  const config = loadConfig(examplePath);

  it('is a valid configuration', () => {
    expect(Object.keys(config.environments)).toEqual(['home', 'lab']);
  });

  it('keeps the seed cluster-config format for the home cluster', () => {
    const home = config.environments.home!;
    expect(home.cluster.nodes.map((n) => n.name)).toEqual(['pve01', 'pve02', 'pve03']);
    expect(home.cluster.nodes[0]!.port).toBe(8006);
    expect(home.vmid_ranges).toEqual({ templates: { min: 100, max: 999 }, vms: { min: 1000, max: 9999 } });
    expect(home.credentials.pass_path).toBe('annarchy.net/pve/api-token');
  });

  it('verifies TLS for every environment and pins every SSH host key', () => {
    for (const env of Object.values(config.environments)) {
      expect(env.tls.insecure).toBe(false);
      expect(env.tls.ca_file ?? env.tls.fingerprint).toBeTruthy();
      for (const node of env.cluster.nodes) expect(node.ssh_host_key).toMatch(/^SHA256:/);
    }
  });

  it('holds no secret, only references to where secrets live', () => {
    const raw = parse(readFileSync(examplePath, 'utf8')) as { environments: Record<string, { credentials: object }> };
    for (const env of Object.values(raw.environments)) {
      for (const [key, value] of Object.entries(env.credentials)) {
        if (key === 'token' || key === 'ssh_key') expect(Object.keys(value as object)).toHaveLength(1);
        if (typeof value === 'string') expect(value).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-/);
      }
    }
    for (const token of config.api.tokens) expect(token.sha256).toMatch(/^[0-9a-f]{64}$/);
  });
});
