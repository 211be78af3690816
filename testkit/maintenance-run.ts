/**
 * Driving a rolling maintenance the way the API does — validated body, start under the
 * environment's workflow ID, approve as a second person, follow its progress — and the
 * simulated clusters it runs on. Shared by the benchmark and the integration tests.
 */
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { z } from 'zod';
import { operationInput } from './operation-input.js';
import { rollingMaintenanceOperation, type RollingMaintenanceInput } from '../lib/operations/catalog.js';
import type { Scenario } from '../sim/scenario.js';
import { maintenanceQuery, type MaintenanceProgress } from '../workflows/maintenance-definitions.js';
import type { rollingMaintenance } from '../workflows/rolling-maintenance.js';
import { withAutomationToken } from './scenarios.js';

/** A request body as a client sends it: defaults may be left out. */
export type MaintenanceBody = Partial<z.input<typeof rollingMaintenanceOperation.body>> & { environment: string };

/** A validated request body, as the API would pass it to the workflow. */
export function maintenanceInput(body: MaintenanceBody, requester = 'operator'): RollingMaintenanceInput {
  return operationInput(rollingMaintenanceOperation.body, body, requester);
}

export function startMaintenance(
  client: Client,
  taskQueue: string,
  input: RollingMaintenanceInput,
): Promise<WorkflowHandle<typeof rollingMaintenance>> {
  return client.workflow.start<typeof rollingMaintenance>('rollingMaintenance', {
    taskQueue,
    workflowId: rollingMaintenanceOperation.workflowId(input, ''),
    args: [input],
  });
}

/** Polls the maintenance query until `done` holds. */
export async function waitForMaintenance(
  handle: WorkflowHandle,
  done: (p: MaintenanceProgress) => boolean,
  timeoutMs = 120_000,
): Promise<MaintenanceProgress> {
  const deadline = Date.now() + timeoutMs;
  let last: MaintenanceProgress | undefined;
  for (;;) {
    try {
      last = await handle.query(maintenanceQuery);
      if (done(last)) return last;
    } catch (err) {
      // The query exists once the plan is approved and applying began.
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline)
      throw new Error(
        `rolling maintenance did not get there in ${timeoutMs} ms; last: ${last?.summary ?? 'no progress yet'}`,
      );
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface MaintenanceScenarioOptions {
  /** Guests per node (two thirds on shared storage, the rest with a local disk; one container per node). */
  guestsPerNode?: number;
  nodes?: number;
  rebootSeconds?: number;
  /** Packages each upgrade installs besides pve-manager, qemu-server and the kernel (2 simulated s each). */
  extraPackages?: number;
}

/** PVE 9.1.2 -> 9.1.4 with a new kernel: three packages, plus `extra` others, and a reboot required. */
export function pendingUpgrade(extra = 0) {
  return {
    pveversion: '9.1.4',
    kernel: '6.17.4-1-pve',
    packages: [
      { name: 'pve-manager', from: '9.1.2', to: '9.1.4' },
      { name: 'qemu-server', from: '9.0.23', to: '9.0.25' },
      { name: 'proxmox-kernel-6.17', from: '6.17.2-1', to: '6.17.4-1' },
      ...Array.from({ length: extra }, (_, i) => ({ name: `lib-extra${i}`, from: '1.0', to: '1.1' })),
    ],
  };
}

/**
 * Nodes with a pending PVE upgrade (new manager and kernel), guests that can all be emptied
 * onto the others: live-migrating VMs on shared and local storage, a container (restart
 * migration), an HA-managed VM, and a stopped VM that stays put.
 */
export function maintenanceScenario(options: MaintenanceScenarioOptions = {}): Scenario {
  const count = options.nodes ?? 3;
  const perNode = options.guestsPerNode ?? 3;
  const names = Array.from({ length: count }, (_, i) => `pve0${i + 1}`);
  const upgrade = pendingUpgrade(options.extraPackages);
  const guests: NonNullable<Scenario['guests']> = names.flatMap((node, n) => [
    ...Array.from({ length: perNode }, (_, i) => {
      const vmid = (n + 1) * 100 + i + 1;
      const local = i % 3 === 2;
      return {
        vmid,
        name: `${node}-vm${i + 1}`,
        node,
        // The last node is the small one: half-size guests.
        memory: [2048, 4096, 8192][i % 3]! / (n === count - 1 ? 2 : 1),
        disks: [{ storage: local ? 'local-lvm' : 'nfs', size: local ? '16G' : '32G' }],
        ...(i === 0 && n === 0 ? { ha: true } : {}),
      };
    }),
    {
      vmid: (n + 1) * 100 + 50,
      type: 'lxc' as const,
      name: `${node}-ct`,
      node,
      memory: 512,
      disks: [{ storage: 'local-lvm', size: '8G' }],
    },
    ...(n === 1
      ? [
          {
            vmid: (n + 1) * 100 + 60,
            name: `${node}-archive`,
            node,
            status: 'stopped' as const,
            disks: [{ storage: 'nfs', size: '8G' }],
          },
        ]
      : []),
  ]);
  return withAutomationToken({
    pveversion: '9.1.2',
    kernel: '6.17.2-1-pve',
    nodes: names.map((name, i) => ({
      name,
      cores: 32,
      memory: i === count - 1 ? '64G' : '128G',
      link_gbps: i === count - 1 ? 2.5 : 10,
      reboot_seconds: options.rebootSeconds ?? 120,
      upgrade,
    })),
    storages: [
      { id: 'local-lvm', type: 'lvmthin', content: ['images', 'rootdir'], size: '1T' },
      { id: 'nfs', type: 'nfs', content: ['images', 'rootdir', 'iso'], size: '8T' },
    ],
    guests,
  });
}
