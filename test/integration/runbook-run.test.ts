/**
 * Runbooks end to end on a real Temporal dev server and the simulated homelab: a runbook
 * written for another cluster is ingested (adapted, reviewed, approved, saved) and then runs;
 * a malformed one is refused; steps reach into guests over SSH and delegate to Ansible (the
 * real ansible-playbook from the project's Python venv, playing against localhost, with the
 * community.proxmox modules, and against the simulated nodes over pinned SSH).
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { createActivities } from '../../activities/index.js';
import { createRunbookActivities } from '../../activities/runbook.js';
import { createTemplateBuildActivities } from '../../activities/template-build.js';
import { runbookIngestOperation } from '../../lib/operations/catalog.js';
import { parseRunbookMarkdown } from '../../lib/runbooks/markdown.js';
import { downloadChecksum } from '../../sim/downloads.js';
import { guestSystemsOf } from '../../sim/guest-ssh.js';
import { buildWorkerDeps } from '../../worker/deps.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { startTestWorker, type TestWorker } from '../support/temporal.js';
import { approve, failureOf, startOperation, waitForPhase } from './lifecycle-helpers.js';
import { homelabWithShippedRole } from './runbook-helpers.js';

const fixture = (path: string) => fileURLToPath(new URL(`../fixtures/${path}`, import.meta.url));
const shipped = (name: string) => fileURLToPath(new URL(`../../runbooks/${name}.md`, import.meta.url));

let env: SimulatedEnvironment;
let worker: TestWorker;
let dir: string;
let runbooksDir: string;

/**
 * A fleet-infra repository as an operator has it: an inventory with the controller (localhost,
 * where the community.proxmox modules run) and the PVE nodes (reached over SSH, host keys
 * pinned in known_hosts), and playbooks written for a real cluster.
 */
async function writeFleetInfra(root: string): Promise<void> {
  await mkdir(join(root, 'playbooks', 'inventories'), { recursive: true });
  const token = env.sim.tokens[0]!;
  const [user, tokenName] = token.tokenId.split('!');
  const caFile = join(root, 'pve-ca.pem');
  const knownHosts = join(root, 'known_hosts');
  const sshKey = join(root, 'id_ed25519');
  await writeFile(caFile, env.sim.caPem);
  await writeFile(sshKey, env.sim.sshClientKey.privateKey, { mode: 0o600 });
  await writeFile(knownHosts, env.sim.nodes.map((n) => `[${n.host}]:${n.sshPort} ${n.sshHostPublicKey}\n`).join(''));
  const sshHost = (name: string) => {
    const node = env.sim.nodes.find((n) => n.name === name)!;
    return { ansible_host: node.host, ansible_port: node.sshPort };
  };
  const inventory = {
    all: {
      vars: {
        pve_api: {
          host: env.sim.nodes[0]!.host,
          port: env.sim.nodes[0]!.port,
          user,
          token_id: tokenName,
          token_secret: token.secret,
          ca_file: caFile,
        },
        ansible_user: 'root',
        ansible_ssh_private_key_file: sshKey,
        ansible_ssh_common_args: `-o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes -o ControlMaster=no`,
      },
      children: {
        k8s: {
          children: {
            controller: {
              hosts: {
                localhost: { ansible_connection: 'local', ansible_python_interpreter: '{{ ansible_playbook_python }}' },
              },
            },
            k8s_nodes: { hosts: { pve02: sshHost('pve02'), pve03: sshHost('pve03') } },
          },
        },
        storage_nodes: { hosts: { pve01: sshHost('pve01') } },
      },
    },
  };
  await writeFile(join(root, 'playbooks', 'inventories', 'hosts.yaml'), toYaml(inventory), { mode: 0o600 });
  const provision = [
    {
      name: 'Clone the control plane from the Talos template',
      hosts: 'controller',
      gather_facts: false,
      environment: { REQUESTS_CA_BUNDLE: '{{ pve_api.ca_file }}' },
      module_defaults: {
        'group/community.proxmox.proxmox': {
          api_host: '{{ pve_api.host }}',
          api_port: '{{ pve_api.port }}',
          api_user: '{{ pve_api.user }}',
          api_token_id: '{{ pve_api.token_id }}',
          api_token_secret: '{{ pve_api.token_secret }}',
          validate_certs: true,
        },
      },
      tasks: [
        {
          name: 'Clone',
          'community.proxmox.proxmox_kvm': {
            node: 'pve02',
            clone: 'tpl-talos-1-11',
            name: '{{ cluster_name }}-cp1',
            timeout: 120,
          },
        },
      ],
    },
    {
      name: 'Check the nodes',
      hosts: 'k8s_nodes',
      gather_facts: false,
      tasks: [{ name: 'PVE version', 'ansible.builtin.raw': 'pveversion', changed_when: false }],
    },
  ];
  await writeFile(join(root, 'playbooks', 'talos-provision-vms.yaml'), toYaml(provision));
  const failing = [
    {
      hosts: 'controller',
      gather_facts: false,
      tasks: [{ 'ansible.builtin.fail': { msg: 'the cluster is not ready' } }],
    },
  ];
  await writeFile(join(root, 'playbooks', 'failing.yaml'), toYaml(failing));
}

