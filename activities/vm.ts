/**
 * One VM, one action: the plan (with its pre-flight summary) and the dispatch of each step.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { PveClient } from '../lib/pve/client.js';
import { PveUnavailableError } from '../lib/pve/errors.js';
import { parseTags } from '../lib/inventory.js';
import type { VmActionInput } from '../lib/operations/catalog.js';
import type { PlanStep, Risk } from '../workflows/definitions.js';
import type { PlanDraft } from '../workflows/operation.js';
import type { WorkerDeps } from '../worker/deps.js';
import { withPveFailures } from './failures.js';

type Action = VmActionInput['action'];

const RISK: Record<Action, { risk: Risk; why: string }> = {
  start: { risk: 'low', why: 'starting a VM changes nothing it holds' },
  snapshot: { risk: 'low', why: 'a snapshot only adds a restore point' },
  shutdown: { risk: 'medium', why: 'the guest and its services go down (gracefully)' },
  reboot: { risk: 'medium', why: 'the guest and its services restart' },
  stop: { risk: 'high', why: 'a hard power-off can lose unsaved guest data' },
  rollback: { risk: 'high', why: 'a rollback discards everything since the snapshot' },
  migrate: { risk: 'high', why: 'a migration moves the VM to another node' },
  delete: { risk: 'high', why: 'deleting destroys the VM and purges its disks' },
};

export interface VmPreflight {
  node: string;
  status: string;
  uptimeSeconds: number;
  tags: string[];
  snapshots: string[];
  lock?: string;
  haState?: string;
  protection: boolean;
}

export type VmStepOutcome = { kind: 'already-done'; detail: string } | { kind: 'dispatched'; upid: string };

interface LocatedVm {
  node: string;
  name: string;
  status: string;
}

/** A refusal that no retry can change: the plan or the VM is not what the request said. */
function refuse(type: 'PlanRefused' | 'VmIdentityMismatch', message: string): never {
  throw ApplicationFailure.create({ type, message, nonRetryable: true });
}

async function locateVm(client: PveClient, vmid: number): Promise<LocatedVm | undefined> {
  const vms = await client.cluster.resources({ type: 'vm' });
  const vm = vms.find((r) => r.vmid === vmid && r.type === 'qemu');
  return vm?.node ? { node: vm.node, name: vm.name ?? '', status: vm.status ?? 'unknown' } : undefined;
}

/** The vmid *and* the name must match what the operator asked for, right before acting. */
async function verifyIdentity(client: PveClient, vmid: number, name: string): Promise<LocatedVm> {
  const vm = await locateVm(client, vmid);
  if (!vm) refuse('VmIdentityMismatch', `VM ${vmid} does not exist in this cluster`);
  const config = await client.qemu.config({ node: vm.node, vmid });
  if (config.name !== name) {
    refuse('VmIdentityMismatch', `VM ${vmid} is named '${config.name ?? ''}', not '${name}': refusing to act on it`);
  }
  return vm;
}

