/**
 * Runbooks as activities: planning a run (parameters resolved against the environment,
 * facts read from the node, every step checked), running one step of the plan (a PVE call,
 * a command on a node or in a guest, an Ansible playbook), and ingesting a submitted runbook
 * (parsed, adapted to the cluster's conventions, saved once approved).
 */
import { execFile } from 'node:child_process';
import { homedir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { downloadOutsidePolicy, outsidePolicyReason } from '../lib/config/download-policy.js';
import type { EnvironmentConfig } from '../lib/config/schema.js';
import type { RunbookIngestInput, RunbookRunInput } from '../lib/operations/catalog.js';
import type { PveClient } from '../lib/pve/client.js';
import type { EndpointName } from '../lib/pve/registry.js';
import { PveApiError, PveUnavailableError } from '../lib/pve/errors.js';
import { adaptRunbook, type Adaptation } from '../lib/runbooks/adapt.js';
import { parseRunbookMarkdown, RunbookError } from '../lib/runbooks/markdown.js';
import {
  ParameterError,
  resolveParameters,
  type ParameterInput,
  type ResolvedParameters,
} from '../lib/runbooks/parameters.js';
import {
  finishStep,
  PlanError,
  planRunbook,
  runbookNode,
  type ResolvedStep,
  type RunbookFacts,
  type RunbookPlan,
} from '../lib/runbooks/plan.js';
import { UnresolvedPlaceholderError, type Value } from '../lib/runbooks/placeholders.js';
import { linearRegExp } from '../lib/runbooks/safe-regex.js';
import type { Runbook } from '../lib/runbooks/schema.js';
import {
  defaultRunbooksDir,
  loadRunbook,
  readRunbookText,
  RunbookConflictError,
  RunbookNotFoundError,
  saveRunbook,
  sha256,
  type SaveOutcome,
  type StoredRunbook,
} from '../lib/runbooks/store.js';
import { runCommand, SshConnectError, SshError, type CommandResult } from '../lib/ssh/client.js';
import type { PlanDraft, PlanStep } from '../lib/operations/plan.js';
import type { WorkerDeps } from '../worker/deps.js';
import { classified, fail, toTemporalFailure } from './failures.js';
import { sshProblems, withTunnel } from './node-ssh.js';
import { Failure } from '../lib/operations/failures.js';

export interface RunbookActivityDeps extends Pick<WorkerDeps, 'pve' | 'config' | 'sshTarget'> {
  /** Where runbooks live; `PM_RUNBOOKS_DIR` or the repository's runbooks/ when absent. */
  runbooksDir?: string;
  /** The `ansible-playbook` executable; `PM_ANSIBLE_PLAYBOOK` or `ansible-playbook` on PATH when absent. */
  ansiblePlaybook?: string;
}

/** A runbook plan as the workflow carries it: everything needed to apply it, nothing secret. */
export interface RunbookPlanDetails {
  runbook: string;
  /** SHA-256 of the runbook file the plan was made from. */
  runbookSha256: string;
  node: string;
  pveVersion: string;
  parameters: ResolvedParameters['values'];
  sources: ResolvedParameters['sources'];
  plan: RunbookPlan;
}

export type StepOutcome =
  | { kind: 'task'; upid: string; allocated?: Record<string, number> }
  | { kind: 'done'; detail: string; captured: Record<string, string>; allocated?: Record<string, number> };

export interface RunStepRequest {
  environment: string;
  step: ResolvedStep;
  vars: Record<string, Value>;
  /** Take a free VMID for this (creating) step, skipping those already found taken. */
  allocate?: NonNullable<RunbookPlan['allocate']> & { exclude: number[] };
}

export interface IngestDetails {
  name: string;
  /** The runbook as it will be saved: adapted to the environment's conventions. */
  markdown: string;
  sha256: string;
  adaptations: Adaptation[];
  diff: string;
  /** Set when the runbook replaces one: the file that was reviewed. */
  previousSha256?: string;
}

/** Anything that makes a plan impossible, as one non-retryable refusal listing every problem. */
function refusePlan(err: unknown): never {
  if (err instanceof RunbookError || err instanceof ParameterError || err instanceof PlanError) {
    fail(Failure.PlanRefused, `${err.message}`);
  }
  if (err instanceof RunbookNotFoundError || err instanceof RunbookConflictError)
    fail(Failure.PlanRefused, err.message);
  throw toTemporalFailure(err, 'write');
}

/** PVE version and storages of the node a runbook runs on. */
async function readFacts(client: PveClient, node: string): Promise<RunbookFacts> {
  const [status, storages] = await Promise.all([client.nodes.status({ node }), client.storage.list({ node })]);
  const pveVersion =
    /pve-manager\/([\d.]+)/.exec(status.pveversion ?? '')?.[1] ?? (await client.cluster.version()).version;
  return {
    node,
    pveVersion,
    storages: Object.fromEntries(
      storages.filter((s) => s.enabled !== false).map((s) => [s.storage, s.content.split(',').filter(Boolean)]),
    ),
  };
}

interface PreparedRunbook {
  stored: StoredRunbook;
  details: RunbookPlanDetails;
}

/**
 * Load, resolve and plan a runbook for an environment: the common part of running any
 * runbook and of building a template from one.
 */
export async function prepareRunbook(
  deps: RunbookActivityDeps,
  request: { environment: string; runbook: string; parameters: Record<string, ParameterInput> },
  operationId: string,
): Promise<PreparedRunbook> {
  const env = environmentOf(deps, request.environment);
  const client = await deps.pve(request.environment);
  let stored: StoredRunbook;
  let resolved: ResolvedParameters;
  try {
    stored = await loadRunbook(deps.runbooksDir ?? defaultRunbooksDir(), request.runbook);
    resolved = await resolveParameters(stored.runbook, request.parameters, env);
  } catch (err) {
    refusePlan(err);
  }
  const node = runbookNode(stored.runbook, resolved, env);
  const facts = await classified('write', () => readFacts(client, node));
  let plan: RunbookPlan;
  try {
    plan = planRunbook(stored.runbook, resolved, facts, {
      operation_id: operationId,
      environment: request.environment,
    });
  } catch (err) {
    refusePlan(err);
  }
  plan = withDownloadPolicy(plan, stored.runbook, resolved, env);
  const missing = reachProblems(env, plan);
  if (missing.length > 0)
    fail(Failure.PlanRefused, `the runbook cannot run here:\n${missing.map((m) => `  ${m}`).join('\n')}`);
  return {
    stored,
    details: {
      runbook: stored.name,
      runbookSha256: stored.sha256,
      node,
      pveVersion: facts.pveVersion,
      parameters: resolved.values,
      sources: resolved.sources,
      plan,
    },
  };
}

/** A plan that downloads (a `url` parameter) from outside the environment's policy needs a person. */
function withDownloadPolicy(
  plan: RunbookPlan,
  runbook: Runbook,
  resolved: ResolvedParameters,
  env: EnvironmentConfig,
): RunbookPlan {
  const outside = Object.entries(runbook.parameters)
    .filter(([name, p]) => p.type === 'url' && typeof resolved.values[name] === 'string')
    .flatMap(([name]) => downloadOutsidePolicy(resolved.values[name] as string, env.downloads) ?? []);
  if (outside.length === 0) return plan;
  return { ...plan, risk: 'high', reasons: [...plan.reasons, ...outside.map(outsidePolicyReason)] };
}

/** The workflow running this activity: the operation a runbook's `{{operation_id}}` names. */
export function operationId(): string {
  const info = Context.current().info;
  return info.workflowExecution?.workflowId ?? info.activityId;
}

/** What the plan's SSH and Ansible steps need from the configuration, checked before approval. */
function reachProblems(env: EnvironmentConfig, plan: RunbookPlan): string[] {
  const steps = [...plan.steps, ...plan.cleanup];
  const sshNodes = [...new Set(steps.flatMap((s) => (s.kind === 'ssh' ? [s.node] : [])))];
  const problems = steps.some((s) => s.kind === 'ssh' || s.kind === 'guest') ? sshProblems(env, sshNodes) : [];
  const playbook = steps.find((s) => s.kind === 'ansible');
  if (playbook && !env.ansible)
    problems.push(`steps.${playbook.id}: the environment has no ansible section (fleet_infra_path, inventory)`);
  return problems;
}

function environmentOf(deps: Pick<RunbookActivityDeps, 'config'>, name: string): EnvironmentConfig {
  const env = deps.config.environments[name];
  if (!env) fail(Failure.PlanRefused, `environment: unknown environment '${name}'`);
  return env;
}

/** How a resolved step reads in a plan. */
function planStepOf(step: ResolvedStep, allocated?: string): PlanStep {
  const base = { id: step.id, description: step.description };
  switch (step.kind) {
    case 'api': {
      const vmid = typeof step.params.vmid === 'number' ? step.params.vmid : undefined;
      return {
        ...base,
        action: `api:${step.api}`,
        ...(typeof step.params.node === 'string' ? { node: step.params.node } : {}),
        ...(vmid !== undefined ? { vmid } : {}),
        ...(step.verifyName ? { name: step.verifyName } : {}),
        params: step.params,
        ...(allocated ? { description: `${step.description} (VMID: the next free one in ${allocated})` } : {}),
      };
    }
    case 'ssh':
      return { ...base, action: 'ssh', node: step.node, params: { command: step.command } };
    case 'guest':
      return { ...base, action: 'guest-ssh', params: { vmid: step.vmid, user: step.user, command: step.command } };
    case 'ansible':
      return {
        ...base,
        action: 'ansible',
        params: {
          playbook: step.playbook,
          ...(step.limit ? { limit: step.limit } : {}),
          ...(step.extraVars ? { extraVars: JSON.stringify(step.extraVars) } : {}),
        },
      };
  }
}

/** The plan steps of a runbook plan, the allocated VMID's range named on the step that takes it. */
export function planStepsOf(plan: RunbookPlan): PlanStep[] {
  return plan.steps.map((s) =>
    planStepOf(s, plan.allocate?.step === s.id ? `${plan.allocate.range.min}-${plan.allocate.range.max}` : undefined),
  );
}

const ALREADY_EXISTS = /already exists/;

/** The guest's node and name, or undefined when no such guest exists. */
async function findGuest(
  client: PveClient,
  vmid: number,
): Promise<{ node: string; type: 'qemu' | 'lxc'; name: string } | undefined> {
  const found = (await client.cluster.resources({ type: 'vm' })).find(
    (r) => r.vmid === vmid && (r.type === 'qemu' || r.type === 'lxc'),
  );
  if (!found?.node) return undefined;
  const type = found.type as 'qemu' | 'lxc';
  const config =
    type === 'qemu'
      ? await client.qemu.config({ node: found.node, vmid })
      : await client.lxc.config({ node: found.node, vmid });
  return { node: found.node, type, name: String((type === 'qemu' ? config.name : config.hostname) ?? '') };
}

/** Guest agents start a while after their VM: until then PVE answers with one of these. */
const AGENT_NOT_YET = /QEMU guest agent is not running|VM \d+ is not running/;

/**
 * The first IPv4 address (not loopback or link-local) the guest agent reports, waiting for
 * the agent to come up; undefined when none appears within `waitMs`.
 */
async function guestAddress(
  client: PveClient,
  node: string,
  vmid: number,
  waitMs: number,
): Promise<string | undefined> {
  const ctx = Context.current();
  const deadline = Date.now() + waitMs;
  for (let pause = 1_000; ; pause = Math.min(pause * 2, 10_000)) {
    try {
      const agent = await client.qemu.agentNetworkInterfaces({ node, vmid });
      const address = agent.result
        .filter((i) => i.name !== 'lo')
        .flatMap((i) => i['ip-addresses'] ?? [])
        .find((a) => a['ip-address-type'] === 'ipv4' && !/^(127\.|169\.254\.)/.test(a['ip-address']))?.['ip-address'];
      if (address) return address;
    } catch (err) {
      if (!(err instanceof PveApiError && AGENT_NOT_YET.test(err.pveMessage))) throw err;
    }
    if (Date.now() + pause > deadline) return undefined;
    ctx.heartbeat({ waiting: `guest agent of VM ${vmid}` });
    await sleep(pause, undefined, { signal: ctx.cancellationSignal });
  }
}

function tail(text: string, lines = 20, chars = 4000): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n').slice(-chars);
}

