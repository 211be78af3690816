import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EnvironmentConfig } from '../../lib/config/schema.js';
import { adaptRunbook } from '../../lib/runbooks/adapt.js';
import { unifiedDiff } from '../../lib/runbooks/diff.js';
import { parseRunbookMarkdown } from '../../lib/runbooks/markdown.js';

const env = EnvironmentConfig.parse({
  cluster: { name: 'home', nodes: [{ name: 'pve01', host: '127.0.0.1' }] },
  credentials: { token: { env: 'UNUSED' } },
  tls: { insecure: true },
});

const foreign = readFileSync(
  fileURLToPath(new URL('../fixtures/runbooks/lab-ubuntu-template.md', import.meta.url)),
  'utf8',
);

function adapt(markdown: string) {
  return adaptRunbook(parseRunbookMarkdown(markdown, 'submitted'), markdown, env);
}

describe('adapting a submitted runbook to the cluster conventions', () => {
  const adapted = adapt(foreign);
  const byPath = Object.fromEntries(adapted.adaptations.map((a) => [a.path, a]));

  it('moves disks, NICs, firmware, controller and agent onto the conventions, as parameters', () => {
    expect(byPath['parameters.storage.convention']).toMatchObject({ after: 'defaults.storage' });
    expect(byPath['parameters.storage.convention']!.reason).toBe(
      `follows defaults.storage = local-lvm instead of the runbook's default "local-zfs"`,
    );
    const create = adapted.runbook.steps.find((s) => s.id === 'create');
    expect(create?.kind === 'api' && create.params).toMatchObject({
      scsihw: '{{scsihw}}',
      bios: '{{bios}}',
      machine: '{{machine}}',
      cpu: '{{cpu}}',
      agent: '{{agent}}',
      net0: 'virtio,bridge={{bridge}}',
      scsi0: '{{storage}}:0,import-from=local:import/noble-server-cloudimg-amd64.qcow2',
    });
    expect(adapted.runbook.parameters['scsihw']).toMatchObject({ convention: 'defaults.scsi_controller' });
    expect(adapted.runbook.parameters['bridge']).toMatchObject({
      type: 'bridge',
      convention: 'defaults.network_bridge',
    });
    expect(adapted.runbook.parameters['agent']).toMatchObject({ type: 'boolean', convention: 'defaults.guest_agent' });
  });

  it('saves .img cloud images as .qcow2, and every reference follows', () => {
    expect(byPath['steps.0.params.filename']).toMatchObject({
      before: 'noble-server-cloudimg-amd64.img',
      after: 'noble-server-cloudimg-amd64.qcow2',
    });
    const download = adapted.runbook.steps[0]!;
    expect(download.kind === 'api' && download.params['url']).toBe(
      'https://cloud-images.ubuntu.com/noble/current/noble-server-cloudimg-amd64.img',
    );
    expect(byPath['steps.1.params.scsi0']).toMatchObject({ reason: 'refers to the renamed download' });
    expect(adapted.diff).toContain('-requires: [api]'.slice(1)); // unchanged lines keep their spelling
  });

  it("replaces a VMID outside the cluster's range by an allocated one, everywhere it was used", () => {
    expect(adapted.runbook.parameters['vmid']).toMatchObject({ type: 'vmid', range: 'templates', allocate: true });
    const vmids = [...adapted.runbook.steps, ...adapted.runbook.cleanup].map((s) => [
      s.id,
      s.kind === 'api' ? s.params['vmid'] : undefined,
    ]);
    expect(vmids).toEqual([
      ['download', undefined],
      ['create', '{{vmid}}'],
      ['template', '{{vmid}}'],
      ['remove', '{{vmid}}'],
    ]);
    expect(byPath['steps.1.params.vmid']!.reason).toBe('the next free VMID in 100-999 replaces 9000');
  });

  it('keeps comments and the markdown body, and shows the change as a unified diff', () => {
    expect(adapted.markdown).toContain('# Written for another cluster');
    expect(adapted.markdown).toContain('# Lab Ubuntu template');
    expect(adapted.diff).toMatch(
      /^--- lab-ubuntu-template\.md \(submitted\)\n\+\+\+ lab-ubuntu-template\.md \(adapted\)\n@@ /,
    );
    expect(adapted.diff).toContain('-      scsihw: lsi\n');
    expect(adapted.diff).toContain("+      scsihw: '{{scsihw}}'\n");
  });

  it('changes nothing in a runbook that already follows the conventions', () => {
    const again = adapt(adapted.markdown);
    expect(again.adaptations).toEqual([]);
    expect(again.diff).toBe('');
    const shipped = readFileSync(
      fileURLToPath(new URL('../../runbooks/ubuntu-2404-cloudinit.md', import.meta.url)),
      'utf8',
    );
    expect(adapt(shipped).adaptations).toEqual([]);
  });
});

describe('unified diffs', () => {
  it('prints hunks with context and line numbers', () => {
    const before = 'abcdefghijklm'.split('').join('\n');
    const after = 'abcDefghijklmn'.split('').join('\n');
    expect(unifiedDiff(before, after, { from: 'x', to: 'y' })).toBe(
      [
        '--- x',
        '+++ y',
        '@@ -1,7 +1,7 @@',
        ' a',
        ' b',
        ' c',
        '-d',
        '+D',
        ' e',
        ' f',
        ' g',
        '@@ -11,3 +11,4 @@',
        ' k',
        ' l',
        ' m',
        '+n',
        '',
      ].join('\n'),
    );
    // Changes at most twice the context apart share one hunk, as with diff -u.
    expect(
      unifiedDiff('abcdefg'.split('').join('\n'), 'Abcdefg'.split('').join('\n') + '\nh', { from: 'x', to: 'y' }),
    ).toMatch(/^--- x\n\+\+\+ y\n@@ -1,7 \+1,8 @@\n/);
    expect(unifiedDiff(before, before, { from: 'x', to: 'y' })).toBe('');
  });
});
