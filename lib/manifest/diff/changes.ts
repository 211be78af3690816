/** Changes to guests that exist (update, replace, delete) and the plan steps they take. */
import { safetySnapshotName } from '../../lifecycle/guest-steps.js';
import type { PlanStep, Risk } from '../../operations/plan.js';
import type { ConfigDelta, FieldChange, ParamValue } from '../config-delta.js';
import type { FleetGuest } from '../load.js';
import { kindLabel, type ObservedGuest } from '../observed.js';
import { configString } from '../pve-config.js';
import { maxRisk, type DiffContext, type GuestChange } from './types.js';

export function describeConfigChange(params: Record<string, ParamValue>): string {
  const set = Object.keys(params).filter((k) => k !== 'delete');
  const removed = params['delete'] === undefined ? [] : [`remove ${params['delete']}`];
  return [...(set.length ? [`set ${set.join(', ')}`] : []), ...removed].join(' and ');
}

export function step(key: string, suffix: string, fields: Omit<PlanStep, 'id'>): PlanStep {
  return { id: `${key}/${suffix}`, ...fields };
}

/** One step per disk to grow (`whose`: "VM 101's"); PVE grows disks, never shrinks them. */
export function resizeSteps(
  key: string,
  base: Pick<PlanStep, 'vmid' | 'name' | 'node'>,
  resizes: ConfigDelta['resizes'],
  whose: string,
): PlanStep[] {
  return resizes.map((r) =>
    step(key, `resize-${r.slot}`, {
      ...base,
      action: 'resize-disk',
      params: { disk: r.slot, size: `${r.sizeGiB}G` },
      description: `grow ${whose} ${r.slot} to ${r.sizeGiB}G`,
    }),
  );
}

export function updateChange(
  g: FleetGuest,
  key: string,
  o: ObservedGuest,
  delta: ConfigDelta,
  power: 'start' | 'shutdown' | undefined,
  moveTo: string | undefined,
  dependsOn: string[],
  ctx: DiffContext,
): GuestChange {
  const what = `${kindLabel(o.kind)} ${o.vmid}`;
  const base = { vmid: o.vmid, name: o.name, node: o.node };
  const fields = [...delta.fields];
  const steps: PlanStep[] = [];
  const reasons: string[] = [];
  let risk: Risk = 'low';
  const raise = (r: Risk, why: string) => {
    risk = maxRisk([risk, r]);
    reasons.push(why);
  };
  const changesConfig = Object.keys(delta.params).length > 0 || delta.resizes.length > 0;

  if (changesConfig && delta.hardware && ctx.policy.snapshot_before_change) {
    const snapname = safetySnapshotName('reconcile', ctx.now);
    steps.push(
      step(key, 'snapshot', {
        ...base,
        action: 'snapshot',
        params: { snapname },
        description: `snapshot ${what} as '${snapname}' before changing it`,
      }),
    );
  }
  let before: Record<string, string | null> | undefined;
  if (Object.keys(delta.params).length > 0) {
    const digest = configString(o.config!, 'digest');
    const keys = [
      ...Object.keys(delta.params).filter((k) => k !== 'delete'),
      ...String(delta.params['delete'] ?? '')
        .split(',')
        .filter(Boolean),
    ];
    before = Object.fromEntries(keys.map((k) => [k, configString(o.config!, k) ?? null]));
    steps.push(
      step(key, 'config', {
        ...base,
        action: 'config',
        params: { ...delta.params, ...(digest ? { digest } : {}) },
        description: `${describeConfigChange(delta.params)} of ${what} '${o.name}' (refused by PVE if its config changed since this plan)`,
      }),
    );
  }
  steps.push(...resizeSteps(key, base, delta.resizes, `${what}'s`));
  if (delta.hardware) raise('medium', `changes the CPU, memory, disks, network or cloud-init of ${what} '${o.name}'`);
  else if (changesConfig) raise('low', `changes only tags, description or onboot of ${what} '${o.name}'`);

  if (moveTo) {
    fields.push({ field: 'node', from: o.node, to: moveTo });
    const mode = o.status !== 'running' ? 'offline' : o.kind === 'qemu' ? 'online' : 'restart';
    steps.push(
      step(key, 'migrate', {
        ...base,
        action: 'migrate',
        target: moveTo,
        params: { target: moveTo, mode },
        description: `migrate ${what} from ${o.node} to ${moveTo} (${mode})`,
      }),
    );
    raise('high', `migrates ${what} '${o.name}' to ${moveTo}`);
  }
  if (power === 'start') {
    fields.push({ field: 'power', from: o.status, to: 'running' });
    steps.push(step(key, 'start', { ...base, node: moveTo ?? o.node, action: 'start', description: `start ${what}` }));
    raise('low', `starts ${what} '${o.name}'`);
  } else if (power === 'shutdown') {
    fields.push({ field: 'power', from: o.status, to: 'stopped' });
    steps.push(
      step(key, 'shutdown', {
        ...base,
        node: moveTo ?? o.node,
        action: 'shutdown',
        params: { timeout: 180, forceStop: false },
        description: `shut ${what} down gracefully (up to 180 s)`,
      }),
    );
    raise('medium', `shuts down ${what} '${o.name}'`);
  } else if (delta.restart && o.status === 'running') {
    steps.push(
      step(key, 'reboot', {
        ...base,
        node: moveTo ?? o.node,
        action: 'reboot',
        description: `reboot ${what} so the changes that apply at boot take effect`,
      }),
    );
    raise('medium', `reboots ${what} '${o.name}' for changes that apply at boot`);
  }
  return {
    key,
    action: 'update',
    kind: o.kind,
    ...base,
    restart: delta.restart && o.status === 'running' && power !== 'shutdown',
    fields,
    steps,
    risk,
    reasons,
    wave: 0,
    dependsOn,
    file: g.file,
    ...(before ? { before } : {}),
  };
}

