import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseRunbookMarkdown, RunbookError } from '../../lib/runbooks/markdown.js';

const runbooksDir = fileURLToPath(new URL('../../runbooks/', import.meta.url));

/** A valid runbook to break one piece at a time. */
function runbook(frontMatter: string): string {
  return `---\n${frontMatter}\n---\n# Title\n`;
}

const base = `name: demo
description: A demo
image_type: none
requires: [api]
parameters:
  node: { type: node, required: true, description: Node }
  vmid: { type: vmid, range: vms, allocate: true, description: VMID }
  name: { type: dns_name, default: demo, description: Name }
steps:
  - id: create-vm
    description: Create it
    api: qemuCreate
    params: { node: '{{node}}', vmid: '{{vmid}}', name: '{{name}}' }`;

function problems(text: string): string[] {
  try {
    parseRunbookMarkdown(text, 'test.md');
  } catch (err) {
    if (err instanceof RunbookError) return [...err.issues];
    throw err;
  }
  return [];
}

describe('the runbook format', () => {
  it.each(readdirSync(runbooksDir).filter((f) => f.endsWith('.md')))('accepts the shipped runbook %s', (file) => {
    const text = readFileSync(`${runbooksDir}/${file}`, 'utf8');
    const { runbook: rb } = parseRunbookMarkdown(text, file);
    if (!file.startsWith('_')) expect(`${rb.name}.md`).toBe(file);
  });

  it('accepts a minimal runbook', () => {
    expect(problems(runbook(base))).toEqual([]);
  });

  it('refuses a file without front matter', () => {
    expect(problems('# just markdown\n')).toEqual(['(file): must start with YAML front matter between --- lines']);
  });

  it('reports YAML syntax errors with their line', () => {
    expect(problems(runbook('name: [unclosed'))[0]).toMatch(/^\(front matter line \d+\): /);
  });

  it('refuses a malformed step, naming the step and the reason', () => {
    const text = runbook(`${base}
  - id: start
    description: Start it
    api: qemuStart
    ssh: { node: '{{node}}', command: qm start 100 }`);
    expect(problems(text)).toContain('steps.1.kind: a step needs exactly one of api, ssh, guest, ansible');
  });

  it('refuses an endpoint the client does not know', () => {
    const text = runbook(base.replace('api: qemuCreate', 'api: qemuCreateFast'));
    expect(problems(text)).toEqual(["steps.0.api: unknown PVE endpoint 'qemuCreateFast' (see lib/pve/registry.ts)"]);
  });

  it('refuses parameters the endpoint does not take', () => {
    const text = runbook(base.replace("name: '{{name}}' }", "name: '{{name}}', cpus: 4 }"));
    expect(problems(text)).toEqual(["steps.0.params.cpus: qemuCreate has no parameter 'cpus'"]);
  });

  it('refuses placeholders that name nothing', () => {
    const text = runbook(base.replace("name: '{{name}}' }", "name: '{{nmae}}' }"));
    expect(problems(text)).toEqual([
      'steps.0.params.name: unknown placeholder {{nmae}} (not a parameter, built-in or earlier capture)',
    ]);
  });

  it('lets later steps use what an earlier step captured, and not before', () => {
    const capture = `${base}
  - id: import
    description: Import
    ssh: { node: '{{node}}', command: 'qm importdisk {{vmid}} /tmp/x local-lvm' }
    expect: { output: "unused0:(?<disk>\\\\S+)" }
  - id: attach
    description: Attach
    api: qemuUpdateConfig
    params: { node: '{{node}}', vmid: '{{vmid}}', scsi0: '{{disk}}' }`;
    expect(problems(runbook(capture.replace('requires: [api]', 'requires: [api, ssh]')))).toEqual([]);
    const early = capture
      .replace("name: '{{name}}' }", "name: '{{name}}', scsi0: '{{disk}}' }")
      .replace('requires: [api]', 'requires: [api, ssh]');
    expect(problems(runbook(early))).toContain(
      'steps.0.params.scsi0: unknown placeholder {{disk}} (not a parameter, built-in or earlier capture)',
    );
  });

  it('refuses conditions on names that are not known while planning', () => {
    const text = runbook(base.replace('    description: Create it', '    description: Create it\n    when: disk == x'));
    expect(problems(text)).toEqual(["steps.0.when: unknown name 'disk' (not a parameter or built-in)"]);
  });

  it('refuses conditions it cannot parse', () => {
    const text = runbook(
      base.replace(
        '    description: Create it',
        '    description: Create it\n    when: pve_version >= 8 and node or name',
      ),
    );
    expect(problems(text)).toEqual(["steps.0.when: mixes 'and' with 'or'; split the step or use one connective"]);
  });

  it('refuses a destructive call that does not name the guest it expects', () => {
    const text = runbook(`${base}
cleanup:
  - id: remove
    after: create-vm
    description: Remove it
    api: qemuDestroy
    params: { node: '{{node}}', vmid: '{{vmid}}' }`);
    expect(problems(text)).toEqual([
      'cleanup.0.verify: qemuDestroy is destructive: name the guest it expects (verify.name) so vmid and name are checked first',
    ]);
  });

  it('refuses a cleanup after a step that does not exist', () => {
    const text = runbook(`${base}
cleanup:
  - id: remove
    after: create-the-vm
    description: Remove it
    api: qemuDestroy
    params: { node: '{{node}}', vmid: '{{vmid}}' }
    verify: { name: '{{name}}' }`);
    expect(problems(text)).toEqual(["cleanup.0.after: no step 'create-the-vm' to clean up after"]);
  });

  it('keeps requires honest both ways', () => {
    expect(problems(runbook(base.replace('requires: [api]', 'requires: [api, ansible]')))).toEqual([
      'requires.1: lists ansible but no step uses it',
    ]);
    const ssh = `${base}\n  - id: check\n    description: Check\n    ssh: { node: '{{node}}', command: qm status 100 }`;
    expect(problems(runbook(ssh))).toEqual(['requires: steps use ssh (step check) but requires does not list it']);
  });

  it('refuses conventions that do not exist or do not fit the parameter', () => {
    const text = runbook(
      base.replace(
        '  name: { type: dns_name, default: demo, description: Name }',
        '  name: { type: dns_name, default: demo, description: Name }\n  storage: { type: storage, convention: defaults.storag, description: S }\n  cores: { type: integer, convention: defaults.storage, description: C }',
      ),
    );
    const found = problems(text);
    expect(found).toHaveLength(2);
    expect(found[0]).toMatch(/^parameters\.storage\.convention: unknown convention 'defaults\.storag' \(known: /);
    expect(found[1]).toBe(
      'parameters.cores.convention: defaults.storage holds a string, which does not fit an integer parameter',
    );
  });

  it('refuses defaults that do not fit their parameter', () => {
    const text = runbook(base.replace('default: demo', 'default: not_a_dns_name!'));
    expect(problems(text)).toEqual(['parameters.name.default: must be a DNS name (letters, digits, dashes, dots)']);
  });

  it('refuses playbooks outside the ansible repository', () => {
    const text = runbook(`${base.replace('requires: [api]', 'requires: [api, ansible]')}
  - id: play
    description: Play
    ansible: { playbook: ../../etc/evil.yaml }`);
    expect(problems(text)).toEqual([
      'steps.1.ansible.playbook: must be a .yaml/.yml path inside the fleet-infra repository',
    ]);
  });
});
