import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../lib/config/load.js';

/** The operators' cluster-config.yaml, as the seed plan writes it. */
const seedClusterConfig = `
cluster:
  name: annarchy.net
  nodes:
    - name: pve01
      host: pve01.annarchy.net
    - name: pve02
      host: pve02.annarchy.net
    - name: pve03
      host: pve03.annarchy.net
defaults:
  storage: local-lvm
  network_bridge: vmbr0
  bios: ovmf
  machine: q35
  cpu: host
  scsi_controller: virtio-scsi-single
  efidisk_pre_enrolled_keys: false
  guest_agent: true
vmid_ranges:
  templates: 100-999
  vms: 1000-9999
credentials:
  pass_path: annarchy.net/pve/api-token
  ssh_user: root
tags:
  templates: ["template"]
  talos: ["talos", "kubernetes"]
  cloudinit: ["cloudinit"]
cloudinit:
  default_user: ada
  ssh_keys_source: ~/.ssh/authorized_keys
  vendor_snippet_path: /var/lib/vz/snippets/
ansible:
  fleet_infra_path: ~/src/github.com/adamancini/fleet-infra
  inventory: playbooks/inventories/annarchy.net/hosts.yaml
`;

describe("an operator's existing cluster-config.yaml", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pm-config-'));
    await writeFile(join(dir, 'cluster-config.yaml'), seedClusterConfig);
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('becomes an environment by reference, with TLS pinning added beside it', async () => {
    const configPath = join(dir, 'proxmox-manager.yaml');
    await writeFile(
      configPath,
      `environments:\n  home:\n    file: cluster-config.yaml\n    tls: { fingerprint: "${Array(32).fill('0F').join(':')}" }\n`,
    );
    const home = loadConfig(configPath).environments.home!;
    expect(home.cluster.nodes.map((n) => n.host)).toEqual([
      'pve01.annarchy.net',
      'pve02.annarchy.net',
      'pve03.annarchy.net',
    ]);
    expect(home.credentials).toMatchObject({ pass_path: 'annarchy.net/pve/api-token', ssh_user: 'root' });
    expect(home.vmid_ranges.vms).toEqual({ min: 1000, max: 9999 });
    expect(home.tls.fingerprint).toMatch(/^0F:/);
  });

  it('alone is refused until TLS verification is configured, and the error says so', () => {
    const error = (() => {
      try {
        loadConfig(join(dir, 'cluster-config.yaml'));
      } catch (err) {
        return err;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([expect.stringMatching(/^environments\.default\.tls: /)]);
  });

  it('names the file it cannot read', async () => {
    const configPath = join(dir, 'missing-ref.yaml');
    await writeFile(configPath, 'environments:\n  home:\n    file: nowhere.yaml\n');
    expect(() => loadConfig(configPath)).toThrow(/nowhere\.yaml:\n {2}- \(file\): cannot read \(ENOENT\)/);
  });
});
