/**
 * A Talos Kubernetes cluster from its profile, as one operation.
 *
 *   1. Plan: VMIDs from the VM range, names by the naming policy, placement under the memory
 *      headroom, totals; members that exist from an earlier run are resumed, not duplicated.
 *   2. Approval.
 *   3. Each VM, at most `maxParallel` at once: clone (again, after a pause, when the template's
 *      lock was busy), configure, start, wait for its address.
 *   4. Talos: machine configs (made once, kept on the worker), applied to every node; etcd
 *      bootstrapped on the first control plane exactly once; health; kubeconfig on disk.
 *
 * Nothing secret passes through here: the result carries the kubeconfig's path, not its content.
 */
import { ActivityFailure, ApplicationFailure, isCancellation, sleep } from '@temporalio/workflow';
import type { CreateSpec } from '../lib/lifecycle/create-spec.js';
import type { TalosNode } from '../activities/talos.js';
import type { ClusterMember, ClusterUpPlan } from '../lib/clusters/up.js';
import { mapBounded } from '../lib/lifecycle/bounded.js';
import type { ClusterUpInput } from '../lib/operations/catalog.js';
import { createSummary, failureMessage, runGuestStep, taskSummary } from './guest-step.js';
import { runOperation, type OperationHandle } from './operation.js';
import { Failure } from '../lib/operations/failures.js';
import { reads, records, dispatches, waits } from './activity-presets.js';

const planning = reads();

/** A repeated attempt looks for the VM an earlier one created before cloning anything. */
const creating = dispatches();

const cloning = waits();

/** Configuring is idempotent; a VM still locked by its clone is waited for. */
const configuring = waits({
  startToCloseTimeout: '10 minutes',
  maximumAttempts: 30,
  initialInterval: '2 seconds',
  maximumInterval: '30 seconds',
});

const addressing = waits({ startToCloseTimeout: '20 minutes', maximumAttempts: 3 });

/**
 * Talos steps check the state first, so repeating them is safe. A node that does not answer
 * yet (booting, rebooting into its config) is retried; talosctl's refusals are not (the
 * activity marks them non-retryable).
 */
const talosTuning = {
  startToCloseTimeout: '5 minutes',
  maximumAttempts: 30,
  initialInterval: '2 seconds',
  maximumInterval: '30 seconds',
} as const;
const talos = dispatches(talosTuning);
/** Machine configs and cluster access, kept in the orchestrator's secret store. */
const talosFiles = records(talosTuning);

const HEALTH_WAIT_SECONDS = 20 * 60;
const waitingForHealth = waits({ startToCloseTimeout: `${HEALTH_WAIT_SECONDS + 120} seconds`, maximumAttempts: 3 });

/**
 * How long clones keep retrying a busy template lock, and the pause between tries: short,
 * since each try already waited PVE's lock timeout; jittered, so the waiting clones spread out.
 */
const CLONE_LOCK_RETRY_MS = 30 * 60_000;
const lockPauseMs = (attempt: number) => Math.min(500 * 1.5 ** (attempt - 1), 2_000) * (0.5 + Math.random());

const ADDRESS_TIMEOUT_MS = 10 * 60_000;

export interface ClusterNodeResult {
  vmid: number;
  name: string;
  role: ClusterMember['role'];
  node: string;
  address: string;
  cloned: boolean;
}

export interface ClusterUpResult {
  cluster: string;
  nodes: ClusterNodeResult[];
  bootstrap: { node: string; address: string; outcome: 'bootstrapped' | 'already-bootstrapped' };
  /** Paths on the worker host: the files stay there. */
  kubeconfigPath: string;
  talosconfigPath: string;
  flux: string;
}

