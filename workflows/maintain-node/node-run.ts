/**
 * What one node's maintenance knows as it goes — its report, the guests away and back, its
 * time budget — and how its steps run: each recorded in the report, and a failed one halted
 * on until the operator decides (resume, skip-node, abort-and-return).
 */
import {
  ApplicationFailure,
  condition,
  isCancellation,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { NodeStep } from '../../lib/maintenance/plan.js';
import { notStarted, type Cancellation } from '../cancellation.js';
import type { StepProgress } from '../../lib/operations/plan.js';
import { failureMessage } from '../guest-step.js';
import { Failure } from '../../lib/operations/failures.js';
import {
  newNodeReport,
  nodeDecisionSignal,
  previousGroupSignal,
  type MaintenanceDecision,
  type NodeReport,
  type PreviousGroupEnd,
} from '../maintenance-definitions.js';
import type { AwayGuest, UpgradeOutcome } from '../../lib/maintenance/node-outcomes.js';
import { migrationProgressSignal } from '../migrate-guests.js';
import type { MaintainNodeInput } from '../maintain-node.js';
import { describeNode, reportTo } from './report.js';

/** How often guest-by-guest migration progress is passed on to the rollout (step changes always are). */
const PROGRESS_REPORT_INTERVAL_MS = 30_000;

/** The operator's decision (or the rollout's stop) ended the node's run early. */
export class NodeStopped extends Error {
  constructor(readonly decision: MaintenanceDecision) {
    super(`${decision.action} by ${decision.by}`);
  }
}

export class NodeRun {
  readonly node: string;
  readonly self = workflowInfo().workflowId;
  readonly report: NodeReport;
  /** Guests moved off the node and not back, by vmid. */
  readonly away = new Map<number, AwayGuest>();
  readonly cameBack: AwayGuest[] = [];
  /** The migrations running now, counted into the report as they succeed. */
  readonly moving = { phase: 'evacuate' as 'evacuate' | 'return', runs: 0, done: new Set<number>() };
  deadline: number;
  haEnabled = false;
  upgrade: UpgradeOutcome | undefined;
  /** The boot seen before the reboot was sent: a node up on a shorter uptime has rebooted since. */
  rebooting: { uptimeBefore: number; kernelBefore?: string; why: string; sent: boolean } | undefined;
  /** How the previous group ended; set at once when this node does not overlap it. */
  previousGroup: PreviousGroupEnd | undefined;
  private decision: MaintenanceDecision | undefined;
  private halts = 0;
  private toldAt = 0;
  private readonly reporter;

  constructor(
    readonly input: MaintainNodeInput,
    readonly cancellation: Cancellation,
  ) {
    this.node = input.node;
    this.deadline = Date.now() + input.settings.maxNodeMs;
    this.previousGroup = input.overlaps ? undefined : { outcome: 'finished' };
    this.reporter = reportTo(input.reportTo);
    this.report = {
      ...newNodeReport(input.node, 'running'),
      startedAt: this.now(),
      ...(input.overlaps ? { overlapped: input.overlaps.nodes } : {}),
    };
    setHandler(previousGroupSignal, (end) => {
      this.previousGroup = end;
    });
    setHandler(nodeDecisionSignal, (d) => {
      if (this.report.state === 'halted' && this.decision === undefined && d.halt === this.report.halted?.id)
        this.decision = d;
    });
    setHandler(migrationProgressSignal, (updates) => {
      for (const u of updates) {
        if (u.state !== 'succeeded' || this.moving.done.has(u.vmid)) continue;
        this.moving.done.add(u.vmid);
        if (this.moving.phase === 'evacuate') this.report.moved++;
        else this.report.returned++;
      }
      // Every report is a signal in the rollout's history: guest by guest only now and then.
      if (Date.now() - this.toldAt >= PROGRESS_REPORT_INTERVAL_MS) this.tell();
      else this.show();
    });
  }

  get settings() {
    return this.input.settings;
  }

  get environment() {
    return this.input.environment;
  }

  now(): string {
    return new Date(Date.now()).toISOString();
  }

  /** The report in the UI's current details. */
  show(): void {
    this.report.away = [...this.away.values()].sort((a, b) => a.vmid - b.vmid);
    setCurrentDetails(describeNode(this.report));
  }

  /** ... and sent to the rollout. */
  tell(): void {
    this.show();
    this.reporter.send(this.report);
    this.toldAt = Date.now();
  }

  async flushed(): Promise<void> {
    await this.reporter.flushed();
  }

  entry(step: NodeStep): StepProgress {
    let e = this.report.steps.find((s) => s.id === step);
    if (!e) this.report.steps.push((e = { id: step, state: 'pending' }));
    return e;
  }

  skipCancelled(e: StepProgress, what: string): never {
    Object.assign(e, { state: 'skipped', detail: 'not started: the operation was cancelled' });
    throw notStarted(what);
  }

  /** Runs a step, recording how it went; a failure is for the caller. */
  async attempt<T>(step: NodeStep, fn: () => Promise<T>): Promise<T> {
    const e = this.entry(step);
    if (this.cancellation.requested) this.skipCancelled(e, `${step} on ${this.node}`);
    Object.assign(e, { state: 'running', startedAt: this.now(), endedAt: undefined, detail: undefined });
    this.report.step = step;
    this.tell();
    try {
      if (Date.now() > this.deadline) {
        throw ApplicationFailure.create({
          type: Failure.NodeTimeBudget,
          message: `${this.node} has used its ${Math.round(this.settings.maxNodeMs / 60_000)} minutes (maxNodeMinutes) before ${step}`,
          nonRetryable: true,
        });
      }
      const value = await fn();
      Object.assign(e, { state: 'succeeded', endedAt: this.now() });
      return value;
    } catch (err) {
      Object.assign(e, { state: 'failed', endedAt: this.now(), detail: failureMessage(err) });
      throw err;
    } finally {
      this.tell();
    }
  }

  /** Runs a step; when it fails, halts for the operator's decision and runs it again on `resume`. */
  async step<T>(name: NodeStep, fn: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await this.attempt(name, fn);
      } catch (err) {
        if (err instanceof NodeStopped) throw err;
        // Cancelled, a failure is reported rather than halted on: nobody is to decide any more.
        if (isCancellation(err) || this.cancellation.requested) throw err;
        const d = await this.decide(name, failureMessage(err));
        if (d.action !== 'resume') throw new NodeStopped(d);
        this.deadline = Date.now() + this.settings.maxNodeMs;
      }
    }
  }

  /** Stops the node for a reason that is nobody's decision about a halt (the rollout stopped). */
  stop(by: string, reason: string): never {
    const d: MaintenanceDecision = { action: 'abort-and-return', by, node: this.node, reason, at: this.now(), halt: 0 };
    this.report.decisions.push(d);
    throw new NodeStopped(d);
  }

  private async decide(name: NodeStep, error: string): Promise<MaintenanceDecision> {
    let d: MaintenanceDecision;
    if (!this.settings.stopOnFailure) {
      d = {
        action: 'skip-node',
        by: 'policy',
        node: this.node,
        reason: `stopOnFailure is off; ${name} failed: ${error}`,
        at: this.now(),
        halt: ++this.halts,
      };
    } else {
      this.report.state = 'halted';
      this.report.halted = { id: ++this.halts, step: name, error, at: this.now(), options: this.options(name) };
      this.tell();
      await condition(() => this.decision !== undefined || this.cancellation.requested);
      if (this.decision === undefined) throw notStarted(`a decision about ${name} on ${this.node}`);
      d = this.decision;
      this.decision = undefined;
      this.report.state = 'running';
      delete this.report.halted;
    }
    this.report.decisions.push(d);
    return d;
  }

  private options(name: NodeStep): Record<MaintenanceDecision['action'], string> {
    const { node, away } = this;
    const back =
      away.size === 0
        ? 'nothing to bring back'
        : this.settings.returnGuests
          ? `bring its ${away.size} guest(s) back to ${node} if it is up`
          : `leave its ${away.size} guest(s) where they are (returnGuests is off)`;
    return {
      resume: `run ${name} on ${node} again and carry on`,
      'skip-node': `${back}, leave ${node} as it is, and go on with the next node`,
      'abort-and-return': `${back}, and stop the rolling maintenance`,
    };
  }
}