function removalSteps(key: string, o: ObservedGuest): PlanStep[] {
  const what = `${kindLabel(o.kind)} ${o.vmid}`;
  const base = { vmid: o.vmid, name: o.name, node: o.node };
  return [
    ...(o.status === 'running'
      ? [
          step(key, 'stop', {
            ...base,
            action: 'stop',
            description: `power off ${what} '${o.name}' before destroying it`,
          }),
        ]
      : []),
    step(key, 'destroy', {
      ...base,
      action: 'destroy',
      params: { purge: true, 'destroy-unreferenced-disks': true },
      description: `destroy ${what} '${o.name}' and its disks (vmid and name verified first)`,
    }),
  ];
}

export function replaceChange(
  o: ObservedGuest,
  forcing: FieldChange[],
  created: GuestChange,
  dependsOn: string[],
  file: string,
): GuestChange {
  const what = `${kindLabel(o.kind)} ${o.vmid} '${o.name}'`;
  return {
    ...created,
    action: 'replace',
    vmid: o.vmid,
    name: o.name,
    node: o.node,
    kind: o.kind,
    replacement: { vmid: created.vmid, name: created.name, node: created.node, kind: created.kind },
    fields: [...forcing, ...created.fields.filter((f) => !forcing.some((x) => x.field === f.field))],
    steps: [
      ...removalSteps(created.key, o).map((s) => ({ ...s, id: `${created.key}/old-${s.id.split('/').pop()}` })),
      ...created.steps,
    ],
    risk: 'high',
    reasons: [
      `replaces ${what} (${forcing.map((f) => f.field).join(' and ')} changed): the guest and its disks are destroyed and created anew`,
    ],
    dependsOn,
    file,
  };
}

export function deleteChange(key: string, o: ObservedGuest, why: string): GuestChange {
  const what = `${kindLabel(o.kind)} ${o.vmid} '${o.name}'`;
  return {
    key,
    action: 'delete',
    kind: o.kind,
    vmid: o.vmid,
    name: o.name,
    node: o.node,
    restart: false,
    fields: [],
    steps: removalSteps(key, o),
    risk: 'high',
    reasons: [`destroys ${what} and its disks: the manifest claims it (${why}) and does not list it`],
    wave: 0,
    dependsOn: [],
    claimedBy: why,
  };
}