/** Named groups of the expected-output regex, or a failure naming the step when it does not match. */
function matchOutput(step: ResolvedStep, output: string): Record<string, string> {
  if (step.expectOutput === undefined) return {};
  const m = linearRegExp(step.expectOutput, 'm').exec(output);
  if (!m) {
    fail(
      Failure.StepExpectationFailed,
      `step ${step.id}: output does not match /${step.expectOutput}/; it ended:\n${tail(output, 8)}`,
    );
  }
  return Object.fromEntries(Object.entries(m.groups ?? {}).filter(([, v]) => v !== undefined)) as Record<
    string,
    string
  >;
}

/**
 * A command that ran: its exit code must be the expected one, its output must match. `why`
 * explains a wrong exit code: stderr, unless the program says it elsewhere.
 */
function checkCommand(
  step: ResolvedStep & { expectExit: number },
  result: CommandResult,
  why = result.stderr,
): StepOutcome {
  if (result.exitCode !== step.expectExit) {
    fail(
      Failure.StepExpectationFailed,
      `step ${step.id}: exited ${result.exitCode} (expected ${step.expectExit})${why.trim() ? `: ${tail(why, 8)}` : ''}`,
    );
  }
  const captured = matchOutput(step, `${result.stdout}\n${result.stderr}`);
  return { kind: 'done', detail: tail(result.stdout, 3, 500) || `exit ${result.exitCode}`, captured };
}

