/** The node's own work while it is empty: the upgrade, a runbook, the reboot and the wait until it is back. */
import type { RunbookPlan } from '../../lib/runbooks/plan.js';
import type { StepProgress } from '../../lib/operations/plan.js';
import { failureMessage } from '../guest-step.js';
import type { UpgradeOutcome } from '../../lib/maintenance/node-outcomes.js';
import type { OperationHandle } from '../operation.js';
import { applyRunbookPlan } from '../runbook-run.js';
import { acting, reading, upgrading, waiting } from './activities.js';
import type { NodeRun } from './node-run.js';

export async function runUpgrade(run: NodeRun): Promise<UpgradeOutcome> {
  const { node, environment, settings, report } = run;
  const upgrade = await upgrading.upgradeNode.executeWithOptions(
    { startToCloseTimeout: settings.upgradeTimeoutMs + 5 * 60_000, summary: `upgrade ${node}` },
    [
      {
        environment,
        node,
        command: settings.upgradeCommand,
        timeoutMs: Math.min(settings.upgradeTimeoutMs, run.deadline - Date.now()),
        logKey: run.input.logKey,
      },
    ],
  );
  run.upgrade = upgrade;
  report.upgrade = upgrade;
  if (upgrade.rebootReasons.length > 0 && settings.reboot === 'never') {
    report.warnings.push(`${node} needs a reboot (${upgrade.rebootReasons.join('; ')}), but reboot is 'never'`);
  }
  return upgrade;
}

/** The runbook's saga (its cleanups run if a step fails), its steps recorded in the node's report. */
export async function runRunbook(run: NodeRun, runbook: { name: string; plan: RunbookPlan }): Promise<void> {
  const { node, environment, cancellation } = run;
  run.report.runbook = { name: runbook.name, steps: [] };
  const steps = run.report.runbook.steps;
  const progress = (id: string): StepProgress => {
    let e = steps.find((s) => s.id === id);
    if (!e) steps.push((e = { id, state: 'pending' }));
    return e;
  };
  const handle: OperationHandle = {
    status: {
      phase: 'applying',
      requester: 'rolling-maintenance',
      environment,
      dryRun: false,
      approvalState: 'approved',
      steps,
      ignoredApprovals: [],
    },
    async step(id, fn, options = {}) {
      if (cancellation.requested && !options.undo) run.skipCancelled(progress(id), `runbook step ${id} on ${node}`);
      Object.assign(progress(id), { state: 'running', startedAt: run.now() });
      run.tell();
      try {
        const value = await fn();
        Object.assign(progress(id), { state: 'succeeded', endedAt: run.now() });
        return value;
      } catch (err) {
        Object.assign(progress(id), { state: 'failed', endedAt: run.now(), detail: failureMessage(err) });
        throw err;
      } finally {
        run.tell();
      }
    },
    mark(id, state, detail) {
      Object.assign(progress(id), { state, ...(detail !== undefined ? { detail } : {}) });
      run.tell();
    },
    get cancelled() {
      return cancellation.requested;
    },
    cancellable: (fn) => cancellation.cancellable(fn),
    throwIfCancelled: (what) => cancellation.throwIfRequested(what),
  };
  await applyRunbookPlan(environment, runbook.plan, handle, { keepOnFailure: false });
}

export async function rebootIfRequired(run: NodeRun): Promise<void> {
  const { node, environment, settings } = run;
  const reasons =
    settings.reboot === 'always'
      ? ['reboot: always']
      : (run.upgrade?.rebootReasons ?? (await reading.checkRebootRequired({ environment, node })));
  if (reasons.length === 0) {
    run.report.reboot = { rebooted: false, why: 'not required' };
    return;
  }
  await reboot(run, reasons.join('; '));
}

async function reboot(run: NodeRun, why: string): Promise<void> {
  const { node, environment, settings } = run;
  if (!run.rebooting) {
    const before = await reading.readNodeState({ environment, node });
    run.rebooting = {
      uptimeBefore: before.uptimeSeconds ?? 0,
      ...(before.kernel ? { kernelBefore: before.kernel } : {}),
      why,
      sent: false,
    };
  }
  const rebooting = run.rebooting;
  if (!rebooting.sent) {
    await acting.rebootNode({ environment, node, uptimeBefore: rebooting.uptimeBefore });
    rebooting.sent = true;
  }
  const back = await waiting.waitForNodeBack.executeWithOptions({ summary: `wait for ${node} to come back` }, [
    {
      environment,
      node,
      uptimeBefore: rebooting.uptimeBefore,
      ...(run.upgrade?.versionAfter ? { expectVersion: run.upgrade.versionAfter } : {}),
      until: Math.min(Date.now() + settings.bootTimeoutMs, run.deadline),
    },
  ]);
  run.report.reboot = {
    rebooted: true,
    why: rebooting.why,
    ...(rebooting.kernelBefore ? { kernelBefore: rebooting.kernelBefore } : {}),
    ...(back.kernel ? { kernelAfter: back.kernel } : {}),
    ...(back.version ? { versionAfter: back.version } : {}),
  };
}
