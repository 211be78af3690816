/**
 * `pm`: proxmox-manager from a terminal. Every command is one or two calls to the public
 * HTTP API with the caller's own token, so roles, approvals and the audit log apply exactly
 * as they do to curl. `runPm` takes its I/O as arguments; cli/main.ts wires the process.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import {
  ApiRequestError,
  createApiClient,
  hasEnded,
  whenPlanned,
  type ApiClient,
  type OperationDetail,
  type Started,
} from '../lib/api-client.js';
import { operationsTable, paintPlan, painter, progressLine, table, type Output } from './render.js';
import { loadSettings, SettingsError } from './settings.js';

/** Exit codes scripts can rely on (docs/doors.md). */
export const exitCodes = {
  ok: 0,
  /** The operation ended without success: failed, rejected, cancelled. */
  operationFailed: 1,
  usage: 2,
  /** No URL/token, or a config file others can read. */
  config: 3,
  /** 401/403: the token is unknown or its roles do not allow this. */
  forbidden: 4,
  /** 409: refused (self-approval, stale plan version, already decided, ended). */
  refused: 5,
  notFound: 6,
  /** 400/422: the request was invalid or the plan could not be made. */
  invalid: 7,
  /** The API is unreachable or failed (5xx). */
  unavailable: 8,
  /** The confirmation prompt was answered no. */
  aborted: 9,
} as const;

export interface PmIo {
  env: NodeJS.ProcessEnv;
  stdout: Output;
  stderr: Output;
  /** Asks a yes/no question; resolves to the answer line. */
  prompt(question: string): Promise<string>;
  /** Pause between polls while watching. */
  sleep?(ms: number): Promise<void>;
}

class UsageError extends Error {}
class Aborted extends Error {}

export const usage = `usage: pm <command> [options]

  ops [--pending] [--kind K] [--state S] [--env E]   list operations (--pending: plans awaiting a decision)
  show <id>                                          one operation: state, steps, plan
  start <kind> [--set key=value ...] [--body JSON] [--dry-run] [--watch]
                                                     plan it (dry run), show the plan, confirm, request it
  approve <id> --plan-version N [--reason R]         approve the plan you reviewed
  reject <id> --plan-version N --reason R            reject it
  watch <id>                                         follow it live to its end
  cancel <id> [--reason R]                           ask it to stop at a safe point
  inventory [--env E]                                nodes and guests
  nodes [--env E]                                    node health
  audit verify                                       check the audit log's hash chain

  --env E      environment (default PM_ENVIRONMENT or the config file's)
  --json       machine-readable output
  --yes        do not ask for confirmation
Settings: PM_URL, PM_TOKEN (or ~/.config/pm/config.yaml, mode 0600; PM_CLIENT_CONFIG elsewhere).
Exit codes: 0 ok, 1 operation failed/rejected/cancelled, 2 usage, 3 settings, 4 unauthorized/forbidden,
5 refused (409), 6 not found, 7 invalid request, 8 API unavailable, 9 aborted at the prompt.`;

const options = {
  json: { type: 'boolean', default: false },
  yes: { type: 'boolean', short: 'y', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  pending: { type: 'boolean', default: false },
  'dry-run': { type: 'boolean', default: false },
  watch: { type: 'boolean', default: false },
  env: { type: 'string' },
  kind: { type: 'string' },
  state: { type: 'string' },
  limit: { type: 'string' },
  'plan-version': { type: 'string' },
  reason: { type: 'string' },
  body: { type: 'string' },
  set: { type: 'string', multiple: true, default: [] as string[] },
} satisfies NonNullable<ParseArgsConfig['options']>;

type Flags = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>['values'];

interface Context {
  api: ApiClient;
  flags: Flags;
  io: PmIo;
  environment?: string;
  paint: ReturnType<typeof painter>;
  print(text: string): void;
  /** Prints JSON with --json, the text otherwise. */
  emit(json: unknown, text: () => string): void;
}

export async function runPm(argv: string[], io: PmIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    io.stderr.write(`pm: ${(err as Error).message}\n${usage}\n`);
    return exitCodes.usage;
  }
  const { values: flags, positionals } = parsed;
  const [command, ...args] = positionals;
  if (flags.help || !command) {
    (flags.help ? io.stdout : io.stderr).write(`${usage}\n`);
    return flags.help ? exitCodes.ok : exitCodes.usage;
  }
  const handler = commands[command];
  if (!handler) {
    io.stderr.write(`pm: no command '${command}'\n${usage}\n`);
    return exitCodes.usage;
  }
  try {
    const settings = loadSettings(io.env);
    const environment = flags.env ?? settings.environment;
    const print = (text: string) => io.stdout.write(`${text}\n`);
    const ctx: Context = {
      api: createApiClient(settings),
      flags,
      io,
      ...(environment ? { environment } : {}),
      paint: painter(io.stdout, io.env),
      print,
      emit: (json, text) => print(flags.json ? JSON.stringify(json, null, 2) : text()),
    };
    return await handler(ctx, args);
  } catch (err) {
    return failure(err, io);
  }
}

