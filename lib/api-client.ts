/**
 * A client of proxmox-manager's public HTTP API, for the doors that are not the API itself
 * (the `pm` terminal client, the MCP server). It holds an API bearer token and nothing
 * else: every decision — roles, approvals, audit — stays with the API.
 *
 *   const api = createApiClient({ url: 'http://127.0.0.1:8080', token });
 *   const op = await api.operation(id);
 */

export interface ApiClientOptions {
  /** Base URL of the API, e.g. http://127.0.0.1:8080. */
  url: string;
  token: string;
  /** How requests are sent; global fetch by default (the API's own doors pass its in-process fetch). */
  fetch?: (request: Request) => Promise<Response>;
}

/** A refusal or failure as the API answered it: status, code, message and field details. */
export class ApiRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: { path: string; message: string }[] = [],
  ) {
    super(message);
    this.name = 'ApiRequestError';
  }
}

export interface OperationLinks {
  self: string;
  temporalUi: string;
}

export interface OperationSummary {
  id: string;
  kind: string;
  environment?: string;
  requester?: string;
  state: string;
  approvalState?: string;
  risk?: string;
  nodes: string[];
  vmids: number[];
  /** What the workflow published as it last changed (absent for operations older than that). */
  status?: PublishedStatusView;
  startedAt: string;
  closedAt?: string;
  links: OperationLinks;
}

export interface PublishedStatusView {
  phase: string;
  approvalState: string;
  plan?: { version: number; summary: string; risk: string; stepCount: number };
  progress: Record<'pending' | 'running' | 'succeeded' | 'failed' | 'skipped', number>;
  approval?: { decision: string; by: string; planVersion: number; reason?: string };
  outcome?: string;
  error?: string;
}

export interface PlanView {
  version: number;
  risk: string;
  summary: string;
  steps: { id: string; description: string }[];
}

export interface OperationDetail extends OperationSummary {
  /** With `includePlan`: the whole plan, each step and the plan's text (they need a worker). */
  plan?: PlanView;
  steps?: { id: string; state: string; detail?: string }[];
  planText?: string;
  /** With `includePlan`: why no plan came (no worker answered). */
  planUnavailable?: string;
  transfers?: { vmid?: number; transferred: string; of: string }[];
  result?: unknown;
  failure?: { type: string; message: string };
}

export interface Started {
  id: string;
  kind: string;
  state: string;
  links: OperationLinks;
  /** Dry runs: the workflow's result ({ outcome: 'dry-run', plan }) and the plan's text. */
  result?: { outcome?: string; plan?: PlanView };
  planText?: string;
}

export interface Decision {
  id: string;
  state: 'decided' | 'accepted';
  decision?: { decision: string; by: string; planVersion: number };
  message?: string;
}

export type Query = Record<string, string | number | boolean | undefined>;

export type ApiClient = ReturnType<typeof createApiClient>;

export function createApiClient(options: ApiClientOptions) {
  const base = options.url.replace(/\/+$/, '');
  const send = options.fetch ?? ((r: Request) => fetch(r));

  async function request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await send(
        new Request(`${base}${path}`, {
          method,
          headers: {
            authorization: `Bearer ${options.token}`,
            accept: 'application/json',
            ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        }),
      );
    } catch (err) {
      throw new ApiRequestError(
        0,
        'unreachable',
        `the API at ${base} is not reachable (${(err as Error).cause ?? (err as Error).message})`,
      );
    }
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      throw new ApiRequestError(
        response.status,
        'bad_response',
        `the API answered ${response.status} with something that is not JSON`,
      );
    }
    if (!response.ok) {
      const error = (
        parsed as { error?: { code?: string; message?: string; details?: { path: string; message: string }[] } }
      )?.error;
      throw new ApiRequestError(
        response.status,
        error?.code ?? 'error',
        error?.message ?? `HTTP ${response.status}`,
        error?.details,
      );
    }
    return parsed as T;
  }

  const query = (q: Query = {}) => {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(q)) if (value !== undefined) params.set(key, String(value));
    const text = params.toString();
    return text ? `?${text}` : '';
  };
  /** Operation ids contain slashes: the API takes them URL-encoded. */
  const op = (id: string) => `/v1/operations/${encodeURIComponent(id)}`;

  return {
    request,
    listOperations: (q: Query = {}) =>
      request<{ operations: OperationSummary[]; nextPageToken?: string }>('GET', `/v1/operations${query(q)}`),
    /** `includePlan` asks the workflow for the whole plan too (planText, steps): that needs a worker. */
    operation: (id: string, options: { includePlan?: boolean } = {}) =>
      request<OperationDetail>('GET', `${op(id)}${options.includePlan ? '?include=plan' : ''}`),
    start: (kind: string, body: Record<string, unknown>) =>
      request<Started>('POST', `/v1/operations/${encodeURIComponent(kind)}`, body),
    approve: (id: string, planVersion: number, reason?: string) =>
      request<Decision>('POST', `${op(id)}/approve`, { planVersion, ...(reason ? { reason } : {}) }),
    reject: (id: string, planVersion: number, reason: string) =>
      request<Decision>('POST', `${op(id)}/reject`, { planVersion, reason }),
    cancel: (id: string, reason?: string) =>
      request<{ id: string; state: string }>('POST', `${op(id)}/cancel`, reason ? { reason } : {}),
    environments: () => request<{ environments: { name: string }[] }>('GET', '/v1/environments'),
    inventory: (q: Query) => request<Record<string, unknown>>('GET', `/v1/inventory${query(q)}`),
    nodeHealth: (q: Query) => request<Record<string, unknown>>('GET', `/v1/nodes/health${query(q)}`),
    storage: (q: Query) => request<Record<string, unknown>>('GET', `/v1/storage${query(q)}`),
    runbooks: () => request<Record<string, unknown>>('GET', '/v1/runbooks'),
    runbook: (name: string) => request<Record<string, unknown>>('GET', `/v1/runbooks/${encodeURIComponent(name)}`),
    drift: (q: Query = {}) => request<Record<string, unknown>>('GET', `/v1/drift${query(q)}`),
    auditVerify: () =>
      request<{ ok: boolean; records?: number; line?: number; problem?: string }>('GET', '/v1/audit/verify'),
  };
}

/** True once an operation can change no more: its workflow has closed. */
export function hasEnded(op: Pick<OperationSummary, 'state'>): boolean {
  return op.state !== 'running';
}

/**
 * The operation once its plan is made — awaiting a decision, applying, or ended — or as it
 * is after `timeoutMs`. A request answers before planning is done; this is what to show.
 */
export async function whenPlanned(
  api: ApiClient,
  id: string,
  options: { timeoutMs: number; sleep?: (ms: number) => Promise<void> },
): Promise<OperationDetail> {
  const sleep = options.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    const op = await api.operation(id);
    if (hasEnded(op) || (op.status && op.status.phase !== 'planning') || Date.now() >= deadline) return op;
    await sleep(500);
  }
}