/**
 * ansible-playbook reports a failed task on stdout (`fatal: [host]: FAILED! => {...}`) and
 * keeps stderr for warnings; only a playbook it cannot load is explained there (`ERROR!`).
 */
function playbookFailures(result: CommandResult): string {
  const failed = result.stdout.split('\n').filter((line) => /^(fatal|failed): \[/.test(line));
  return failed.length ? failed.join('\n') : result.stderr;
}

/**
 * SSH failures: only a connection that never got as far as running the command may be
 * retried; anything after that could run the command twice.
 */
function sshFailure(err: unknown, step: ResolvedStep, where?: string): never {
  if (err instanceof SshError) {
    throw ApplicationFailure.create({
      type: err.name,
      message: `step ${step.id}${where ? ` (${where})` : ''}: ${err.message}`,
      nonRetryable: !(err instanceof SshConnectError && err.retryable),
    });
  }
  throw err;
}

/** Heartbeats while a long command runs, with the last output line. */
function heartbeating(): { onOutput: (chunk: string) => void; stop: () => void } {
  const ctx = Context.current();
  let last = '';
  const timer = setInterval(() => ctx.heartbeat({ last }), 5_000);
  return {
    onOutput: (chunk) => {
      last = chunk.trimEnd().split('\n').at(-1) ?? last;
    },
    stop: () => clearInterval(timer),
  };
}

function expandHome(path: string): string {
  return path === '~' || path.startsWith('~/') ? `${homedir()}${path.slice(1)}` : path;
}

/** Runs a process without a shell; resolves with its exit code and output, never rejects on a non-zero exit. */
function execProcess(
  file: string,
  args: string[],
  opts: { cwd: string; timeoutMs: number; onOutput: (chunk: string) => void },
): Promise<CommandResult> {
  return new Promise((resolvePromise, reject) => {
    const child = execFile(
      file,
      args,
      {
        cwd: opts.cwd,
        timeout: opts.timeoutMs,
        maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, ANSIBLE_NOCOLOR: '1' },
      },
      (err, stdout, stderr) => {
        const code = (err as (NodeJS.ErrnoException & { code?: unknown }) | null)?.code;
        if (err && typeof code === 'string') return reject(err);
        if (err && (err as { killed?: boolean }).killed) {
          return reject(new Error(`did not finish within ${opts.timeoutMs} ms and was stopped`));
        }
        resolvePromise({ exitCode: typeof code === 'number' ? code : 0, stdout, stderr });
      },
    );
    child.stdout?.on('data', (chunk: Buffer) => opts.onOutput(chunk.toString()));
  });
}

