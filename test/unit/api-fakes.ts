/**
 * Fakes for unit tests of the API's routing, identity and validation: a Temporal client
 * implementing only what the routes call, a read-only Proxmox, and a configuration with one
 * token per role. Behaviour against the real Temporal server is tested in
 * test/integration/api-operations.test.ts.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type Client,
} from '@temporalio/client';
import { status as grpcStatus } from '@grpc/grpc-js';
import {
  ApplicationFailure,
  defaultPayloadConverter,
  mapToPayloads,
  RetryState,
  TypedSearchAttributes,
  type SearchAttributePair,
} from '@temporalio/common';
import { encodeUnifiedSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes.js';
import { msToTs } from '@temporalio/common/lib/time.js';
import { temporal } from '@temporalio/proto';
import { tokenHash } from '../../api/auth.js';
import { createApp } from '../../api/app.js';
import type { ApiDeps, ReadOnlyProxmox } from '../../api/deps.js';
import { createAuditLog, type AuditLog } from '../../lib/audit/log.js';
import { AppConfig } from '../../lib/config/schema.js';
import type { ApprovalRequest, OperationStatus } from '../../lib/operations/plan.js';
import { PmEnvironment, PmOperationKind, PmRequester } from '../../workflows/search-attributes.js';

/** Bearer tokens by name; the configuration holds only their hashes. */
export const tokens = {
  viewer: 'tok-viewer-0f3b8c2a9d',
  operator: 'tok-operator-7e1d4a6b2c',
  approver: 'tok-approver-5c9e2f8a1b',
  admin: 'tok-admin-3a7d1e9c4f',
  homeAdmin: 'tok-home-admin-8b2f6d0e3a',
  agent: 'tok-agent-5c1e9a7b3d',
} as const;
export type TokenName = keyof typeof tokens;

/** The key the API under test signs approval decisions with (tests check the signature with it). */
export const signingKey = (process.env.PM_TEST_APPROVAL_SIGNING_KEY ??= 'unit-test-approval-signing-key');

export function testConfig(overrides: Record<string, unknown> = {}): AppConfig {
  const env = (name: string, nodes: string[]) => ({
    cluster: { name, nodes: nodes.map((n, i) => ({ name: n, host: `10.0.${name.length}.${i + 1}` })) },
    credentials: { token: { env: `PM_TEST_${name.toUpperCase()}_TOKEN` } },
    tls: { fingerprint: Array.from({ length: 32 }, () => 'AB').join(':') },
  });
  return AppConfig.parse({
    environments: { home: env('home', ['pve1', 'pve2']), cloud: env('cloud', ['c1']) },
    approvals: { signing_key: { env: 'PM_TEST_APPROVAL_SIGNING_KEY' } },
    api: {
      max_body_bytes: 4096,
      tokens: [
        { actor: 'vera', sha256: tokenHash(tokens.viewer), roles: ['viewer'] },
        { actor: 'otto', sha256: tokenHash(tokens.operator), roles: ['operator'] },
        { actor: 'anna', sha256: tokenHash(tokens.approver), roles: ['approver'] },
        { actor: 'root', sha256: tokenHash(tokens.admin), roles: ['admin'] },
        { actor: 'hugo', sha256: tokenHash(tokens.homeAdmin), roles: ['admin'], environments: ['home'] },
        { actor: 'robot', sha256: tokenHash(tokens.agent), roles: ['agent'] },
      ],
    },
    ...overrides,
  });
}

export interface FakeWorkflow {
  workflowId: string;
  runId: string;
  type: string;
  args: unknown[];
  attributes: SearchAttributePair[];
  status: 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
  startTime: Date;
  closeTime?: Date;
  memo?: Record<string, unknown>;
  result?: unknown;
  failure?: Error;
  /** What the status query answers, or throws. */
  query?: () => OperationStatus;
  /** What an approve/reject update does: return the decision, or throw as Temporal would. */
  update?: (name: string, request: ApprovalRequest) => unknown;
  signals: { name: string; args: unknown[] }[];
  cancelRequested: boolean;
  /** Everything the API passed to `workflow.start`. */
  startOptions?: Record<string, unknown>;
}

