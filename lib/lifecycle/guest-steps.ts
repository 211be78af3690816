/**
 * What one action on one guest (VM or container) takes, as plan steps: pure, from the guest's
 * pre-flight summary, so single-guest operations, bulk operations and tests share one answer.
 * Refusals name the field at fault and never reach PVE.
 */
import type { PlanStep, Risk } from '../operations/plan.js';

export type GuestType = 'qemu' | 'lxc';

export type GuestAction =
  'start' | 'stop' | 'shutdown' | 'reboot' | 'snapshot' | 'rollback' | 'migrate' | 'delete' | 'resize';

/** The state a guest is in right before acting: the pre-flight summary a plan shows. */
export interface GuestPreflight {
  type: GuestType;
  node: string;
  status: string;
  uptimeSeconds: number;
  tags: string[];
  snapshots: string[];
  protection: boolean;
  lock?: string;
  haState?: string;
  cores: number;
  memoryMb: number;
  /** Disk keys (scsi0, rootfs, ...) and their sizes in bytes, from the config. */
  disks: Record<string, number>;
}

export interface ResizeRequest {
  cores?: number;
  memoryMb?: number;
  /** Grow one disk to this size (never shrinks). */
  disk?: { key: string; sizeGb: number };
}

export interface GuestActionRequest {
  action: GuestAction;
  vmid: number;
  name: string;
  snapshot?: string;
  target?: string;
  shutdownTimeoutSeconds: number;
  forceStopAfterTimeout: boolean;
  resize?: ResizeRequest;
}

/** The request cannot be planned as asked (bad field, guest in the wrong state). */
export class StepRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StepRefusal';
  }
}

export const ACTION_RISK: Record<GuestAction, { risk: Risk; why: string }> = {
  start: { risk: 'low', why: 'starting a guest changes nothing it holds' },
  snapshot: { risk: 'low', why: 'a snapshot only adds a restore point' },
  shutdown: { risk: 'medium', why: 'the guest and its services go down (gracefully)' },
  reboot: { risk: 'medium', why: 'the guest and its services restart' },
  resize: { risk: 'medium', why: 'changing CPU, memory or disks changes what the guest runs with' },
  stop: { risk: 'high', why: 'a hard power-off can lose unsaved guest data' },
  rollback: { risk: 'high', why: 'a rollback discards everything since the snapshot' },
  migrate: { risk: 'high', why: 'a migration moves the guest to another node' },
  delete: { risk: 'high', why: 'deleting destroys the guest and purges its disks' },
};

const GiB = 1024 ** 3;