beforeAll(async () => {
  env = await startSimulatedEnvironment({ scenario: homelabWithShippedRole(), speed: 400 });
  dir = await mkdtemp(join(tmpdir(), 'pm-runbooks-it-'));
  runbooksDir = join(dir, 'runbooks');
  const fleetInfra = join(dir, 'fleet-infra');
  await mkdir(runbooksDir);
  await writeFleetInfra(fleetInfra);
  await copyFile(shipped('alpine-pxe-gold'), join(runbooksDir, 'alpine-pxe-gold.md'));

  const home = env.config.environments['home']!;
  const config = {
    ...env.config,
    environments: {
      home: { ...home, ansible: { fleet_infra_path: fleetInfra, inventory: 'playbooks/inventories/hosts.yaml' } },
    },
  };
  const deps = {
    ...buildWorkerDeps(config),
    runbooksDir,
    ansiblePlaybook: join(inject('pythonBin'), 'ansible-playbook'),
  };
  worker = await startTestWorker({
    activities: { ...createActivities(deps), ...createRunbookActivities(deps), ...createTemplateBuildActivities(deps) },
  });
});
afterAll(async () => {
  await worker?.shutdown();
  await env?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const named = (name: string) => [...env.sim.state.guests.values()].filter((g) => g.config['name'] === name);

describe('ingesting a runbook', () => {
  it('adapts it to the conventions, shows what changed, and saves it only once approved', async () => {
    const markdown = await readFile(fixture('runbooks/lab-ubuntu-template.md'), 'utf8');
    const handle = await startOperation(worker, 'runbook-ingest', { markdown }, { autoApprove: ['low'] });
    const status = await waitForPhase(handle, 'awaiting-approval');
    expect(status.plan!.risk).toBe('medium');
    const details = status.plan!.details as {
      name: string;
      diff: string;
      adaptations: { path: string }[];
      markdown: string;
    };
    expect(details.name).toBe('lab-ubuntu-template');
    expect(details.adaptations.map((a) => a.path)).toEqual(
      expect.arrayContaining([
        'parameters.storage.convention',
        'steps.1.params.scsihw',
        'steps.1.params.net0',
        'steps.0.params.filename',
        'steps.1.params.vmid',
      ]),
    );
    expect(details.diff).toContain("+      scsihw: '{{scsihw}}'");
    await expect(readFile(join(runbooksDir, 'lab-ubuntu-template.md'), 'utf8')).rejects.toThrow(/ENOENT/);

    await approve(handle, 'bob');
    const { result } = await handle.result();
    expect(result).toMatchObject({ name: 'lab-ubuntu-template', outcome: 'created' });
    const saved = await readFile(join(runbooksDir, 'lab-ubuntu-template.md'), 'utf8');
    expect(saved).toBe(details.markdown);
    expect(parseRunbookMarkdown(saved).runbook.parameters['vmid']).toMatchObject({
      range: 'templates',
      allocate: true,
    });
  });

  it('then runs it, with the conventions applied', async () => {
    const url = 'https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img';
    const handle = await startOperation(worker, 'runbook-run', {
      runbook: 'lab-ubuntu-template',
      parameters: { node: 'pve01', image_sha256: downloadChecksum(url) },
    });
    const { outcome, result } = await handle.result();
    expect(outcome).toBe('completed');
    expect(result.completed).toEqual(['download', 'create', 'template']);
    const [vm] = named('lab-ubuntu');
    expect(vm!.vmid).toBe(result.vars.vmid);
    expect(vm!.vmid).toBeLessThan(1000);
    expect(vm!.config).toMatchObject({
      template: '1',
      scsihw: 'virtio-scsi-single',
      bios: 'ovmf',
      machine: 'q35',
      agent: '1',
    });
    expect(vm!.config['net0']).toMatch(/bridge=vmbr0/);
    expect(vm!.config['scsi0']).toMatch(/^local-lvm:/);
    expect(env.sim.state.volume('local:import/noble-server-cloudimg-amd64.qcow2', 'pve01')).toBeDefined();
  });

  it('refuses a runbook with a malformed step as a bad request, naming the step and the reason, and saves nothing', async () => {
    const markdown = (await readFile(fixture('runbooks/lab-ubuntu-template.md'), 'utf8'))
      .replace('name: lab-ubuntu-template', 'name: lab-broken')
      .replace(
        '    api: qemuTemplate\n',
        '    api: qemuTemplate\n    ssh: { node: pve01, command: qm template 9000 }\n',
      );
    // Checked where the API validates the request (400), before any workflow starts.
    const refused = runbookIngestOperation.body.safeParse({ environment: 'home', markdown });
    expect(refused.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toContain(
      'markdown: steps.2.kind: a step needs exactly one of api, ssh, guest, ansible',
    );
    await expect(readFile(join(runbooksDir, 'lab-broken.md'), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('replaces a runbook only when asked, as a high-risk change another person approves', async () => {
    const markdown = await readFile(fixture('runbooks/lab-ubuntu-template.md'), 'utf8');
    const again = await startOperation(worker, 'runbook-ingest', { markdown });
    expect((await failureOf(again)).message).toBe(
      "name: runbook 'lab-ubuntu-template' exists; submit it with replace: true to change it",
    );

    const edited = markdown.replace('Convert it to a template', 'Convert it into a template');
    const replace = await startOperation(
      worker,
      'runbook-ingest',
      { markdown: edited, replace: true },
      { autoApprove: ['low', 'medium'] },
    );
    const status = await waitForPhase(replace, 'awaiting-approval');
    expect(status.plan!.risk).toBe('high');
    const refusal = await approve(replace, 'alice').then(
      () => undefined,
      (err: Error) => err,
    );
    expect((refusal?.cause as Error | undefined)?.message).toBe(
      'a high-risk operation cannot be approved by the actor who requested it',
    );
    await approve(replace, 'bob');
    expect((await replace.result()).result.outcome).toBe('replaced');
    expect(await readFile(join(runbooksDir, 'lab-ubuntu-template.md'), 'utf8')).toContain('Convert it into a template');
  });
});

describe('steps beyond the PVE API', () => {
  const write = (name: string, frontMatter: string) =>
    writeFile(join(runbooksDir, `${name}.md`), `---\nname: ${name}\n${frontMatter}\n---\n# ${name}\n`);

  it('post-provisions inside a guest over SSH, through its node, with the host key pinned', async (ctx) => {
    let liveImageHostKey: string;
    try {
      liveImageHostKey = guestSystemsOf(env.sim.cluster).liveImageHostKey;
    } catch {
      return ctx.skip('this simulator build does not serve SSH inside guests yet');
    }
    const gold = await startOperation(worker, 'template-build', {
      runbook: 'alpine-pxe-gold',
      parameters: { node: 'pve02' },
    });
    const template = (await gold.result()).result.template.vmid as number;
    await write(
      'docker-on-alpine',
      `description: Clone the PXE gold image, boot it and install Docker
image_type: none
requires: [api, guest]
parameters:
  node: { type: node, required: true, description: Node }
  template: { type: vmid, range: templates, required: true, description: Template }
  vmid: { type: vmid, range: vms, allocate: true, description: New VM }
  name: { type: dns_name, default: docker01, description: Name }
  host_key: { type: string, required: true, description: The live image's host key }
steps:
  - { id: clone, description: Clone, api: qemuClone, params: { node: '{{node}}', vmid: '{{template}}', newid: '{{vmid}}', name: '{{name}}', full: true } }
  - { id: start, description: Start, api: qemuStart, params: { node: '{{node}}', vmid: '{{vmid}}' } }
  - id: install-docker
    description: Install Docker
    guest: { vmid: '{{vmid}}', user: root, host_key: '{{host_key}}', command: apk add docker }
    expect: { output: 'OK: ' }
cleanup:
  - { id: stop, after: start, description: Stop, api: qemuStop, params: { node: '{{node}}', vmid: '{{vmid}}' }, verify: { name: '{{name}}' } }
  - { id: remove, after: clone, description: Remove, api: qemuDestroy, params: { node: '{{node}}', vmid: '{{vmid}}', purge: true }, verify: { name: '{{name}}' } }`,
    );
    const run = await startOperation(worker, 'runbook-run', {
      runbook: 'docker-on-alpine',
      parameters: { node: 'pve02', template, host_key: liveImageHostKey },
    });
    const { result } = await run.result();
    expect(result.completed).toEqual(['clone', 'start', 'install-docker']);
    expect(named('docker01')[0]!.status).toBe('running');

    // The same run with a wrong host key is refused before anything runs in the guest, and cleans up.
    const wrongKey = `SHA256:${'A'.repeat(43)}`;
    const refused = await startOperation(worker, 'runbook-run', {
      runbook: 'docker-on-alpine',
      parameters: { node: 'pve02', template, host_key: wrongKey, name: 'docker02' },
    });
    const failure = await failureOf(refused);
    expect(failure.message).toMatch(
      /^step install-docker failed: .*does not match the pinned SHA256:A{43}.*Cleaned up: stop, remove\.$/s,
    );
    expect(named('docker02')).toEqual([]);
  });

  it('delegates to an existing Ansible playbook with the configured inventory, limit and variables', async () => {
    const versionChecks = (node: string) => env.sim.counters.sshCommands(node, 'pveversion');
    const before = ['pve01', 'pve02', 'pve03'].map(versionChecks);
    await write(
      'provision-talos',
      `description: Provision Talos VMs with the fleet-infra playbook
image_type: none
requires: [ansible]
parameters:
  cluster: { type: string, default: lab, description: Cluster name }
steps:
  - id: provision
    description: Run talos-provision-vms.yaml
    ansible: { playbook: playbooks/talos-provision-vms.yaml, limit: k8s, extra_vars: { cluster_name: '{{cluster}}' } }
    expect: { output: 'failed=0' }`,
    );
    const { result } = await (
      await startOperation(worker, 'runbook-run', { runbook: 'provision-talos', parameters: { cluster: 'prod' } })
    ).result();
    expect(result.completed).toEqual(['provision']);
    // The extra variable named the clone; the modules reached the cluster's API from localhost.
    expect(named('prod-cp1')).toMatchObject([{ node: 'pve02', status: 'stopped' }]);
    // The nodes in the limit were reached over SSH, the one outside it was not.
    expect(['pve01', 'pve02', 'pve03'].map((n, i) => versionChecks(n) - before[i]!)).toEqual([0, 1, 1]);
  });

  it('fails the step when the playbook fails, with its exit code and the failed task', async () => {
    await write(
      'failing-play',
      `description: A playbook that fails
image_type: none
requires: [ansible]
steps:
  - { id: play, description: Play, ansible: { playbook: playbooks/failing.yaml } }`,
    );
    const failure = await failureOf(await startOperation(worker, 'runbook-run', { runbook: 'failing-play' }));
    expect(failure.message).toMatch(
      /^step play failed: step play: exited 2 \(expected 0\): fatal: \[localhost\]: FAILED! => .*"msg": "the cluster is not ready"/,
    );
  });
});