export interface FakeTemporal {
  client: Client;
  workflows: Map<string, FakeWorkflow>;
  /** Visibility queries the API sent. */
  listQueries: string[];
  reachable: boolean;
  /** Called for each started workflow: set its result, failure, query or update behaviour here. */
  onStart?: (workflow: FakeWorkflow) => void;
  /** Thrown by `start` instead of starting, when set. */
  startError?: Error;
  /** Adds an operation as the API would have started it. */
  seed(
    workflow: Partial<FakeWorkflow> & { workflowId: string; environment: string; kind?: string; requester?: string },
  ): FakeWorkflow;
}

export const refusal = (message: string) =>
  new WorkflowUpdateFailedError('Workflow Update failed', ApplicationFailure.create({ message }));
export const updateTimeout = () =>
  new WorkflowUpdateRPCTimeoutOrCancelledError('Workflow update call timeout or cancelled');
export const workflowFailure = (message: string) =>
  new WorkflowFailedError(
    'Workflow execution failed',
    ApplicationFailure.create({ message }),
    RetryState.NON_RETRYABLE_FAILURE,
  );

let runCounter = 0;

export function fakeTemporal(): FakeTemporal {
  const workflows = new Map<string, FakeWorkflow>();
  const listQueries: string[] = [];
  const fake: FakeTemporal = {
    workflows,
    listQueries,
    reachable: true,
    client: undefined as unknown as Client,
    seed(w) {
      const { environment, kind = 'vm-action', requester = 'otto', ...rest } = w;
      const workflow: FakeWorkflow = {
        runId: `run-${++runCounter}`,
        type: 'vmAction',
        args: [],
        attributes: [],
        status: 'RUNNING',
        startTime: new Date('2025-11-22T04:00:00Z'),
        signals: [],
        cancelRequested: false,
        ...rest,
      };
      workflow.attributes = [
        { key: PmOperationKind, value: kind },
        { key: PmEnvironment, value: environment },
        { key: PmRequester, value: requester },
        ...workflow.attributes,
      ];
      workflows.set(workflow.workflowId, workflow);
      return workflow;
    },
  };

  const info = (w: FakeWorkflow) => ({
    type: w.type,
    workflowId: w.workflowId,
    runId: w.runId,
    taskQueue: 'test',
    status: { code: 0, name: w.status },
    historyLength: 1,
    startTime: w.startTime,
    closeTime: w.closeTime,
    memo: w.memo,
    searchAttributes: {},
    typedSearchAttributes: new TypedSearchAttributes(w.attributes),
    raw: {},
  });

  const rawStatus = temporal.api.enums.v1.WorkflowExecutionStatus;
  const statusCode = {
    RUNNING: rawStatus.WORKFLOW_EXECUTION_STATUS_RUNNING,
    COMPLETED: rawStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED,
    FAILED: rawStatus.WORKFLOW_EXECUTION_STATUS_FAILED,
    CANCELLED: rawStatus.WORKFLOW_EXECUTION_STATUS_CANCELED,
  };
  /** A visibility row as the server sends it (payload-encoded memo and search attributes). */
  const raw = (w: FakeWorkflow) => ({
    execution: { workflowId: w.workflowId, runId: w.runId },
    type: { name: w.type },
    taskQueue: 'test',
    status: statusCode[w.status],
    historyLength: { toNumber: () => 1 }, // a protobuf Long
    startTime: msToTs(w.startTime.getTime()),
    ...(w.closeTime ? { closeTime: msToTs(w.closeTime.getTime()) } : {}),
    memo: { fields: w.memo ? mapToPayloads(defaultPayloadConverter, w.memo) : {} },
    searchAttributes: { indexedFields: encodeUnifiedSearchAttributes(undefined, w.attributes) },
  });

  const find = (id: string) => {
    const w = workflows.get(id);
    if (!w) throw new WorkflowNotFoundError(`workflow not found for ID: ${id}`, id, undefined);
    return w;
  };

  const handle = (id: string) => ({
    workflowId: id,
    async describe() {
      return info(find(id));
    },
    async query() {
      const w = find(id);
      if (!w.query) throw new Error('no worker');
      return w.query();
    },
    async result() {
      const w = find(id);
      if (w.failure) throw w.failure;
      return w.result;
    },
    async executeUpdate(def: { name: string }, options: { args: [ApprovalRequest] }) {
      const w = find(id);
      if (!w.update) throw updateTimeout();
      return w.update(def.name, options.args[0]);
    },
    async signal(def: { name: string }, ...args: unknown[]) {
      find(id).signals.push({ name: def.name, args });
    },
    async cancel() {
      find(id).cancelRequested = true;
    },
  });

  fake.client = {
    workflow: {
      async start(
        type: string,
        options: { workflowId: string; args: unknown[]; typedSearchAttributes: SearchAttributePair[] },
      ) {
        if (fake.startError) throw fake.startError;
        if (workflows.has(options.workflowId)) {
          throw new WorkflowExecutionAlreadyStartedError(
            'Workflow execution already started',
            options.workflowId,
            type,
          );
        }
        const w: FakeWorkflow = {
          workflowId: options.workflowId,
          runId: `run-${++runCounter}`,
          type,
          args: options.args,
          attributes: options.typedSearchAttributes,
          status: 'RUNNING',
          startTime: new Date(),
          signals: [],
          cancelRequested: false,
          startOptions: options,
        };
        workflows.set(w.workflowId, w);
        fake.onStart?.(w);
        return { ...handle(w.workflowId), firstExecutionRunId: w.runId };
      },
      getHandle: handle,
    },
    workflowService: {
      /** Every workflow, whatever the query (tests read `listQueries`); the page token is the next row's index. */
      async listWorkflowExecutions({
        query,
        pageSize,
        nextPageToken,
      }: {
        query: string;
        pageSize: number;
        nextPageToken?: Uint8Array;
      }) {
        listQueries.push(query);
        const from = nextPageToken ? Number(Buffer.from(nextPageToken).toString()) : 0;
        if (!Number.isInteger(from))
          throw Object.assign(new Error('invalid page token'), {
            code: grpcStatus.INVALID_ARGUMENT,
            details: '',
            metadata: {},
          });
        const rows = [...workflows.values()].slice(from, from + pageSize);
        const next = from + pageSize < workflows.size ? Buffer.from(String(from + pageSize)) : Buffer.alloc(0);
        return { executions: rows.map(raw), nextPageToken: next };
      },
      async getSystemInfo() {
        if (!fake.reachable) throw new Error('unavailable');
        return {};
      },
    },
    withDeadline: <T>(_deadline: unknown, fn: () => Promise<T>) => fn(),
    withAbortSignal: <T>(_signal: unknown, fn: () => Promise<T>) => fn(),
  } as unknown as Client;
  return fake;
}

