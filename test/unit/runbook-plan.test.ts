import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EnvironmentConfig } from '../../lib/config/schema.js';
import { evaluateCondition, parseCondition } from '../../lib/runbooks/conditions.js';
import { parseRunbookMarkdown } from '../../lib/runbooks/markdown.js';
import { ParameterError, resolveParameters } from '../../lib/runbooks/parameters.js';
import { finishStep, PlanError, planRunbook, type RunbookFacts } from '../../lib/runbooks/plan.js';
import { renderString, shellQuote } from '../../lib/runbooks/placeholders.js';

const env = EnvironmentConfig.parse({
  cluster: {
    name: 'lab',
    nodes: [
      { name: 'pve1', host: '127.0.0.1' },
      { name: 'pve2', host: '127.0.0.2' },
    ],
  },
  credentials: { token: { env: 'UNUSED' } },
  tls: { insecure: true },
  defaults: { storage: 'fast-lvm', network_bridge: 'vmbr7', cpu: 'x86-64-v3' },
  vmid_ranges: { templates: '9000-9099', vms: '100-899' },
  tags: { templates: ['tpl'], talos: ['talos', 'k8s'] },
});

const modern: RunbookFacts = {
  node: 'pve1',
  pveVersion: '9.1.2',
  storages: { local: ['iso', 'import'], 'fast-lvm': ['images'] },
};
const legacy: RunbookFacts = {
  node: 'pve1',
  pveVersion: '7.4.3',
  storages: { local: ['iso', 'vztmpl'], 'fast-lvm': ['images'] },
};
const builtins = { operation_id: 'template-build/lab/x', environment: 'lab' };

function shipped(name: string) {
  const path = fileURLToPath(new URL(`../../runbooks/${name}.md`, import.meta.url));
  return parseRunbookMarkdown(readFileSync(path, 'utf8'), `${name}.md`).runbook;
}

const ubuntu = shipped('ubuntu-2404-cloudinit');
const sha = 'ab'.repeat(32);

async function issuesOf(promise: Promise<unknown>): Promise<string[]> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof ParameterError || err instanceof PlanError) return [...err.issues];
    throw err;
  }
  return [];
}

describe('runbook parameters', () => {
  it('take cluster conventions unless the operator gives a value', async () => {
    const p = await resolveParameters(ubuntu, { node: 'pve1', image_sha256: sha, bridge: 'vmbr0' }, env);
    expect(p.values).toMatchObject({
      storage: 'fast-lvm',
      cpu: 'x86-64-v3',
      bridge: 'vmbr0',
      tags: 'tpl',
      image_tags: 'cloudinit',
    });
    expect(p.sources).toMatchObject({ storage: 'convention', bridge: 'given', image_tags: 'default' });
    expect(p.allocate).toEqual({ name: 'vmid', range: { min: 9000, max: 9099 } });
    expect(p.unset).toEqual(['ci_user', 'ssh_keys']);
  });

  it('report every problem, naming the parameter', async () => {
    const issues = await issuesOf(
      resolveParameters(ubuntu, { node: 'pve9', cores: '4', vmid: 42, colour: 'red' }, env),
    );
    expect(issues).toEqual([
      "parameters.colour: runbook 'ubuntu-2404-cloudinit' has no such parameter (it has: node, vmid, name, storage, image_storage, image_url, image_file, image_sha256, bios, machine, cpu, scsihw, bridge, cores, memory_mb, disk_gb, agent, pre_enrolled_keys, tags, image_tags, ci_user, ssh_keys)",
      "parameters.node: 'pve9' is not a node of cluster lab (nodes: pve1, pve2)",
      'parameters.vmid: must be a VMID (100-999999999)',
      'parameters.image_sha256: required',
      'parameters.cores: must be an integer',
    ]);
  });

  it('check VMIDs against the configured range', async () => {
    expect(await issuesOf(resolveParameters(ubuntu, { node: 'pve1', image_sha256: sha, vmid: 150 }, env))).toEqual([
      'parameters.vmid: VMID 150 is outside the templates range 9000-9099',
    ]);
  });

  it('check a convention against what the runbook allows', async () => {
    const talos = shipped('talos-nocloud');
    const kvm64: EnvironmentConfig = { ...env, defaults: { ...env.defaults, cpu: 'kvm64' } };
    expect(await issuesOf(resolveParameters(talos, { node: 'pve1', image_sha256: sha }, kvm64))).toEqual([
      'parameters.cpu: "kvm64" (from defaults.cpu) must be one of host, x86-64-v2-AES, x86-64-v3, x86-64-v4, max',
    ]);
    const ok = await resolveParameters(talos, { node: 'pve1', image_sha256: sha, cpu: 'x86-64-v2-AES' }, kvm64);
    expect(ok.values['cpu']).toBe('x86-64-v2-AES');
    expect(ok.values['image_tags']).toBe('talos;k8s');
  });

  it('refuse values that smuggle in placeholders', async () => {
    expect(
      await issuesOf(resolveParameters(ubuntu, { node: 'pve1', image_sha256: sha, name: 'a{{vmid}}' }, env)),
    ).toEqual(['parameters.name: must not contain {{ (placeholders are the runbook author’s, not values)']);
  });

  it('read public keys from the file the convention names, URL-encoded for PVE', async () => {
    const withKeys: EnvironmentConfig = { ...env, cloudinit: { default_user: 'ada', ssh_keys_source: '/keys' } };
    const p = await resolveParameters(ubuntu, { node: 'pve1', image_sha256: sha }, withKeys, {
      readTextFile: async (path) => (path === '/keys' ? 'ssh-ed25519 AAAAC3Nza ada@laptop\n' : ''),
    });
    expect(p.values['ci_user']).toBe('ada');
    expect(p.values['ssh_keys']).toBe('ssh-ed25519%20AAAAC3Nza%20ada%40laptop');
  });
});

