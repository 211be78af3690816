/**
 * One node's maintenance, a child of the rolling maintenance (whose plan was approved):
 *
 *   1. check     the cluster is quorate, the other nodes are up, the node runs nothing else
 *   2. evacuate  plan its evacuation fresh, move its guests                (child migrateGuests)
 *   3. upgrade   the upgrade command over SSH, output to the node's log
 *   4. reboot    if required (or always), and wait until it is back: API, version, quorum
 *   5. return    its guests back home                                     (child migrateGuests)
 *   6. verify    the node runs the new version and holds its guests, each as it was
 *   (with HA maintenance on between 2 and 5, when asked)
 *
 * A step that fails halts the node — it waits, with everything it knows, for the operator:
 * resume (the failed step runs again), skip-node (its guests come back if it is up, and the
 * rollout goes on), or abort-and-return (the same, then the rollout stops). Steps that
 * finished never run again; a worker lost mid-step is picked up where it was.
 *
 * Cancelled (with its rollout), the node finishes the step it is in — an upgrade, a reboot,
 * the running migrations — and starts no other; its report says which guests are away where.
 */
import {
  ApplicationFailure,
  CancellationScope,
  condition,
  executeChild,
  getExternalWorkflowHandle,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { RollingMaintenanceActivities } from '../activities/rolling-maintenance.js';
import type { EvacuationActivities, Verification } from '../activities/evacuation.js';
import { describeStuck, runningLeftBehind, type NodeSettings, type NodeStep } from '../lib/maintenance/plan.js';
import type { EvacuationPlan, GuestMove } from '../lib/planning/evacuation.js';
import type { RunbookPlan } from '../lib/runbooks/plan.js';
import { notStarted, watchCancellation, type Cancellation } from './cancellation.js';
import type { StepProgress } from './definitions.js';
import { failureMessage } from './guest-step.js';
import {
  nodeDecisionSignal,
  nodeReportSignal,
  type AwayGuest,
  type MaintenanceDecision,
  type NodeReport,
  type UpgradeOutcome,
} from './maintenance-definitions.js';
import { migrateGuests, migrationProgressSignal, type GuestOutcome } from './migrate-guests.js';
import type { OperationHandle } from './operation.js';
import { applyRunbookPlan } from './runbook-run.js';

export interface MaintainNodeInput {
  environment: string;
  node: string;
  /** Nodes of the same group, maintained at the same time: they receive no guests and may be down. */
  alongside: string[];
  settings: NodeSettings;
  /** The rolling maintenance, told of every change. */
  reportTo: string;
  /** The node's log file is <log dir>/<logKey>/<node>.log. */
  logKey: string;
  /** A runbook planned for this node, run after the upgrade. */
  runbook?: { name: string; plan: RunbookPlan };
}

/** Only reads: repeated freely. */
const reading = proxyActivities<RollingMaintenanceActivities & EvacuationActivities>({
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '20 seconds', maximumAttempts: 10 },
});

/** Acts on the node; each activity checks the world first, so a retry after a lost worker does not act twice. */
const acting = proxyActivities<RollingMaintenanceActivities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '2 seconds', maximumAttempts: 3 },
});

/** Waits for a rebooting node; only reads. */
const waiting = proxyActivities<RollingMaintenanceActivities>({
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '10 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 20 },
});

/** How often guest-by-guest migration progress is passed on to the rollout (step changes always are). */
const PROGRESS_REPORT_INTERVAL_MS = 30_000;

/** The operator's decision ended the node's run early. */
class NodeStopped extends Error {
  constructor(readonly decision: MaintenanceDecision) {
    super(`${decision.action} by ${decision.by}`);
  }
}

export async function maintainNode(input: MaintainNodeInput): Promise<NodeReport> {
  const cancellation = watchCancellation();
  return CancellationScope.nonCancellable(() => maintain(input, cancellation));
}