const guest = (vmid: number, name: string, type: 'qemu' | 'lxc', node: string, status: string, tags: string[]) => ({
  vmid,
  name,
  type,
  node,
  status,
  tags,
  template: false,
  cores: 2,
  memoryBytes: 2 ** 31,
  diskBytes: 2 ** 35,
  uptimeSeconds: status === 'running' ? 3600 : 0,
});

const node = (name: string) => ({
  name,
  online: true,
  cpuUsage: 0.1,
  cores: 16,
  memoryUsedBytes: 2 ** 33,
  memoryTotalBytes: 2 ** 36,
});

export function fakeProxmox(): ReadOnlyProxmox {
  return {
    async client() {
      throw new Error('unit tests have no Proxmox client: node health and storage routes are tested on the simulator');
    },
    async inventory(environment) {
      if (environment !== 'home') return { nodes: [node('c1')], guests: [] };
      return {
        nodes: [node('pve1'), node('pve2')],
        guests: [
          guest(1001, 'web-1', 'qemu', 'pve1', 'running', ['web']),
          guest(1002, 'db-1', 'qemu', 'pve2', 'stopped', ['db']),
          guest(2001, 'dns', 'lxc', 'pve1', 'running', ['infra', 'web']),
        ],
      };
    },
    async ping(environment) {
      return environment === 'home'
        ? [
            { node: 'pve1', status: 'ok' },
            { node: 'pve2', status: 'unauthorized' },
          ]
        : [{ node: 'c1', status: 'ok' }];
    },
  };
}

/** A response whose JSON tests read freely. */
export type TestResponse = Omit<Response, 'json'> & { json(): Promise<any> };