function failure(err: unknown, io: PmIo): number {
  const say = (text: string) => io.stderr.write(`pm: ${text}\n`);
  if (err instanceof UsageError) {
    say(err.message);
    return exitCodes.usage;
  }
  if (err instanceof SettingsError) {
    say(err.message);
    return exitCodes.config;
  }
  if (err instanceof Aborted) {
    say('aborted; nothing was sent');
    return exitCodes.aborted;
  }
  if (!(err instanceof ApiRequestError)) throw err;
  say(`${err.message}${err.details.map((d) => `\n  ${d.path}: ${d.message}`).join('')}`);
  if (err.status === 401 || err.status === 403) return exitCodes.forbidden;
  if (err.status === 409) return exitCodes.refused;
  if (err.status === 404) return exitCodes.notFound;
  if (err.status === 400 || err.status === 422 || err.status === 413) return exitCodes.invalid;
  return exitCodes.unavailable;
}

// ---- helpers ----

function one(args: string[], what: string): string {
  if (args.length !== 1) throw new UsageError(`expected one ${what}`);
  return args[0]!;
}

function requireEnvironment(ctx: Context): string {
  if (!ctx.environment) throw new UsageError('name an environment: --env E (or PM_ENVIRONMENT)');
  return ctx.environment;
}

function planVersion(ctx: Context): number {
  const raw = ctx.flags['plan-version'];
  if (raw === undefined || !/^[1-9]\d*$/.test(raw)) {
    throw new UsageError('--plan-version N is required: the version of the plan you reviewed (pm show <id>)');
  }
  return Number(raw);
}

async function confirm(ctx: Context, question: string): Promise<void> {
  if (ctx.flags.yes) return;
  const answer = await ctx.io.prompt(`${question} [y/N] `);
  if (!/^y(es)?$/i.test(answer.trim())) throw new Aborted();
}

/** `--set key=value`: values that read as JSON (numbers, booleans, lists) are taken as JSON. */
function requestBody(ctx: Context): Record<string, unknown> {
  let body: Record<string, unknown> = {};
  if (ctx.flags.body !== undefined) {
    try {
      body = JSON.parse(ctx.flags.body) as Record<string, unknown>;
    } catch {
      throw new UsageError('--body must be a JSON object');
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new UsageError('--body must be a JSON object');
  }
  for (const pair of ctx.flags.set) {
    const eq = pair.indexOf('=');
    if (eq < 1) throw new UsageError(`--set ${pair}: expected key=value`);
    const raw = pair.slice(eq + 1);
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string
    }
    body[pair.slice(0, eq)] = value;
  }
  if (body.environment === undefined && ctx.environment) body.environment = ctx.environment;
  return body;
}

function showPlan(ctx: Context, planText: string | undefined): void {
  ctx.print(planText ? paintPlan(planText, ctx.paint) : ctx.paint('dim', '(no plan yet)'));
}