async function maintain(input: MaintainNodeInput, cancellation: Cancellation): Promise<NodeReport> {
  const { environment, node, settings } = input;
  const self = workflowInfo().workflowId;
  const now = () => new Date(Date.now()).toISOString();
  const report: NodeReport = {
    node,
    state: 'running',
    steps: [],
    away: [],
    moved: 0,
    returned: 0,
    notReturned: [],
    decisions: [],
    warnings: [],
    startedAt: now(),
  };
  const away = new Map<number, AwayGuest>();
  const cameBack: AwayGuest[] = [];
  const moving = { phase: 'evacuate' as 'evacuate' | 'return', runs: 0, done: new Set<number>() };
  let deadline = Date.now() + settings.maxNodeMs;
  let decision: MaintenanceDecision | undefined;
  let halts = 0;
  let haEnabled = false;
  let upgrade: UpgradeOutcome | undefined;
  /** The boot seen before the reboot was sent: a node up on a shorter uptime has rebooted since. */
  let rebooting: { uptimeBefore: number; kernelBefore?: string; why: string; sent: boolean } | undefined;

  const reporter = reportTo(input.reportTo);
  let toldAt = 0;
  const show = () => {
    report.away = [...away.values()].sort((a, b) => a.vmid - b.vmid);
    setCurrentDetails(describe(report));
  };
  const tell = () => {
    show();
    reporter.send(report);
    toldAt = Date.now();
  };

  setHandler(nodeDecisionSignal, (d) => {
    if (report.state === 'halted' && decision === undefined && d.halt === report.halted?.id) decision = d;
  });
  setHandler(migrationProgressSignal, (updates) => {
    for (const u of updates) {
      if (u.state !== 'succeeded' || moving.done.has(u.vmid)) continue;
      moving.done.add(u.vmid);
      if (moving.phase === 'evacuate') report.moved++;
      else report.returned++;
    }
    // Every report is a signal in the rollout's history: guest by guest only now and then.
    if (Date.now() - toldAt >= PROGRESS_REPORT_INTERVAL_MS) tell();
    else show();
  });

  const entry = (step: NodeStep): StepProgress => {
    let e = report.steps.find((s) => s.id === step);
    if (!e) report.steps.push((e = { id: step, state: 'pending' }));
    return e;
  };

  const skipCancelled = (e: StepProgress, what: string): never => {
    Object.assign(e, { state: 'skipped', detail: 'not started: the operation was cancelled' });
    throw notStarted(what);
  };

  /** Runs a step, recording how it went; a failure is for the caller. */
  async function attempt<T>(step: NodeStep, fn: () => Promise<T>): Promise<T> {
    const e = entry(step);
    if (cancellation.requested) skipCancelled(e, `${step} on ${node}`);
    Object.assign(e, { state: 'running', startedAt: now(), endedAt: undefined, detail: undefined });
    report.step = step;
    tell();
    try {
      if (Date.now() > deadline) {
        throw ApplicationFailure.create({
          type: 'NodeTimeBudget',
          message: `${node} has used its ${Math.round(settings.maxNodeMs / 60_000)} minutes (maxNodeMinutes) before ${step}`,
          nonRetryable: true,
        });
      }
      const value = await fn();
      Object.assign(e, { state: 'succeeded', endedAt: now() });
      return value;
    } catch (err) {
      Object.assign(e, { state: 'failed', endedAt: now(), detail: failureMessage(err) });
      throw err;
    } finally {
      tell();
    }
  }

  /** Runs a step; when it fails, halts for the operator's decision and runs it again on `resume`. */
  async function step<T>(name: NodeStep, fn: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await attempt(name, fn);
      } catch (err) {
        // Cancelled, a failure is reported rather than halted on: nobody is to decide any more.
        if (isCancellation(err) || cancellation.requested) throw err;
        const d = await decide(name, failureMessage(err));
        if (d.action !== 'resume') throw new NodeStopped(d);
        deadline = Date.now() + settings.maxNodeMs;
      }
    }
  }

  async function decide(name: NodeStep, error: string): Promise<MaintenanceDecision> {
    let d: MaintenanceDecision;
    if (!settings.stopOnFailure) {
      d = { action: 'skip-node', by: 'policy', node, reason: `stopOnFailure is off; ${name} failed: ${error}`, at: now(), halt: ++halts };
    } else {
      report.state = 'halted';
      report.halted = { id: ++halts, step: name, error, at: now(), options: options(name) };
      tell();
      await condition(() => decision !== undefined || cancellation.requested);
      if (decision === undefined) throw notStarted(`a decision about ${name} on ${node}`);
      d = decision;
      decision = undefined;
      report.state = 'running';
      delete report.halted;
    }
    report.decisions.push(d);
    return d;
  }

  function options(name: NodeStep): Record<MaintenanceDecision['action'], string> {
    const back =
      away.size === 0
        ? 'nothing to bring back'
        : settings.returnGuests
          ? `bring its ${away.size} guest(s) back to ${node} if it is up`
          : `leave its ${away.size} guest(s) where they are (returnGuests is off)`;
    return {
      resume: `run ${name} on ${node} again and carry on`,
      'skip-node': `${back}, leave ${node} as it is, and go on with the next node`,
      'abort-and-return': `${back}, and stop the rolling maintenance`,
    };
  }

  async function migrate(phase: 'evacuate' | 'return', moves: GuestMove[], marker: Awaited<ReturnType<typeof reading.markTasks>>, onFailure: 'stop' | 'continue'): Promise<GuestOutcome[]> {
    moving.phase = phase;
    moving.done.clear();
    return cancellation.cancellable(() =>
      executeChild(migrateGuests, {
        workflowId: `${self}/${phase}-${++moving.runs}`,
        staticSummary: phase === 'evacuate' ? `move ${moves.length} guests off ${node}` : `bring ${moves.length} guests back to ${node}`,
        args: [
          {
            environment,
            pending: moves,
            limits: limitsOf(settings),
            memoryHeadroom: settings.memoryHeadroom,
            memoryBasis: settings.memoryBasis,
            onFailure,
            marker,
            progressTo: self,
          },
        ],
      }),
    );
  }

  async function evacuate(): Promise<void> {
    const draft = await reading.planEvacuation({
      environment,
      request: { ...settings.drain, node, haMaintenance: false, ...(input.alongside.length ? { denyTargets: input.alongside } : {}) },
    });
    const plan: EvacuationPlan = draft.details!;
    const stuck = runningLeftBehind(plan);
    if (stuck.length > 0) {
      throw ApplicationFailure.create({
        type: 'NodeNotDrainable',
        message: `${node} cannot be emptied now: ${stuck.map(describeStuck).join('; ')}`,
        nonRetryable: true,
      });
    }
    if (plan.moves.length > 0) {
      const marker = await reading.markTaskHistory({ environment, node });
      const outcomes = await migrate('evacuate', plan.moves, marker, 'stop');
      for (const o of outcomes) {
        if (o.state === 'migrated' || o.state === 'already-there') away.set(o.vmid, awayGuest(plan.moves.find((m) => m.vmid === o.vmid)!));
      }
      report.moved = away.size + cameBack.length;
      if (outcomes.some((o) => o.state === 'not-started')) cancellation.throwIfRequested(`the rest of ${node}'s evacuation`);
      const failed = outcomes.filter((o) => o.state === 'failed');
      if (failed.length > 0) {
        const waiting = outcomes.filter((o) => o.state === 'not-started').length;
        throw ApplicationFailure.create({
          type: 'EvacuationIncomplete',
          message: failed.map((o) => o.error ?? `${o.vmid} failed`).join('; ') + (waiting ? `; ${waiting} guest(s) not started` : ''),
          nonRetryable: true,
        });
      }
    }
    const verification = await reading.verifyEvacuation({
      environment,
      source: node,
      moved: [...away.values()].map((g) => ({ vmid: g.vmid, name: g.name, target: g.at, status: g.priorStatus })),
      leftBehind: plan.leftBehind.map((l) => l.vmid),
    });
    if (!verification.ok) {
      throw ApplicationFailure.create({ type: 'EvacuationIncomplete', message: describeVerification(verification), nonRetryable: true });
    }
  }

  async function runUpgrade(): Promise<UpgradeOutcome> {
    upgrade = await acting.upgradeNode.executeWithOptions(
      { startToCloseTimeout: settings.upgradeTimeoutMs + 5 * 60_000, summary: `upgrade ${node}` },
      [{ environment, node, command: settings.upgradeCommand, timeoutMs: Math.min(settings.upgradeTimeoutMs, deadline - Date.now()), logKey: input.logKey }],
    );
    report.upgrade = upgrade;
    if (upgrade.rebootReasons.length > 0 && settings.reboot === 'never') {
      report.warnings.push(`${node} needs a reboot (${upgrade.rebootReasons.join('; ')}), but reboot is 'never'`);
    }
    return upgrade;
  }

  /** The runbook's saga (its cleanups run if a step fails), its steps recorded in the node's report. */
  async function runRunbook(runbook: { name: string; plan: RunbookPlan }): Promise<void> {
    report.runbook = { name: runbook.name, steps: [] };
    const steps = report.runbook.steps;
    const progress = (id: string): StepProgress => {
      let e = steps.find((s) => s.id === id);
      if (!e) steps.push((e = { id, state: 'pending' }));
      return e;
    };
    const handle: OperationHandle = {
      status: { phase: 'applying', requester: 'rolling-maintenance', environment, dryRun: false, approvalState: 'approved', steps, ignoredApprovals: [] },
      async step(id, fn, options = {}) {
        if (cancellation.requested && !options.undo) skipCancelled(progress(id), `runbook step ${id} on ${node}`);
        Object.assign(progress(id), { state: 'running', startedAt: now() });
        tell();
        try {
          const value = await fn();
          Object.assign(progress(id), { state: 'succeeded', endedAt: now() });
          return value;
        } catch (err) {
          Object.assign(progress(id), { state: 'failed', endedAt: now(), detail: failureMessage(err) });
          throw err;
        } finally {
          tell();
        }
      },
      mark(id, state, detail) {
        Object.assign(progress(id), { state, ...(detail !== undefined ? { detail } : {}) });
        tell();
      },
      get cancelled() {
        return cancellation.requested;
      },
      cancellable: (fn) => cancellation.cancellable(fn),
      throwIfCancelled: (what) => cancellation.throwIfRequested(what),
    };
    await applyRunbookPlan(environment, runbook.plan, handle, { keepOnFailure: false });
  }

  async function rebootIfRequired(): Promise<void> {
    const reasons =
      settings.reboot === 'always'
        ? ['reboot: always']
        : (upgrade?.rebootReasons ?? (await acting.checkRebootRequired({ environment, node })));
    if (reasons.length === 0) {
      report.reboot = { rebooted: false, why: 'not required' };
      return;
    }
    await reboot(reasons.join('; '));
  }

  async function reboot(why: string): Promise<void> {
    if (!rebooting) {
      const before = await reading.readNodeState({ environment, node });
      rebooting = { uptimeBefore: before.uptimeSeconds ?? 0, ...(before.kernel ? { kernelBefore: before.kernel } : {}), why, sent: false };
    }
    if (!rebooting.sent) {
      await acting.rebootNode({ environment, node, uptimeBefore: rebooting.uptimeBefore });
      rebooting.sent = true;
    }
    const back = await waiting.waitForNodeBack.executeWithOptions({ summary: `wait for ${node} to come back` }, [
      {
        environment,
        node,
        uptimeBefore: rebooting.uptimeBefore,
        ...(upgrade?.versionAfter ? { expectVersion: upgrade.versionAfter } : {}),
        until: Math.min(Date.now() + settings.bootTimeoutMs, deadline),
      },
    ]);
    report.reboot = {
      rebooted: true,
      why: rebooting.why,
      ...(rebooting.kernelBefore ? { kernelBefore: rebooting.kernelBefore } : {}),
      ...(back.kernel ? { kernelAfter: back.kernel } : {}),
      ...(back.version ? { versionAfter: back.version } : {}),
    };
  }

  async function bringBack(): Promise<void> {
    if (away.size === 0) return;
    const planned = await reading.planReturn({
      environment,
      node,
      guests: [...away.values()],
      linkGbps: settings.drain.linkGbps,
      ...(settings.drain.bwlimitMiBps ? { bwlimitMiBps: settings.drain.bwlimitMiBps } : {}),
    });
    for (const g of planned.gone) {
      report.notReturned.push({ vmid: g.vmid, name: g.name, at: 'nowhere', reason: g.reason });
      away.delete(g.vmid);
    }
    for (const vmid of planned.home) home(vmid);
    if (planned.moves.length > 0) {
      const marker = await reading.markTasks({ environment, nodes: [...new Set(planned.moves.map((m) => m.source))].sort() });
      const outcomes = await migrate('return', planned.moves, marker, 'continue');
      for (const o of outcomes) if (o.state === 'migrated' || o.state === 'already-there') home(o.vmid, planned.moves.find((m) => m.vmid === o.vmid)!.priorStatus);
      if (outcomes.some((o) => o.state === 'not-started')) cancellation.throwIfRequested(`the rest of the return to ${node}`);
      const failed = outcomes.filter((o) => o.state === 'failed');
      if (failed.length > 0) {
        throw ApplicationFailure.create({
          type: 'ReturnIncomplete',
          message: failed.map((o) => o.error ?? `${o.vmid} failed`).join('; '),
          nonRetryable: true,
        });
      }
    }
  }

  function home(vmid: number, status?: 'running' | 'stopped'): void {
    const g = away.get(vmid);
    if (!g) return;
    away.delete(vmid);
    cameBack.push({ ...g, at: node, ...(status ? { priorStatus: status } : {}) });
    report.returned = cameBack.length;
  }

  /** After skip-node or abort-and-return: HA maintenance off and (unless told not to) guests home, if the node is up. */
  async function wrapUp(): Promise<void> {
    const returning = settings.returnGuests && away.size > 0;
    if (!returning && !haEnabled) return;
    deadline = Date.now() + settings.maxNodeMs;
    try {
      const state = await reading.readNodeState({ environment, node });
      if (!state.reachable || !state.online) throw new Error(`${node} is not up`);
      if (haEnabled) await attempt('ha-maintenance-off', () => acting.setHaMaintenance({ environment, node, enabled: false }));
      haEnabled = false;
      if (returning) await attempt('return', bringBack);
    } catch (err) {
      if (isCancellation(err)) throw err;
      const why = failureMessage(err);
      report.warnings.push(`could not finish the node: ${why}`);
      if (returning) for (const g of away.values()) report.notReturned.push({ vmid: g.vmid, name: g.name, at: g.at, reason: why });
    }
  }

  tell();
  try {
    await step('check', () => reading.checkNodeTurn({ environment, node, alongside: input.alongside, minNodesUp: settings.minNodesUp }));
    await step('evacuate', evacuate);
    if (settings.haMaintenance) {
      await step('ha-maintenance-on', () => acting.setHaMaintenance({ environment, node, enabled: true }));
      haEnabled = true;
    }
    if (settings.upgrade) await step('upgrade', runUpgrade);
    if (input.runbook) await step('runbook', () => runRunbook(input.runbook!));
    if (settings.reboot !== 'never') {
      await step('reboot', rebootIfRequired);
      if (!report.reboot?.rebooted) Object.assign(entry('reboot'), { state: 'skipped', detail: 'no reboot required' });
    }
    if (haEnabled) {
      await step('ha-maintenance-off', () => acting.setHaMaintenance({ environment, node, enabled: false }));
      haEnabled = false;
    }
    if (settings.returnGuests) await step('return', bringBack);
    await step('verify', () =>
      reading.verifyNode({
        environment,
        node,
        ...(upgrade?.versionAfter ? { expectVersion: upgrade.versionAfter } : {}),
        guests: cameBack.map((g) => ({ vmid: g.vmid, name: g.name, type: g.type, status: g.priorStatus })),
      }),
    );
    report.state = 'maintained';
  } catch (err) {
    if (cancellation.requested) {
      report.state = 'cancelled';
      if (!isCancellation(err)) report.warnings.push(`cancelled while ${report.step ?? 'a step'} failed: ${failureMessage(err)}`);
    } else if (err instanceof NodeStopped) {
      await wrapUp();
      report.state = err.decision.action === 'skip-node' ? 'skipped' : 'aborted';
    } else {
      throw err;
    }
  }
  delete report.step;
  report.endedAt = now();
  tell();
  await reporter.flushed();
  return { ...report };
}