function stamp(now: Date): string {
  return now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

function stepsFor(input: VmActionInput, vm: VmPreflight, snapshotBeforeChange: boolean, now: Date): PlanStep[] {
  const base = { vmid: input.vmid, name: input.name, node: vm.node };
  const running = vm.status === 'running';
  switch (input.action) {
    case 'start':
      return [{ ...base, id: 'start', action: 'start', description: `start VM ${input.vmid} on ${vm.node}` }];
    case 'stop':
      return [{ ...base, id: 'stop', action: 'stop', description: `power off VM ${input.vmid} (no guest shutdown)` }];
    case 'reboot':
      if (!running) refuse('PlanRefused', `VM ${input.vmid} is not running, so it cannot be rebooted`);
      return [{ ...base, id: 'reboot', action: 'reboot', description: `reboot VM ${input.vmid} through the guest` }];
    case 'shutdown':
      return [
        {
          ...base,
          id: 'shutdown',
          action: 'shutdown',
          params: { timeout: input.shutdownTimeoutSeconds, forceStop: input.forceStopAfterTimeout },
          description:
            `shut VM ${input.vmid} down gracefully, waiting ${input.shutdownTimeoutSeconds} s` +
            (input.forceStopAfterTimeout ? ', then power it off' : ''),
        },
      ];
    case 'snapshot': {
      const snapname = input.snapshot ?? `pm_${stamp(now)}`;
      return [{ ...base, id: 'snapshot', action: 'snapshot', params: { snapname }, description: `snapshot VM ${input.vmid} as '${snapname}'` }];
    }
    case 'rollback': {
      if (!input.snapshot) refuse('PlanRefused', 'snapshot: a rollback needs the snapshot name');
      if (!vm.snapshots.includes(input.snapshot)) {
        refuse('PlanRefused', `snapshot: VM ${input.vmid} has no snapshot '${input.snapshot}' (has: ${vm.snapshots.join(', ') || 'none'})`);
      }
      const safety = `pm_pre_rollback_${stamp(now)}`;
      return [
        ...(snapshotBeforeChange
          ? [{ ...base, id: 'snapshot-before', action: 'snapshot', params: { snapname: safety }, description: `snapshot VM ${input.vmid} as '${safety}' before rolling back` }]
          : []),
        { ...base, id: 'rollback', action: 'rollback', params: { snapname: input.snapshot }, description: `roll VM ${input.vmid} back to '${input.snapshot}'` },
      ];
    }
    case 'migrate': {
      if (!input.target) refuse('PlanRefused', 'target: a migration needs the target node');
      if (input.target === vm.node) refuse('PlanRefused', `target: VM ${input.vmid} already runs on ${vm.node}`);
      return [
        {
          ...base,
          id: 'migrate',
          action: 'migrate',
          target: input.target,
          params: { target: input.target, online: running },
          description: `${running ? 'live-' : ''}migrate VM ${input.vmid} from ${vm.node} to ${input.target}`,
        },
      ];
    }
    case 'delete': {
      if (vm.protection) refuse('PlanRefused', `VM ${input.vmid} has protection enabled: turn it off in PVE first`);
      return [
        ...(running ? [{ ...base, id: 'stop', action: 'stop', description: `power off VM ${input.vmid} before deleting it` }] : []),
        {
          ...base,
          id: 'destroy',
          action: 'destroy',
          params: { purge: true, 'destroy-unreferenced-disks': true },
          description: `destroy VM ${input.vmid} '${input.name}' and purge its disks, backups jobs and HA entries`,
        },
      ];
    }
  }
}

export function createVmActivities(deps: Pick<WorkerDeps, 'pve' | 'config'>) {
  return {
    async planVmAction(input: VmActionInput): Promise<PlanDraft<{ preflight: VmPreflight }>> {
      const client = await deps.pve(input.environment);
      const policy = deps.config.environments[input.environment]!.policy;
      return withPveFailures(async () => {
        const vm = await verifyIdentity(client, input.vmid, input.name);
        const [status, config, snapshots] = await Promise.all([
          client.qemu.status({ node: vm.node, vmid: input.vmid }),
          client.qemu.config({ node: vm.node, vmid: input.vmid }),
          client.qemu.snapshots({ node: vm.node, vmid: input.vmid }),
        ]);
        const preflight: VmPreflight = {
          node: vm.node,
          status: status.status,
          uptimeSeconds: status.uptime ?? 0,
          tags: parseTags(config.tags),
          snapshots: snapshots.map((s) => s.name).filter((n) => n !== 'current'),
          protection: Boolean(config.protection),
          ...(config.lock ? { lock: config.lock } : {}),
          ...(status.ha?.state ? { haState: status.ha.state } : {}),
        };
        const steps = stepsFor(input, preflight, policy.snapshot_before_change, new Date());
        const { risk, why } = RISK[input.action];
        return {
          summary: `${input.action} VM ${input.vmid} '${input.name}' on ${vm.node} (${preflight.status}, up ${preflight.uptimeSeconds} s)`,
          risk,
          reasons: [why, ...(preflight.haState ? [`VM is HA-managed (${preflight.haState})`] : [])],
          steps,
          warnings: preflight.lock ? [`VM is locked (${preflight.lock}); PVE will refuse until the lock clears`] : [],
          nodes: [...new Set([vm.node, ...steps.flatMap((s) => (s.target ? [s.target] : []))])],
          vmids: [input.vmid],
          estimatedDurationMs: steps.length * 10_000,
          details: { preflight },
        };
      });
    },

    /**
     * Sends one plan step to PVE — once. First the VM's identity is re-verified and the world
     * checked, so a repeated attempt finds the step done instead of doing it twice.
     */
    async dispatchVmStep(args: { environment: string; vmid: number; name: string; step: PlanStep }): Promise<VmStepOutcome> {
      const client = await deps.pve(args.environment);
      const { vmid, step } = args;
      return withPveFailures(async () => {
        const vm = await verifyIdentity(client, vmid, args.name);
        const node = vm.node;
        const p = step.params ?? {};
        const done = (detail: string): VmStepOutcome => ({ kind: 'already-done', detail });
        const send = async (request: () => Promise<string>): Promise<VmStepOutcome> => {
          try {
            return { kind: 'dispatched', upid: await request() };
          } catch (err) {
            if (err instanceof PveUnavailableError && err.requestMayHaveBeenSent) {
              // PVE may have started the task: repeating the request could act twice.
              throw ApplicationFailure.create({
                type: 'OutcomeUnknown',
                message: `${step.action} of VM ${vmid} was sent but PVE did not answer; check its task list before retrying (${err.message})`,
                nonRetryable: true,
              });
            }
            throw err;
          }
        };
        switch (step.action) {
          case 'start':
            if (vm.status === 'running') return done(`VM ${vmid} is already running`);
            return send(() => client.qemu.start({ node, vmid }));
          case 'stop':
            if (vm.status === 'stopped') return done(`VM ${vmid} is already stopped`);
            return send(() => client.qemu.stop({ node, vmid }));
          case 'shutdown':
            if (vm.status === 'stopped') return done(`VM ${vmid} is already stopped`);
            return send(() => client.qemu.shutdown({ node, vmid, timeout: Number(p.timeout), forceStop: Boolean(p.forceStop) }));
          case 'reboot':
            return send(() => client.qemu.reboot({ node, vmid }));
          case 'snapshot': {
            const snapname = String(p.snapname);
            const existing = await client.qemu.snapshots({ node, vmid });
            if (existing.some((s) => s.name === snapname)) return done(`snapshot '${snapname}' already exists`);
            return send(() => client.qemu.snapshot({ node, vmid, snapname, description: 'taken by proxmox-manager' }));
          }
          case 'rollback':
            return send(() => client.qemu.rollback({ node, vmid, snapname: String(p.snapname) }));
          case 'migrate': {
            const target = String(p.target);
            if (node === target) return done(`VM ${vmid} already runs on ${target}`);
            const active = await client.tasks.list({ node, vmid, source: 'active' });
            const running = active.find((t) => t.type === 'qmigrate' || t.type === 'hamigrate');
            if (running) return { kind: 'dispatched', upid: running.upid };
            return send(() => client.qemu.migrate({ node, vmid, target, online: vm.status === 'running' }));
          }
          case 'destroy':
            return send(() => client.qemu.destroy({ node, vmid, purge: true, 'destroy-unreferenced-disks': true }));
          default:
            throw ApplicationFailure.create({ type: 'PlanRefused', message: `unknown step action '${step.action}'`, nonRetryable: true });
        }
      });
    },
  };
}

export type VmActivities = ReturnType<typeof createVmActivities>;