function describe(ctx: Context, op: OperationDetail): string {
  const lines = [
    `${ctx.paint('bold', op.id)}`,
    `  ${op.kind} in ${op.environment ?? '?'} · requested by ${op.requester ?? '?'} · ${op.state}${op.approvalState ? ` (${op.approvalState})` : ''}`,
    `  ${op.links.temporalUi}`,
  ];
  if (op.planUnavailable) lines.push(ctx.paint('yellow', `  ${op.planUnavailable}`));
  if (op.status) lines.push(`  ${progressLine(op)}`);
  if (op.status?.approval) {
    const a = op.status.approval;
    lines.push(`  ${a.decision} by ${a.by} (plan v${a.planVersion})${a.reason ? `: ${a.reason}` : ''}`);
  }
  if (op.failure) lines.push(ctx.paint('red', `  failed: ${op.failure.message}`));
  if (op.planText) lines.push('', paintPlan(op.planText, ctx.paint));
  return lines.join('\n');
}

/** Did the operation end well? Its execution state, then the outcome its result names. */
export function succeeded(op: OperationDetail): boolean {
  if (op.state !== 'completed') return false;
  const outcome = (op.result as { outcome?: unknown } | undefined)?.outcome;
  return !(typeof outcome === 'string' && /fail|reject|cancel|partial|halt/.test(outcome));
}

/** The line an approver needs, while the operation awaits a decision; empty otherwise. */
function awaitingDecision(op: OperationDetail): string {
  const version = op.status?.plan?.version;
  return op.status?.phase === 'awaiting-approval' && version
    ? `awaiting a decision: pm approve '${op.id}' --plan-version ${version}`
    : '';
}

// ---- commands ----

type Command = (ctx: Context, args: string[]) => Promise<number>;

const commands: Record<string, Command> = {
  async ops(ctx) {
    const { operations } = await ctx.api.listOperations({
      environment: ctx.flags.env,
      kind: ctx.flags.kind,
      state: ctx.flags.pending ? 'pending' : ctx.flags.state,
      pageSize: ctx.flags.limit,
    });
    ctx.emit({ operations }, () => operationsTable(operations));
    return exitCodes.ok;
  },

  async show(ctx, args) {
    const op = await ctx.api.operation(one(args, 'operation id'), { includePlan: true });
    ctx.emit(op, () => describe(ctx, op));
    return exitCodes.ok;
  },

  async start(ctx, args) {
    const kind = one(args, 'operation kind');
    const body = requestBody(ctx);
    const plan = await ctx.api.start(kind, { ...body, dryRun: true });
    if (ctx.flags['dry-run'] || plan.state !== 'completed') {
      ctx.emit(plan, () =>
        plan.planText ? paintPlan(plan.planText, ctx.paint) : `still planning: pm show '${plan.id}'`,
      );
      return exitCodes.ok;
    }
    if (!ctx.flags.json) showPlan(ctx, plan.planText);
    await confirm(ctx, `Request this ${kind} for real?`);
    const started: Started = await ctx.api.start(kind, { ...body, dryRun: false });
    if (ctx.flags.watch) return watch(ctx, started.id);
    const op = await whenPlanned(ctx.api, started.id, {
      timeoutMs: 60_000,
      ...(ctx.io.sleep ? { sleep: ctx.io.sleep } : {}),
    });
    ctx.emit(op, () =>
      [
        `requested ${op.id}`,
        `  ${op.links.temporalUi}`,
        `  ${awaitingDecision(op) || `follow it: pm watch '${op.id}'`}`,
      ].join('\n'),
    );
    return exitCodes.ok;
  },

  async approve(ctx, args) {
    return decide(ctx, one(args, 'operation id'), 'approve');
  },

  async reject(ctx, args) {
    if (!ctx.flags.reason) throw new UsageError('a rejection needs --reason');
    return decide(ctx, one(args, 'operation id'), 'reject');
  },

  async watch(ctx, args) {
    return watch(ctx, one(args, 'operation id'));
  },

  async cancel(ctx, args) {
    const id = one(args, 'operation id');
    await confirm(ctx, `Cancel ${id}?`);
    const answer = await ctx.api.cancel(id, ctx.flags.reason);
    ctx.emit(answer, () => `cancel requested for ${id}`);
    return exitCodes.ok;
  },

  async inventory(ctx) {
    const inventory = (await ctx.api.inventory({ environment: requireEnvironment(ctx) })) as {
      nodes: { name: string; online: boolean; cpuUsage: number; memoryUsedBytes: number; memoryTotalBytes: number }[];
      guests: { vmid: number; name: string; type: string; node: string; status: string }[];
    };
    ctx.emit(inventory, () =>
      [
        table([
          ['NODE', 'ONLINE', 'CPU', 'MEMORY'],
          ...inventory.nodes.map((n) => [
            n.name,
            n.online ? 'yes' : 'no',
            pct(n.cpuUsage),
            pct(n.memoryUsedBytes / (n.memoryTotalBytes || 1)),
          ]),
        ]),
        '',
        table([
          ['VMID', 'NAME', 'TYPE', 'NODE', 'STATUS'],
          ...inventory.guests.map((g) => [String(g.vmid), g.name, g.type, g.node, g.status]),
        ]),
      ].join('\n'),
    );
    return exitCodes.ok;
  },

  async nodes(ctx) {
    const report = (await ctx.api.nodeHealth({ environment: requireEnvironment(ctx) })) as {
      nodes: {
        node: string;
        status: string;
        cpuUsage: number;
        memoryUsedFraction: number;
        issues: { detail: string }[];
      }[];
    };
    ctx.emit(report, () =>
      table([
        ['NODE', 'STATUS', 'CPU', 'MEMORY', 'ISSUES'],
        ...report.nodes.map((n) => [
          n.node,
          n.status,
          pct(n.cpuUsage),
          pct(n.memoryUsedFraction),
          n.issues.map((i) => i.detail).join('; ') || '-',
        ]),
      ]),
    );
    return exitCodes.ok;
  },

  async audit(ctx, args) {
    if (args[0] !== 'verify' || args.length !== 1) throw new UsageError('usage: pm audit verify');
    const result = await ctx.api.auditVerify();
    ctx.emit(result, () =>
      result.ok
        ? `audit log intact: ${result.records} records`
        : `audit log broken at line ${result.line}: ${result.problem}`,
    );
    return result.ok ? exitCodes.ok : exitCodes.operationFailed;
  },
};

