import { describe, expect, it } from 'vitest';
import { createRunbookActivities } from '../../activities/runbook.js';
import { AppConfig } from '../../lib/config/schema.js';
import { PveApiError } from '../../lib/pve/errors.js';
import type { ResolvedStep } from '../../lib/runbooks/plan.js';

const config = AppConfig.parse({
  environments: {
    home: {
      cluster: { name: 'c', nodes: [{ name: 'pve1', host: 'h' }] },
      credentials: { token: { env: 'UNUSED' } },
      tls: { insecure: true },
    },
  },
});

const create: ResolvedStep = {
  id: 'create-vm',
  description: 'create',
  kind: 'api',
  api: 'qemuCreate',
  method: 'POST',
  params: { node: 'pve1', vmid: '{{vmid}}', name: 'tpl' },
  async: true,
  destructive: false,
  pending: ['vmid'],
  captures: [],
  timeoutMs: 1,
};

/** A cluster where VMIDs 100 and 101 are listed, and 102 is taken by someone else as we try it. */
function cluster() {
  const creates: number[] = [];
  const client = {
    cluster: {
      resources: async () => [
        { id: 'qemu/100', type: 'qemu', vmid: 100 },
        { id: 'qemu/101', type: 'qemu', vmid: 101 },
      ],
    },
    call: async (name: string, params: { vmid: number }) => {
      expect(name).toBe('qemuCreate');
      creates.push(params.vmid);
      if (params.vmid === 102) {
        throw new PveApiError(
          { method: 'POST', path: '/nodes/pve1/qemu' },
          500,
          "unable to create VM 102 - VM 102 already exists on node 'pve1'",
        );
      }
      return `UPID:pve1:0000AAAA:00000001:6B000000:qmcreate:${params.vmid}:automation@pve!pm:`;
    },
  };
  const activities = createRunbookActivities({
    config,
    pve: async () => client as never,
    sshTarget: async () => {
      throw new Error('no SSH here');
    },
  });
  return { activities, creates };
}

describe('allocating a VMID while creating', () => {
  it('takes the lowest free VMID of the range, and the next one when PVE says it exists', async () => {
    const { activities, creates } = cluster();
    const outcome = await activities.runRunbookStep({
      environment: 'home',
      step: create,
      vars: {},
      allocate: { name: 'vmid', range: { min: 100, max: 999 }, step: 'create-vm', param: 'vmid', exclude: [] },
    });
    expect(creates).toEqual([102, 103]);
    expect(outcome).toMatchObject({ kind: 'task', allocated: { vmid: 103 } });
  });

  it('skips VMIDs an earlier attempt found taken', async () => {
    const { activities, creates } = cluster();
    await activities.runRunbookStep({
      environment: 'home',
      step: create,
      vars: {},
      allocate: { name: 'vmid', range: { min: 100, max: 999 }, step: 'create-vm', param: 'vmid', exclude: [102, 103] },
    });
    expect(creates).toEqual([104]);
  });

  it('fails without creating anything when the range is full', async () => {
    const { activities, creates } = cluster();
    await expect(
      activities.runRunbookStep({
        environment: 'home',
        step: create,
        vars: {},
        allocate: { name: 'vmid', range: { min: 100, max: 101 }, step: 'create-vm', param: 'vmid', exclude: [] },
      }),
    ).rejects.toMatchObject({ type: 'NoFreeVmid', message: 'step create-vm: no free VMID left in 100-101' });
    expect(creates).toEqual([]);
  });
});
