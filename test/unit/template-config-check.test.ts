import { describe, expect, it } from 'vitest';
import { compareGuestConfig, expectedGuestConfig } from '../../lib/runbooks/config-check.js';
import type { ResolvedStep } from '../../lib/runbooks/plan.js';

function api(
  api: Extract<ResolvedStep, { kind: 'api' }>['api'],
  params: Record<string, string | number | boolean>,
): ResolvedStep {
  return {
    id: api,
    description: api,
    kind: 'api',
    api,
    method: 'POST',
    params,
    async: true,
    destructive: false,
    pending: [],
    captures: [],
    timeoutMs: 1,
  };
}

const steps = [
  api('qemuCreate', {
    node: 'pve01',
    vmid: 104,
    name: 'ubuntu',
    tags: 'template;cloudinit',
    bios: 'ovmf',
    cores: 2,
    memory: 2048,
    agent: true,
    numa: false,
    efidisk0: 'local-lvm:1,efitype=4m,pre-enrolled-keys=0',
    ide2: 'local-lvm:cloudinit',
    net0: 'virtio,bridge=vmbr0',
  }),
  api('qemuUpdateConfigAsync', {
    node: 'pve01',
    vmid: 104,
    scsi0: 'local-lvm:0,import-from=local:import/u.qcow2,iothread=1',
    boot: 'order=scsi0',
  }),
  api('qemuResize', { node: 'pve01', vmid: 104, disk: 'scsi0', size: '32G' }),
];

/** What PVE shows after the build: volumes named, sizes added, a MAC on the NIC, tags sorted. */
const built = {
  name: 'ubuntu',
  tags: 'cloudinit;template',
  bios: 'ovmf',
  cores: 2,
  memory: '2048',
  agent: '1',
  efidisk0: 'local-lvm:base-104-disk-0,efitype=4m,pre-enrolled-keys=0,size=4M',
  ide2: 'local-lvm:vm-104-cloudinit,media=cdrom',
  net0: 'virtio=BC:24:11:4F:00:01,bridge=vmbr0,firewall=0',
  scsi0: 'local-lvm:base-104-disk-1,iothread=1,size=32G',
  boot: 'order=scsi0',
  template: 1,
  digest: 'abc',
};

describe("checking a built template's config", () => {
  const expected = expectedGuestConfig(steps);

  it('expects what create and config steps set, not what addresses the call or resizes a disk', () => {
    expect(Object.keys(expected).sort()).toEqual(
      ['agent', 'bios', 'boot', 'cores', 'efidisk0', 'ide2', 'memory', 'name', 'net0', 'numa', 'scsi0', 'tags'].sort(),
    );
  });

  it('accepts the config as PVE stores it', () => {
    expect(compareGuestConfig(expected, built)).toEqual([]);
  });

  it('names each setting that is not what the runbook set', () => {
    const wrong = {
      ...built,
      scsi0: 'other:base-104-disk-1,size=32G',
      net0: 'virtio=BC:24:11:4F:00:01,bridge=vmbr1',
      tags: 'template',
      numa: 1,
      bios: undefined,
    };
    expect(compareGuestConfig(expected, wrong)).toEqual([
      { key: 'tags', expected: 'template;cloudinit', actual: 'template' },
      { key: 'bios', expected: 'ovmf', actual: undefined },
      { key: 'numa', expected: '0', actual: '1' },
      { key: 'net0', expected: 'virtio,bridge=vmbr0', actual: 'virtio=BC:24:11:4F:00:01,bridge=vmbr1' },
      {
        key: 'scsi0',
        expected: 'local-lvm:0,import-from=local:import/u.qcow2,iothread=1',
        actual: 'other:base-104-disk-1,size=32G',
      },
    ]);
  });
});