describe('planning a runbook', () => {
  it('takes the API path on PVE 8+ with an import storage, and renders every value', async () => {
    const p = await resolveParameters(ubuntu, { node: 'pve1', image_sha256: sha }, env);
    const plan = planRunbook(ubuntu, p, modern, builtins);
    expect(plan.steps.map((s) => s.id)).toEqual([
      'download-image',
      'create-vm',
      'import-disk',
      'grow-disk',
      'convert-to-template',
    ]);
    expect(plan.skipped.map((s) => s.id)).toEqual([
      'fetch-image',
      'check-image',
      'import-disk-over-ssh',
      'attach-disk',
    ]);
    const create = plan.steps.find((s) => s.id === 'create-vm');
    expect(create).toMatchObject({
      kind: 'api',
      params: {
        vmid: '{{vmid}}',
        cpu: 'x86-64-v3',
        cores: 2,
        efidisk0: 'fast-lvm:1,efitype=4m,pre-enrolled-keys=0',
        net0: 'virtio,bridge=vmbr7',
        agent: true,
        description: 'Ubuntu 24.04 cloud-init template, built by proxmox-manager (template-build/lab/x)',
      },
      pending: ['vmid'],
    });
    expect(create?.kind === 'api' && 'ciuser' in create.params).toBe(false);
    expect(plan.allocate).toEqual({ name: 'vmid', range: { min: 9000, max: 9099 }, step: 'create-vm', param: 'vmid' });
    expect(plan.risk).toBe('medium');
    expect(plan.cleanup.map((c) => [c.id, c.after, c.on])).toEqual([['remove-vm', 'create-vm', 'failure']]);
  });

  it('falls back to SSH (wget, sha256sum, qm importdisk) where PVE cannot download or import-from', async () => {
    const p = await resolveParameters(ubuntu, { node: 'pve1', image_sha256: sha }, env);
    const plan = planRunbook(ubuntu, p, legacy, builtins);
    expect(plan.steps.map((s) => s.id)).toEqual([
      'fetch-image',
      'check-image',
      'create-vm',
      'import-disk-over-ssh',
      'attach-disk',
      'grow-disk',
      'convert-to-template',
    ]);
    expect(plan.steps.find((s) => s.id === 'check-image')).toMatchObject({
      command: 'sha256sum /var/tmp/ubuntu-24.04-server-cloudimg-amd64.qcow2',
      expectOutput: `^${sha}\\s`,
    });
    expect(plan.steps.find((s) => s.id === 'attach-disk')).toMatchObject({ pending: ['vmid', 'imported_disk'] });
    expect(plan.cleanup.map((c) => c.id)).toEqual(['remove-vm', 'remove-fetched-image']);
  });

  it('refuses storages the node does not have', async () => {
    const p = await resolveParameters(ubuntu, { node: 'pve1', image_sha256: sha, storage: 'ceph' }, env);
    expect(() => planRunbook(ubuntu, p, modern, builtins)).toThrow(
      /parameters\.storage: storage 'ceph' is not available on node pve1 \(available: local, fast-lvm\)/,
    );
  });

  it("checks API calls with PVE's own parameter rules before anything is sent", async () => {
    const p = await resolveParameters(ubuntu, { node: 'pve1', image_sha256: sha, scsihw: 'virtio-scsi-single' }, env);
    const broken = {
      ...ubuntu,
      steps: ubuntu.steps.map((s) =>
        s.id === 'create-vm' && s.kind === 'api' ? { ...s, params: { ...s.params, ostype: 'plan9', cores: 0 } } : s,
      ),
    };
    const issues = await issuesOf(Promise.resolve().then(() => planRunbook(broken, p, modern, builtins)));
    expect(issues).toEqual([
      "steps.create-vm.params.ostype: value 'plan9' does not have a value in the enumeration 'other, wxp, w2k, w2k3, w2k8, wvista, win7, win8, win10, win11, l24, l26, solaris'",
      'steps.create-vm.params.cores: value must have a minimum value of 1',
    ]);
  });

  it('refuses a parameter value PVE would refuse inside a property string, naming the key and the parameter', async () => {
    const p = await resolveParameters(
      ubuntu,
      { node: 'pve1', image_sha256: sha, machine: 'pc-q99', cpu: 'host,hidden=maybe' },
      env,
    );
    const issues = await issuesOf(Promise.resolve().then(() => planRunbook(ubuntu, p, modern, builtins)));
    expect(issues).toEqual([
      "steps.create-vm.params.cpu: invalid format - format error; cpu.hidden: type check ('boolean') failed - got 'maybe' (from {{cpu}})",
      'steps.create-vm.params.machine: invalid format - format error; machine.type: value does not match the regex pattern (from {{machine}})',
    ]);
  });

  it('refuses a password in a step, which the plan and the workflow history would keep', async () => {
    const p = await resolveParameters(ubuntu, { node: 'pve1', image_sha256: sha }, env);
    const withPassword = {
      ...ubuntu,
      steps: ubuntu.steps.map((s) =>
        s.id === 'create-vm' && s.kind === 'api' ? { ...s, params: { ...s.params, cipassword: 'hunter2' } } : s,
      ),
    };
    const issues = await issuesOf(Promise.resolve().then(() => planRunbook(withPassword, p, modern, builtins)));
    expect(issues).toEqual([
      "steps.create-vm.params.cipassword: a password in a step would be kept in the plan and the workflow's history; use SSH keys instead",
    ]);
    expect(issues.join('\n')).not.toContain('hunter2');
  });

  it('refuses an .img file name for content=import, and says why', async () => {
    const p = await resolveParameters(ubuntu, { node: 'pve1', image_sha256: sha }, env);
    const imgName = { ...p, values: { ...p.values, image_file: 'noble.img' } };
    expect(() => planRunbook(ubuntu, imgName, modern, builtins)).toThrow(
      /steps\.download-image\.params\.filename: PVE refuses 'noble\.img' for content=import .* save them as \.qcow2/,
    );
  });

  it('fills in allocated and captured values while applying', async () => {
    const p = await resolveParameters(ubuntu, { node: 'pve1', image_sha256: sha }, env);
    const plan = planRunbook(ubuntu, p, legacy, builtins);
    const attach = plan.steps.find((s) => s.id === 'attach-disk')!;
    expect(finishStep(attach, { vmid: 9003, imported_disk: 'fast-lvm:vm-9003-disk-1' })).toMatchObject({
      params: { vmid: 9003, scsi0: 'fast-lvm:vm-9003-disk-1,iothread=1,discard=on,ssd=1' },
      pending: [],
    });
    expect(() => finishStep(attach, { vmid: 9003 })).toThrow('no value for {{imported_disk}}');
  });

  it('quotes values written into shell commands', () => {
    expect(shellQuote('local-lvm')).toBe('local-lvm');
    expect(renderString('rm -f /var/tmp/{{file}}', { file: "x; rm -rf / #'" }, 'shell')).toBe(
      `rm -f /var/tmp/'x; rm -rf / #'\\'''`,
    );
    expect(renderString('^{{sum}}\\s', { sum: 'a.b+c' }, 'regex')).toBe('^a\\.b\\+c\\s');
  });

  it('rates a plan by its most dangerous step', async () => {
    const alpine = shipped('alpine-pxe-gold');
    const p = await resolveParameters(alpine, { node: 'pve2' }, env);
    const plan = planRunbook(alpine, p, { ...modern, node: 'pve2' }, builtins);
    expect(plan.risk).toBe('medium');
    const destroying = {
      ...alpine,
      steps: [...alpine.steps, { ...alpine.cleanup[0]!, id: 'destroy-again' }],
    };
    expect(planRunbook(destroying, p, { ...modern, node: 'pve2' }, builtins)).toMatchObject({ risk: 'high' });
  });
});

describe('conditions', () => {
  const facts = (values: Record<string, string | number | boolean>) => ({
    values,
    storageContent: (s: string) => ({ local: ['import', 'iso'] })[s],
  });

  it.each([
    ['pve_version >= 8', { pve_version: '9.1.2' }, true],
    ['pve_version >= 8.4', { pve_version: '8.3.5' }, false],
    ['pve_version < 8', { pve_version: '7.4.3' }, true],
    ['image_storage supports import', { image_storage: 'local' }, true],
    ['image_storage supports import', { image_storage: 'nfs' }, false],
    ['not keep', { keep: false }, true],
    ['keep or flavour == nocloud', { keep: false, flavour: 'nocloud' }, true],
    ["flavour != 'cloud init'", { flavour: 'cloud init' }, false],
  ] as const)('%s with %o is %s', (text, values, expected) => {
    expect(evaluateCondition(parseCondition(text), facts(values))).toBe(expected);
  });
});