export interface TestApi {
  app: ReturnType<typeof createApp>;
  temporal: FakeTemporal;
  audit: AuditLog;
  logs: string[];
  config: AppConfig;
  /** `app.request` with the named token (none when omitted). */
  call(
    method: string,
    path: string,
    options?: {
      token?: TokenName | string;
      body?: unknown;
      raw?: string | ReadableStream<Uint8Array>;
      headers?: Record<string, string>;
    },
  ): Promise<TestResponse>;
}

export function testApi(overrides: Partial<ApiDeps> = {}): TestApi {
  const temporal = fakeTemporal();
  const config = overrides.config ?? testConfig();
  const audit =
    overrides.audit ?? createAuditLog(join(mkdtempSync(join(tmpdir(), 'pm-api-')), 'audit.log'), { fsync: false });
  const logs: string[] = [];
  const app = createApp({
    config,
    temporal: { client: temporal.client, taskQueue: 'test', uiUrl: 'http://ui.test', namespace: 'default' },
    audit,
    proxmox: fakeProxmox(),
    now: () => new Date('2025-11-22T04:27:13.579Z'),
    log: (line) => logs.push(line),
    ...overrides,
  });
  return {
    app,
    temporal,
    audit,
    logs,
    config,
    call(method, path, options = {}) {
      const headers: Record<string, string> = { ...options.headers };
      if (options.token) headers.authorization = `Bearer ${tokens[options.token as TokenName] ?? options.token}`;
      let body: string | ReadableStream<Uint8Array> | undefined = options.raw;
      if (options.body !== undefined) {
        body = JSON.stringify(options.body);
        headers['content-type'] ??= 'application/json';
      }
      return Promise.resolve(app.request(path, { method, headers, body })) as Promise<TestResponse>;
    },
  };
}

/** A valid request body per operation kind (api-validation.test.ts fails for a kind without one). */
export const validBodies: Record<string, Record<string, unknown>> = {
  inventory: { environment: 'home' },
  'vm-action': { environment: 'home', vmid: 1001, name: 'web-1', action: 'reboot' },
  evacuation: { environment: 'home', node: 'pve1' },
  'vm-create': { environment: 'home', service: 'web' },
  'vm-clone': { environment: 'home', sourceVmid: 9000, sourceName: 'tpl-debian', service: 'web' },
  'vm-resize': { environment: 'home', vmid: 1001, name: 'web-1', cores: 4 },
  'bulk-action': { environment: 'home', tags: 'web & !prod', action: 'reboot' },
  'lxc-patch': { environment: 'home' },
  'iso-import': {
    environment: 'home',
    node: 'pve1',
    storage: 'local',
    url: 'https://example.org/alpine.iso',
    filename: 'alpine.iso',
    checksum: 'a'.repeat(64),
  },
  'storage-cleanup': { environment: 'home' },
  'create-stateful-vm': { environment: 'home', service: 'db' },
  'runbook-run': { environment: 'home', runbook: 'debian-vm', parameters: { cores: 2 } },
  'runbook-ingest': {
    environment: 'home',
    markdown:
      '---\nname: hello\ndescription: Says hello on a node\nimage_type: none\nrequires: [ssh]\nparameters:\n  node: { type: node, required: true, description: where }\n' +
      "steps:\n  - id: hello\n    description: Say hello\n    ssh: { node: '{{node}}', command: echo hello }\n---\n# Hello\n",
  },
  'template-build': { environment: 'home', runbook: 'debian-template', parameters: { node: 'pve1' } },
  'cluster-up': { environment: 'home', profile: 'lab' },
  'cluster-down': { environment: 'home', cluster: 'lab' },
  reconcile: { environment: 'home', manifests: 'manifests' },
  'rolling-maintenance': { environment: 'home' },
  backup: { environment: 'home', vmid: 1001, storage: 'nfs' },
  restore: { environment: 'home', volume: 'nfs:backup/vzdump-qemu-1001-2026_12_06-07_00_00.vma.zst', target: 'new' },
  'backup-prune': { environment: 'home', storage: 'nfs', keepLast: 3 },
  'restore-drill': { environment: 'home', vmid: 1001 },
};

/** Decoded path of an operation id, as links.self shows it. */
export const operationPath = (id: string, suffix = '') => `/v1/operations/${encodeURIComponent(id)}${suffix}`;
