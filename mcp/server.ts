/**
 * The MCP server: what an AI agent may do with proxmox-manager. It is a client of the public
 * HTTP API under an identity of its own (a token with the `agent` role), so the API decides
 * what it may do: read, and ask for plans. The agent role cannot approve or cancel, and
 * everything it requests waits for a person — the API enforces both, not this file.
 * There are no approve or cancel tools here; each request answers with the plan and the
 * links the approver needs.
 */
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';
import { ApiRequestError, whenPlanned, type ApiClient, type OperationDetail } from '../lib/api-client.js';
import { operations } from '../lib/operations/catalog.js';

export interface McpOptions {
  /** The API's public base URL, for the approval route an approver follows. */
  apiUrl: string;
  /** How long a request waits for its plan before answering with the id only. */
  planWaitMs?: number;
}

const kinds = operations.map((o) => o.kind) as [string, ...string[]];
const kindList = operations.map((o) => `- ${o.kind}: ${o.description}`).join('\n');

const environment = z.string().describe('environment name (list_environments)');
const operationId = z.string().describe('operation id, as returned by request_operation or list_operations');
const request = z
  .record(z.string(), z.unknown())
  .describe(
    "the operation's request body without environment/dryRun, as documented at GET /openapi.json (e.g. evacuation: { node })",
  );

const ok = (value: unknown): CallToolResult => ({ content: [{ type: 'text', text: JSON.stringify(value, null, 2) }] });

/** An API refusal is the tool's answer, not a crash: the agent reads why. */
async function answer(work: () => Promise<unknown>): Promise<CallToolResult> {
  try {
    return ok(await work());
  } catch (err) {
    if (!(err instanceof ApiRequestError)) throw err;
    return {
      isError: true,
      content: [{ type: 'text', text: `refused by the API (${err.status} ${err.code}): ${err.message}` }],
    };
  }
}

export function createMcpServer(api: ApiClient, options: McpOptions): McpServer {
  const server = new McpServer({ name: 'proxmox-manager', version: '0.1.0' });
  const read = { readOnlyHint: true, openWorldHint: false } as const;
  const planWaitMs = options.planWaitMs ?? 30_000;

  /** What an approver needs to decide on an operation, next to its plan. */
  const forApprover = (op: OperationDetail) => {
    const version = op.status?.plan?.version;
    return {
      temporalUi: op.links.temporalUi,
      apiRoute: `POST ${options.apiUrl.replace(/\/+$/, '')}${op.links.self}/approve`,
      ...(version ? { body: { planVersion: version }, pm: `pm approve '${op.id}' --plan-version ${version}` } : {}),
    };
  };

  server.registerTool(
    'list_environments',
    { description: 'The configured Proxmox environments (clusters).', annotations: read },
    () => answer(() => api.environments()),
  );
  server.registerTool(
    'inventory',
    {
      description: 'Nodes and guests (VMs, containers) of an environment, live from Proxmox.',
      inputSchema: { environment, node: z.string().optional(), state: z.enum(['all', 'running']).optional() },
      annotations: read,
    },
    (args) => answer(() => api.inventory(args)),
  );
  server.registerTool(
    'node_health',
    {
      description:
        'Which nodes are struggling: offline, CPU or memory high, placement headroom gone, storage nearly full.',
      inputSchema: { environment },
      annotations: read,
    },
    (args) => answer(() => api.nodeHealth(args)),
  );
  server.registerTool(
    'storage',
    {
      description: 'Storages of an environment with their usage.',
      inputSchema: { environment, node: z.string().optional() },
      annotations: read,
    },
    (args) => answer(() => api.storage(args)),
  );
  server.registerTool(
    'list_operations',
    {
      description:
        'Operations, newest first. state: running, completed, failed, ... or an approval state such as pending.',
      inputSchema: {
        environment: environment.optional(),
        kind: z.enum(kinds).optional(),
        state: z.string().optional(),
        requester: z.string().optional(),
      },
      annotations: read,
    },
    (args) => answer(() => api.listOperations(args)),
  );
  server.registerTool(
    'operation_status',
    {
      description:
        'One operation: phase, plan (planText is what the approver reads), steps, bytes of running migrations, approval, result. ' +
        'Poll it to follow an operation to its end (state other than running).',
      inputSchema: { id: operationId },
      annotations: read,
    },
    ({ id }) => answer(async () => withApproverLinks(await api.operation(id, { includePlan: true }))),
  );
  server.registerTool(
    'runbooks',
    {
      description: 'Runbooks: all of them, or one by name with its steps.',
      inputSchema: { name: z.string().optional() },
      annotations: read,
    },
    ({ name }) => answer(() => (name ? api.runbook(name) : api.runbooks())),
  );
  server.registerTool(
    'drift',
    {
      description: 'Drift reports: where the clusters differ from the fleet manifests.',
      inputSchema: { environment: environment.optional() },
      annotations: read,
    },
    (args) => answer(() => api.drift(args)),
  );

  server.registerTool(
    'plan_operation',
    {
      description: `Dry run: the plan an operation would follow, with its risk. Changes nothing and needs no approval.\nKinds:\n${kindList}`,
      inputSchema: { kind: z.enum(kinds), environment, request: request.optional() },
      annotations: { readOnlyHint: true, openWorldHint: false },
    },
    ({ kind, environment, request }) =>
      answer(async () => {
        const dry = await api.start(kind, { ...request, environment, dryRun: true });
        return { id: dry.id, state: dry.state, planText: dry.planText, plan: dry.result?.plan };
      }),
  );
  server.registerTool(
    'request_operation',
    {
      description:
        'Requests an operation. NEEDS A PERSON: nothing changes until a person with the approver role reviews the plan and ' +
        'approves it (the API never lets this agent approve, and never auto-approves its requests, whatever the risk). ' +
        'Answers with the plan and the links to hand to the approver; follow it with operation_status. ' +
        `Make a plan_operation dry run first.\nKinds:\n${kindList}`,
      inputSchema: { kind: z.enum(kinds), environment, request: request.optional() },
      annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
    },
    ({ kind, environment, request }) =>
      answer(async () => {
        const started = await api.start(kind, { ...request, environment, dryRun: false });
        await whenPlanned(api, started.id, { timeoutMs: planWaitMs });
        return {
          ...withApproverLinks(await api.operation(started.id, { includePlan: true })),
          needs: 'a person with the approver role to approve this plan version; until then nothing changes',
        };
      }),
  );

  function withApproverLinks(op: OperationDetail) {
    const {
      id,
      kind,
      environment,
      requester,
      state,
      risk,
      planText,
      steps,
      transfers,
      result,
      failure,
      planUnavailable,
    } = op;
    return {
      id,
      kind,
      environment,
      requester,
      state,
      // As the workflow published them: phase, plan version and risk from one moment.
      phase: op.status?.phase,
      risk: op.status?.plan?.risk ?? risk,
      planVersion: op.status?.plan?.version,
      planText,
      progress: op.status?.progress,
      ...(steps ? { steps } : {}),
      ...(transfers ? { transfers } : {}),
      ...(op.status?.approval ? { approval: op.status.approval } : {}),
      ...(result !== undefined ? { result } : {}),
      ...(failure ? { failure } : {}),
      ...(planUnavailable ? { planUnavailable } : {}),
      approver: forApprover(op),
    };
  }

  return server;
}