/** `20251122T043000` -> `20251122043000`: a snapshot-name-safe timestamp. */
export function snapshotStamp(now: Date): string {
  return now.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/**
 * The safety snapshot taken before a change, named for the operation that takes it — and
 * never the name of a snapshot the guest already has.
 */
export function safetySnapshotName(operation: string, now: Date, existing: readonly string[] = []): string {
  const base = `pm_pre_${operation}_${snapshotStamp(now)}`;
  let name = base;
  for (let n = 2; existing.includes(name); n++) name = `${base}_${n}`;
  return name;
}

function kind(type: GuestType): string {
  return type === 'qemu' ? 'VM' : 'CT';
}

export function planGuestSteps(
  request: GuestActionRequest,
  guest: GuestPreflight,
  opts: { snapshotBeforeChange: boolean; now: Date },
): PlanStep[] {
  const { vmid, name } = request;
  const base = { vmid, name, node: guest.node };
  const running = guest.status === 'running';
  const what = `${kind(guest.type)} ${vmid}`;
  const safetySnapshot = (operation: string): PlanStep[] => {
    if (!opts.snapshotBeforeChange) return [];
    const snapname = safetySnapshotName(operation, opts.now, guest.snapshots);
    return [
      {
        ...base,
        id: 'snapshot-before',
        action: 'snapshot',
        params: { snapname },
        description: `snapshot ${what} as '${snapname}' before the change`,
      },
    ];
  };

  switch (request.action) {
    case 'start':
      return [{ ...base, id: 'start', action: 'start', description: `start ${what} on ${guest.node}` }];
    case 'stop':
      return [{ ...base, id: 'stop', action: 'stop', description: `power off ${what} (no guest shutdown)` }];
    case 'reboot':
      if (!running) throw new StepRefusal(`${what} is not running, so it cannot be rebooted`);
      return [{ ...base, id: 'reboot', action: 'reboot', description: `reboot ${what} through the guest` }];
    case 'shutdown':
      return [
        {
          ...base,
          id: 'shutdown',
          action: 'shutdown',
          params: { timeout: request.shutdownTimeoutSeconds, forceStop: request.forceStopAfterTimeout },
          description:
            `shut ${what} down gracefully, waiting ${request.shutdownTimeoutSeconds} s` +
            (request.forceStopAfterTimeout ? ', then power it off' : ', and leave it running if it does not stop'),
        },
      ];
    case 'snapshot': {
      const snapname = request.snapshot ?? `pm_${snapshotStamp(opts.now)}`;
      if (guest.snapshots.includes(snapname))
        throw new StepRefusal(`snapshot: ${what} already has a snapshot '${snapname}'`);
      return [
        {
          ...base,
          id: 'snapshot',
          action: 'snapshot',
          params: { snapname },
          description: `snapshot ${what} as '${snapname}'`,
        },
      ];
    }
    case 'rollback': {
      if (!request.snapshot) throw new StepRefusal('snapshot: a rollback needs the snapshot name');
      if (!guest.snapshots.includes(request.snapshot)) {
        throw new StepRefusal(
          `snapshot: ${what} has no snapshot '${request.snapshot}' (has: ${guest.snapshots.join(', ') || 'none'})`,
        );
      }
      return [
        ...safetySnapshot('rollback'),
        {
          ...base,
          id: 'rollback',
          action: 'rollback',
          params: { snapname: request.snapshot },
          description: `roll ${what} back to '${request.snapshot}'`,
        },
      ];
    }
    case 'migrate': {
      if (!request.target) throw new StepRefusal('target: a migration needs the target node');
      if (request.target === guest.node) throw new StepRefusal(`target: ${what} already runs on ${guest.node}`);
      const mode = !running ? 'offline' : guest.type === 'qemu' ? 'online' : 'restart';
      return [
        {
          ...base,
          id: 'migrate',
          action: 'migrate',
          target: request.target,
          params: { target: request.target, mode },
          description:
            `${mode === 'online' ? 'live-' : mode === 'restart' ? 'restart-' : ''}migrate ${what} from ${guest.node} to ${request.target}` +
            (guest.haState ? ' (through the HA manager)' : ''),
        },
      ];
    }
    case 'delete': {
      if (guest.protection) throw new StepRefusal(`${what} has protection enabled: turn it off in PVE first`);
      return [
        ...(running
          ? [{ ...base, id: 'stop', action: 'stop', description: `power off ${what} before deleting it` }]
          : []),
        {
          ...base,
          id: 'destroy',
          action: 'destroy',
          params: { purge: true, 'destroy-unreferenced-disks': true },
          description: `destroy ${what} '${name}' and purge its disks, backup jobs and HA entries`,
        },
      ];
    }
    case 'resize':
      return [...safetySnapshot('resize'), ...resizeSteps(request.resize ?? {}, guest, base, what)];
  }
}

function resizeSteps(
  resize: ResizeRequest,
  guest: GuestPreflight,
  base: Pick<PlanStep, 'vmid' | 'name' | 'node'>,
  what: string,
): PlanStep[] {
  const steps: PlanStep[] = [];
  const config: Record<string, number> = {};
  if (resize.cores !== undefined && resize.cores !== guest.cores) config['cores'] = resize.cores;
  if (resize.memoryMb !== undefined && resize.memoryMb !== guest.memoryMb) config['memory'] = resize.memoryMb;
  if (Object.keys(config).length > 0) {
    const changes = Object.entries(config).map(
      ([k, v]) => `${k} ${k === 'cores' ? guest.cores : guest.memoryMb} -> ${v}`,
    );
    steps.push({
      ...base,
      id: 'configure',
      action: 'config',
      params: config,
      description:
        `set ${what}'s ${changes.join(', ')}` +
        (guest.status === 'running'
          ? ' (a running guest may take it at its next restart unless hotplug allows it)'
          : ''),
    });
  }
  if (resize.disk) {
    const { key, sizeGb } = resize.disk;
    const current = guest.disks[key];
    if (current === undefined) {
      throw new StepRefusal(
        `disk.key: ${what} has no disk '${key}' (has: ${Object.keys(guest.disks).join(', ') || 'none'})`,
      );
    }
    if (guest.type !== 'qemu')
      throw new StepRefusal('disk: growing container volumes is not supported yet; resize it in PVE');
    const target = sizeGb * GiB;
    if (target < current) {
      throw new StepRefusal(`disk.sizeGb: ${key} is ${formatGb(current)}; disks only grow (asked for ${sizeGb} GiB)`);
    }
    if (target > current) {
      steps.push({
        ...base,
        id: 'resize-disk',
        action: 'resize-disk',
        params: { disk: key, size: `${sizeGb}G` },
        description: `grow ${what}'s ${key} from ${formatGb(current)} to ${sizeGb} GiB`,
      });
    }
  }
  if (steps.length === 0)
    throw new StepRefusal(`resize: ${what} already has the requested cores, memory and disk size`);
  return steps;
}

function formatGb(bytes: number): string {
  return `${Math.round((bytes / GiB) * 10) / 10} GiB`;
}

/**
 * Where a step should leave the guest. PVE reports an HA-managed guest's request done when it
 * is only queued, so after such steps the world is checked, not the task.
 */
export function settledState(
  step: Pick<PlanStep, 'action' | 'target'>,
): { status?: 'running' | 'stopped'; node?: string } | undefined {
  switch (step.action) {
    case 'start':
      return { status: 'running' };
    case 'stop':
    case 'shutdown':
      return { status: 'stopped' };
    case 'migrate':
      return step.target ? { node: step.target } : undefined;
    default:
      return undefined;
  }
}