const pct = (fraction: number) => `${Math.round(fraction * 100)}%`;

async function decide(ctx: Context, id: string, decision: 'approve' | 'reject'): Promise<number> {
  const version = planVersion(ctx);
  if (!ctx.flags.yes) {
    const op = await ctx.api.operation(id, { includePlan: true });
    showPlan(ctx, op.planText);
    await confirm(ctx, `${decision === 'approve' ? 'Approve' : 'Reject'} plan v${version} of ${id}?`);
  }
  const answer =
    decision === 'approve'
      ? await ctx.api.approve(id, version, ctx.flags.reason)
      : await ctx.api.reject(id, version, ctx.flags.reason!);
  ctx.emit(answer, () =>
    answer.state === 'decided'
      ? `${answer.decision?.decision} by ${answer.decision?.by} (plan v${answer.decision?.planVersion})`
      : (answer.message ?? 'accepted'),
  );
  return exitCodes.ok;
}

/** Polls until the operation ends: a progress line redrawn in place on a terminal, one line per change otherwise. */
async function watch(ctx: Context, id: string): Promise<number> {
  const sleep = ctx.io.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  const { stderr } = ctx.io;
  let last = '';
  let hinted = false;
  for (;;) {
    const op = await ctx.api.operation(id);
    const line = progressLine(op);
    if (line !== last) {
      stderr.write(stderr.isTTY ? `\r\x1b[2K${line}` : `${line}\n`);
      last = line;
    }
    const hint = awaitingDecision(op);
    if (!hinted && hint) {
      stderr.write(`${stderr.isTTY ? '\n' : ''}${hint}\n`);
      hinted = true;
    }
    if (hasEnded(op)) {
      if (stderr.isTTY) stderr.write('\n');
      ctx.emit(op, () => describe(ctx, op));
      return succeeded(op) ? exitCodes.ok : exitCodes.operationFailed;
    }
    await sleep(1_000);
  }
}