function limitsOf(settings: NodeSettings): EvacuationPlan['limits'] {
  const { drain } = settings;
  return {
    maxParallel: drain.maxParallel,
    maxParallelPerTarget: drain.maxParallelPerTarget,
    ...(drain.bwlimitMiBps ? { bwlimitKiBps: drain.bwlimitMiBps * 1024 } : {}),
    containerShutdownTimeoutSeconds: drain.containerShutdownTimeoutSeconds,
  };
}

function awayGuest(move: GuestMove): AwayGuest {
  return {
    vmid: move.vmid,
    name: move.name,
    type: move.type,
    home: move.source,
    at: move.target,
    priorStatus: move.priorStatus,
    withLocalDisks: move.withLocalDisks,
    haManaged: move.haManaged,
    memoryBytes: move.memoryBytes,
    localDiskBytes: move.localDiskBytes,
  };
}

function describeVerification(v: Verification): string {
  return [
    ...v.unexpectedOnSource.map((g) => `${g.vmid} (${g.name}) is still on the node`),
    ...v.misplaced.map((g) => `${g.vmid} (${g.name}) is on ${g.actual}, planned ${g.expected}`),
    ...v.wrongState.map((g) => `${g.vmid} (${g.name}) is ${g.actual}, was ${g.expected}`),
  ].join('; ');
}

function describe(r: NodeReport): string {
  const where = r.halted ? `HALTED at ${r.halted.step}: ${r.halted.error}` : r.step ? r.step : r.state;
  return `${r.node}: ${where} — ${r.moved} guest(s) moved off, ${r.returned} back`;
}

/**
 * Sends the node's report to the rolling maintenance, one signal at a time and in order;
 * reports are whole, so only the newest waiting one is sent.
 */
function reportTo(workflowId: string) {
  let waiting: NodeReport | undefined;
  let sending = false;
  let chain: Promise<void> = Promise.resolve();
  const drain = async (): Promise<void> => {
    sending = true;
    try {
      while (waiting) {
        const next = waiting;
        waiting = undefined;
        await getExternalWorkflowHandle(workflowId).signal(nodeReportSignal, next);
      }
    } finally {
      sending = false;
    }
  };
  return {
    send(report: NodeReport) {
      waiting = JSON.parse(JSON.stringify(report)) as NodeReport;
      if (!sending) chain = drain();
    },
    async flushed() {
      await chain;
      if (waiting) await drain();
    },
  };
}