export function createRunbookActivities(deps: RunbookActivityDeps) {
  const runbooksDir = () => deps.runbooksDir ?? defaultRunbooksDir();
  const ansiblePlaybook = () => deps.ansiblePlaybook ?? process.env.PM_ANSIBLE_PLAYBOOK ?? 'ansible-playbook';

  async function runApi(
    client: PveClient,
    req: RunStepRequest,
    step: Extract<ResolvedStep, { kind: 'api' }>,
  ): Promise<StepOutcome> {
    if (step.destructive && step.verifyName !== undefined && typeof step.params.vmid === 'number') {
      const guest = await findGuest(client, step.params.vmid);
      if (!guest) {
        if (step.api === 'qemuDestroy' || step.api === 'lxcDestroy') {
          return { kind: 'done', detail: `guest ${step.params.vmid} does not exist (nothing to remove)`, captured: {} };
        }
        fail(Failure.VmIdentityMismatch, `step ${step.id}: guest ${step.params.vmid} does not exist`);
      }
      if (guest.name !== step.verifyName) {
        fail(
          Failure.VmIdentityMismatch,
          `step ${step.id}: guest ${step.params.vmid} is named '${guest.name}', not '${step.verifyName}': refusing to act on it`,
        );
      }
    }
    const send = async (params: Record<string, Value>): Promise<unknown> => {
      try {
        return await client.call(step.api as EndpointName, params as never);
      } catch (err) {
        if (err instanceof PveUnavailableError && err.requestMayHaveBeenSent && step.method !== 'GET') {
          fail(
            Failure.OutcomeUnknown,
            `step ${step.id}: ${step.api} was sent but PVE did not answer; check the cluster (task list) before running it again (${err.message})`,
          );
        }
        throw err;
      }
    };
    const outcome = (answer: unknown, allocated?: Record<string, number>): StepOutcome => {
      if (step.async && typeof answer === 'string')
        return { kind: 'task', upid: answer, ...(allocated ? { allocated } : {}) };
      const output = answer === null || answer === undefined ? '' : JSON.stringify(answer);
      return {
        kind: 'done',
        detail: output.slice(0, 500) || 'done',
        captured: matchOutput(step, output),
        ...(allocated ? { allocated } : {}),
      };
    };

    const allocate = req.allocate;
    if (!allocate) return outcome(await send(step.params));
    const taken = new Set(allocate.exclude);
    for (let attempt = 0; attempt < 20; attempt++) {
      const used = new Set((await client.cluster.resources({ type: 'vm' })).map((r) => r.vmid));
      let candidate: number | undefined;
      for (let id = allocate.range.min; id <= allocate.range.max && candidate === undefined; id++) {
        if (!used.has(id) && !taken.has(id)) candidate = id;
      }
      if (candidate === undefined) {
        fail(Failure.NoFreeVmid, `step ${step.id}: no free VMID left in ${allocate.range.min}-${allocate.range.max}`);
      }
      const params = finishStep(step, { ...req.vars, [allocate.name]: candidate }).params;
      try {
        return outcome(await send(params), { [allocate.name]: candidate });
      } catch (err) {
        // Another build took this VMID between our read and our create: take the next one.
        if (err instanceof PveApiError && ALREADY_EXISTS.test(err.pveMessage)) taken.add(candidate);
        else throw err;
      }
    }
    return fail(Failure.NoFreeVmid, `step ${step.id}: VMIDs kept being taken by others; try again`);
  }

  async function runGuestCommand(
    req: RunStepRequest,
    step: Extract<ResolvedStep, { kind: 'guest' }>,
  ): Promise<StepOutcome> {
    const client = await deps.pve(req.environment);
    const vmid = Number(step.vmid);
    const guest = await classified('write', () => findGuest(client, vmid));
    if (!guest || guest.type !== 'qemu') fail(Failure.PlanRefused, `step ${step.id}: VM ${step.vmid} does not exist`);
    // Waiting for the guest's agent and running the command share the step's timeout.
    const deadline = Date.now() + step.timeoutMs;
    const address = await classified('write', () => guestAddress(client, guest.node, vmid, step.timeoutMs / 2));
    if (!address) {
      fail(
        Failure.GuestAddressUnknown,
        `step ${step.id}: the guest agent of VM ${vmid} reported no IPv4 address in time`,
      );
    }
    // Guests are reached through their node, which sits on their network; both hops are pinned.
    const node = await deps
      .sshTarget(req.environment, guest.node)
      .catch((err: Error) => fail(Failure.SshNotConfigured, `step ${step.id}: ${err.message}`));
    const beat = heartbeating();
    try {
      const result = await withTunnel(node, { host: address, port: 22 }, Math.min(step.timeoutMs, 60_000), (local) =>
        runCommand(
          { ...local, username: step.user, privateKey: node.privateKey, hostKeySha256: step.hostKey },
          step.command,
          {
            timeoutMs: Math.max(deadline - Date.now(), 1_000),
            allowNonZeroExit: true,
            label: `step ${step.id}`,
            onOutput: beat.onOutput,
          },
        ),
      );
      return checkCommand(step, result);
    } catch (err) {
      return sshFailure(err, step, `VM ${vmid} at ${address}, through ${guest.node}`);
    } finally {
      beat.stop();
    }
  }

  async function runPlaybook(
    req: RunStepRequest,
    step: Extract<ResolvedStep, { kind: 'ansible' }>,
  ): Promise<StepOutcome> {
    const ansible = environmentOf(deps, req.environment).ansible;
    if (!ansible)
      fail(
        Failure.PlanRefused,
        `step ${step.id}: environment '${req.environment}' has no ansible section (fleet_infra_path, inventory)`,
      );
    const root = resolve(expandHome(ansible.fleet_infra_path));
    const playbook = resolve(root, step.playbook);
    const inside = relative(root, playbook);
    if (inside.startsWith('..') || isAbsolute(inside))
      fail(Failure.PlanRefused, `step ${step.id}: playbook ${step.playbook} is outside ${root}`);
    const args = ['-i', join(root, ansible.inventory), playbook];
    if (step.limit) args.push('--limit', step.limit);
    if (step.tags?.length) args.push('--tags', step.tags.join(','));
    if (step.extraVars) args.push('--extra-vars', JSON.stringify(step.extraVars));
    const beat = heartbeating();
    try {
      const result = await execProcess(ansiblePlaybook(), args, {
        cwd: root,
        timeoutMs: step.timeoutMs,
        onOutput: beat.onOutput,
      });
      return checkCommand(step, result, playbookFailures(result));
    } catch (err) {
      if (err instanceof ApplicationFailure) throw err;
      return fail(
        Failure.PlaybookFailed,
        `step ${step.id}: ${ansiblePlaybook()} could not run: ${(err as Error).message}`,
      );
    } finally {
      beat.stop();
    }
  }

  return {
    /** Plans a runbook run; refuses (non-retryably) with every problem named by its path. */
    async planRunbookRun(input: RunbookRunInput): Promise<PlanDraft<RunbookPlanDetails>> {
      const { details } = await prepareRunbook(deps, input, operationId());
      const { plan } = details;
      return {
        summary: `run runbook ${details.runbook} on ${details.node} (${plan.steps.length} steps${plan.skipped.length ? `, ${plan.skipped.length} skipped` : ''})`,
        risk: plan.risk,
        reasons: plan.reasons,
        steps: planStepsOf(plan),
        warnings: plan.skipped.map((s) => `step ${s.id} does not run here (${s.why})`),
        nodes: [details.node],
        vmids: plan.steps
          .flatMap((s) => (s.kind === 'api' && typeof s.params.vmid === 'number' ? [s.params.vmid] : []))
          .filter((v, i, a) => a.indexOf(v) === i),
        estimatedDurationMs: plan.steps.length * 15_000,
        details,
      };
    },

    /**
     * Runs one step of a plan, once: a PVE call (returning its task to wait on), a command on
     * a node or in a guest, or a playbook. Destructive calls first check the guest's vmid and
     * name. A creating step given `allocate` takes the next free VMID, moving on when PVE
     * says one is taken.
     */
    async runRunbookStep(req: RunStepRequest): Promise<StepOutcome> {
      let step: ResolvedStep;
      try {
        step = finishStep(req.step, req.vars, new Set(req.allocate ? [req.allocate.name] : []));
      } catch (err) {
        if (err instanceof UnresolvedPlaceholderError) fail(Failure.PlanRefused, `step ${req.step.id}: ${err.message}`);
        throw err;
      }
      switch (step.kind) {
        case 'api': {
          const client = await deps.pve(req.environment);
          return classified('write', () => runApi(client, req, step));
        }
        case 'ssh': {
          const target = await deps
            .sshTarget(req.environment, step.node)
            .catch((err: Error) => fail(Failure.SshNotConfigured, `step ${step.id}: ${err.message}`));
          const beat = heartbeating();
          try {
            const result = await runCommand(target, step.command, {
              timeoutMs: step.timeoutMs,
              allowNonZeroExit: true,
              label: `step ${step.id}`,
              onOutput: beat.onOutput,
            });
            return checkCommand(step, result);
          } catch (err) {
            return sshFailure(err, step);
          } finally {
            beat.stop();
          }
        }
        case 'guest':
          return runGuestCommand(req, step);
        case 'ansible':
          return runPlaybook(req, step);
      }
    },

    /** Parses and adapts a submitted runbook; the plan is the adapted file and what changed. */
    async planRunbookIngest(input: RunbookIngestInput): Promise<PlanDraft<IngestDetails>> {
      const env = environmentOf(deps, input.environment);
      let adapted;
      try {
        adapted = adaptRunbook(parseRunbookMarkdown(input.markdown, 'the submitted runbook'), input.markdown, env);
      } catch (err) {
        refusePlan(err);
      }
      const name = adapted.runbook.name;
      const existing = await readRunbookText(runbooksDir(), name);
      if (existing !== undefined && !input.replace) {
        fail(Failure.PlanRefused, `name: runbook '${name}' exists; submit it with replace: true to change it`);
      }
      const replacing = existing !== undefined;
      const steps = adapted.runbook.steps.map((s) => `${s.id} (${s.kind === 'api' ? s.api : s.kind})`);
      return {
        summary: `${replacing ? 'replace' : 'add'} runbook ${name}: ${adapted.runbook.description} (${adapted.adaptations.length} adaptations to ${input.environment}'s conventions)`,
        risk: replacing ? 'high' : 'medium',
        reasons: [
          replacing ? `replaces the existing runbook ${name}` : 'adds a runbook operators can run',
          `its steps: ${steps.join(', ')}`,
        ],
        steps: [
          {
            id: 'save',
            action: 'save-runbook',
            name,
            description: `write runbooks/${name}.md (${adapted.adaptations.length} adaptations, shown in details)`,
          },
        ],
        warnings: adapted.adaptations.map(
          (a) =>
            `${a.path}: ${JSON.stringify(a.before) ?? '(none)'} -> ${JSON.stringify(a.after) ?? '(removed)'} (${a.reason})`,
        ),
        nodes: [],
        vmids: [],
        estimatedDurationMs: 1_000,
        details: {
          name,
          markdown: adapted.markdown,
          sha256: sha256(adapted.markdown),
          adaptations: adapted.adaptations,
          diff: adapted.diff,
          ...(existing !== undefined ? { previousSha256: sha256(existing) } : {}),
        },
      };
    },

    /** Writes the approved runbook; refuses if the file changed since it was reviewed. */
    async saveIngestedRunbook(details: IngestDetails): Promise<{ name: string; outcome: SaveOutcome; path: string }> {
      if (sha256(details.markdown) !== details.sha256)
        fail(Failure.PlanRefused, 'the runbook text does not match the reviewed plan');
      try {
        const outcome = await saveRunbook(runbooksDir(), details.name, details.markdown, {
          ...(details.previousSha256 ? { previousSha256: details.previousSha256 } : {}),
        });
        return { name: details.name, outcome, path: join(runbooksDir(), `${details.name}.md`) };
      } catch (err) {
        if (err instanceof RunbookConflictError) fail(Failure.RunbookConflict, err.message);
        throw err;
      }
    },
  };
}

export type RunbookActivities = ReturnType<typeof createRunbookActivities>;