export async function clusterUp(input: ClusterUpInput) {
  const { environment } = input;
  return runOperation<ClusterUpPlan, ClusterUpResult>('cluster-up', input.meta, {
    plan: () => planning.planClusterUp({ environment, profile: input.profile, maxParallel: input.maxParallel }),
    apply: async (plan, op) => {
      const cluster = plan.details!;
      const settled = await mapBounded(
        cluster.members,
        cluster.maxParallel,
        (m) => bringUp(environment, cluster, m, op),
        { haltOn: isCancellation },
      );
      const failed = settled.flatMap((s, i) =>
        s.ok ? [] : [`${cluster.members[i]!.name}: ${failureMessage(s.error)}`],
      );
      if (failed.length > 0) {
        throw ApplicationFailure.create({
          type: Failure.ClusterIncomplete,
          message: `${failed.length} of ${cluster.members.length} VMs did not come up (run cluster-up again to resume): ${failed.join('; ')}`,
          nonRetryable: true,
        });
      }
      const nodes = settled.map((s) => (s as { ok: true; value: ClusterNodeResult }).value);
      const talosNodes: TalosNode[] = nodes.map((n) => ({ name: n.name, address: n.address, role: n.role }));
      const controlPlanes = talosNodes.filter((n) => n.role === 'control-plane');
      const workers = talosNodes.filter((n) => n.role === 'worker');

      const endpoint = cluster.endpoint ?? controlPlanes[0]!.address;
      await op.step('machine-configs', () =>
        talosFiles.generateMachineConfigs({
          environment,
          cluster: cluster.cluster,
          endpoint,
          profileSha256: cluster.profile.sha256,
        }),
      );
      const applied = await mapBounded(
        talosNodes,
        cluster.maxParallel,
        (n) =>
          op.step(`apply-config:${n.name}`, () =>
            talos.applyMachineConfig({ environment, cluster: cluster.cluster, node: n }),
          ),
        { haltOn: isCancellation },
      );
      const notApplied = applied.flatMap((s, i) =>
        s.ok ? [] : [`${talosNodes[i]!.name}: ${failureMessage(s.error)}`],
      );
      if (notApplied.length > 0) {
        throw ApplicationFailure.create({
          type: Failure.ClusterIncomplete,
          message: `machine configs not applied: ${notApplied.join('; ')}`,
          nonRetryable: true,
        });
      }

      // The decision of where etcd is bootstrapped is the plan's first control plane: the same in
      // every run of this cluster, and recorded in history once the activity has answered.
      const first = controlPlanes[0]!;
      const outcome = await op.step('bootstrap', () =>
        talos.bootstrapEtcd({
          environment,
          cluster: cluster.cluster,
          node: first,
          controlPlanes: controlPlanes.map((n) => n.address),
        }),
      );
      op.mark(
        'bootstrap',
        'succeeded',
        outcome === 'bootstrapped' ? `etcd bootstrapped on ${first.name}` : 'etcd was bootstrapped already',
      );

      await op.step('health', () =>
        waitingForHealth.awaitClusterHealthy({
          environment,
          cluster: cluster.cluster,
          controlPlanes: controlPlanes.map((n) => n.address),
          workers: workers.map((n) => n.address),
          waitTimeoutSeconds: HEALTH_WAIT_SECONDS,
        }),
      );
      const access = await op.step('kubeconfig', () =>
        talosFiles.writeClusterAccess({
          environment,
          cluster: cluster.cluster,
          controlPlanes: controlPlanes.map((n) => n.address),
        }),
      );
      const flux = cluster.flux
        ? `not configured: this worker has no Flux adapter, so ${cluster.flux.repository} (${cluster.flux.path}) was not bootstrapped; run flux bootstrap with ${access.kubeconfig}`
        : 'not requested by the profile';
      op.mark('flux', 'skipped', flux);

      return {
        cluster: cluster.cluster,
        nodes,
        bootstrap: { node: first.name, address: first.address, outcome },
        kubeconfigPath: access.kubeconfig,
        talosconfigPath: access.talosconfig,
        flux,
      };
    },
  });
}

/** One member, from template to an address Talos can be reached at. */
async function bringUp(
  environment: string,
  plan: ClusterUpPlan,
  m: ClusterMember,
  op: OperationHandle,
): Promise<ClusterNodeResult> {
  const vm = { vmid: m.vmid, name: m.name };
  if (m.existing) op.mark(`clone:${m.name}`, 'skipped', `VM ${m.vmid} exists from an earlier run`);
  else await op.step(`clone:${m.name}`, () => cloneMember(environment, plan, m));

  await op.step(`configure:${m.name}`, () =>
    configuring.configureClusterVm({
      environment,
      ...vm,
      config: m.config,
      disk: { key: plan.template.diskKey, sizeGb: m.diskGb },
    }),
  );
  const address = await op.step(`boot:${m.name}`, async () => {
    await runGuestStep(environment, vm, {
      id: `boot:${m.name}`,
      action: 'start',
      ...vm,
      node: m.node,
      description: 'start',
    });
    return addressing.awaitGuestAddress({
      environment,
      ...vm,
      node: m.node,
      ...(m.address ? { expect: m.address } : {}),
      ...(plan.endpoint ? { exclude: [plan.endpoint] } : {}),
      timeoutMs: ADDRESS_TIMEOUT_MS,
    });
  });
  return { ...vm, role: m.role, node: m.node, address, cloned: !m.existing };
}

/**
 * A full clone of the template. Parallel full clones of one template can find its lock file
 * busy past PVE's timeout (`can't lock file ... - got timeout`); such a clone did nothing, so
 * it is sent again after a pause, for up to half an hour.
 */
async function cloneMember(environment: string, plan: ClusterUpPlan, m: ClusterMember): Promise<void> {
  const spec: CreateSpec = {
    kind: 'clone',
    type: 'qemu',
    node: m.node,
    vmid: m.vmid,
    vmidFixed: true,
    range: { min: m.vmid, max: m.vmid },
    name: { fixed: m.name },
    params: {
      full: true,
      ...(m.node !== plan.template.node ? { target: m.node } : {}),
      ...(plan.storage ? { storage: plan.storage } : {}),
    },
    source: { vmid: plan.template.vmid, name: plan.template.name, node: plan.template.node },
  };
  const giveUpAt = Date.now() + CLONE_LOCK_RETRY_MS;
  for (let attempt = 1; ; attempt++) {
    const created = await creating.createGuest.executeWithOptions({ summary: createSummary(spec) }, [
      { environment, spec },
    ]);
    if (!created.upid) return;
    try {
      await cloning.awaitClone.executeWithOptions({ summary: taskSummary(created.upid) }, [
        { environment, upid: created.upid, vmid: m.vmid },
      ]);
      return;
    } catch (err) {
      const lockBusy =
        err instanceof ActivityFailure &&
        err.cause instanceof ApplicationFailure &&
        err.cause.type === Failure.CloneLockTimeout;
      if (!lockBusy || Date.now() >= giveUpAt) throw err;
      await sleep(lockPauseMs(attempt));
    }
  }
}
