/**
 * The API's own request and response shapes. Routes validate with the request schemas and
 * type their answers with the response schemas; the OpenAPI document is generated from the
 * same objects. Operation bodies live in lib/operations/catalog.ts.
 */
import { z } from 'zod';
import type { GuestView, NodeView } from '../lib/inventory.js';
import { operations } from '../lib/operations/catalog.js';
import type { PublishedStatus } from '../lib/operations/plan.js';

/** Values that end up inside a Temporal visibility query: plain words only, so no quoting is needed. */
const word = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@:-]{0,127}$/, 'must be a plain word (letters, digits, . _ @ : -)');
/** A whole number in a query string, documented as the integer range it must lie in. */
const wholeNumber = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d{1,10}$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max))
    .meta({ type: 'integer', minimum: min, maximum: max, pattern: undefined });

// ---- errors ----

export const ErrorResponse = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
      correlationId: z.string().optional(),
    }),
  })
  .meta({ id: 'Error' });

// ---- health ----

export const NodeReachabilityStatus = z.enum(['ok', 'unauthorized', 'unreachable']);

export const Liveness = z.object({ status: z.literal('ok') });

export const Readiness = z
  .object({
    status: z.enum(['ready', 'not-ready']),
    temporal: z.object({ status: z.enum(['ok', 'unreachable']), detail: z.string().optional() }),
    environments: z.record(
      z.string(),
      z.object({
        status: z.enum(['ok', 'degraded', 'unavailable']),
        nodes: z.array(z.object({ node: z.string(), status: NodeReachabilityStatus, detail: z.string().optional() })),
      }),
    ),
  })
  .meta({ id: 'Readiness' });

// ---- environments ----

const Range = z.object({ min: z.number().int(), max: z.number().int() });

export const EnvironmentSummary = z
  .object({
    name: z.string(),
    cluster: z.string(),
    nodes: z.array(z.object({ name: z.string(), host: z.string(), port: z.number().int() })),
    vmidRanges: z.object({ templates: Range, vms: Range }),
    defaults: z.record(z.string(), z.unknown()),
    tags: z.record(z.string(), z.array(z.string())),
    naming: z.object({ pattern: z.string() }),
    policy: z.record(z.string(), z.unknown()),
    tls: z.enum(['ca', 'fingerprint', 'insecure']).describe('how the Proxmox API certificate is verified'),
  })
  .meta({ id: 'Environment' });

export const EnvironmentList = z.object({ environments: z.array(EnvironmentSummary) });

// ---- inventory ----

export const InventoryQuery = z.strictObject({
  environment: word,
  state: z.enum(['all', 'running']).default('all'),
  type: z.enum(['qemu', 'lxc']).optional(),
  tag: word.optional(),
  node: word.optional(),
  fresh: z
    .enum(['true', 'false'])
    .optional()
    .describe('true: read PVE now rather than answer from the shared snapshot'),
});

export const GuestSchema = z
  .object({
    vmid: z.number().int(),
    name: z.string(),
    type: z.enum(['qemu', 'lxc']),
    node: z.string(),
    status: z.string().describe('running, stopped, paused, ...'),
    template: z.boolean(),
    tags: z.array(z.string()),
    cores: z.number(),
    memoryBytes: z.number(),
    diskBytes: z.number(),
    uptimeSeconds: z.number(),
    haState: z.string().optional(),
    lock: z.string().optional(),
  })
  .meta({ id: 'Guest' }) satisfies z.ZodType<GuestView>;

export const NodeSchema = z
  .object({
    name: z.string(),
    online: z.boolean(),
    cpuUsage: z.number().describe('fraction of all cores, 0..1'),
    cores: z.number(),
    memoryUsedBytes: z.number(),
    memoryTotalBytes: z.number(),
  })
  .meta({ id: 'Node' }) satisfies z.ZodType<NodeView>;

export const Inventory = z.object({
  environment: z.string(),
  nodes: z.array(NodeSchema),
  guests: z.array(GuestSchema),
});

// ---- operations ----

const kinds = operations.map((o) => o.kind) as [string, ...string[]];

const filterableExecutionStates = [
  'running',
  'completed',
  'failed',
  'cancelled',
  'terminated',
  'timed-out',
  'continued-as-new',
  'paused',
] as const;
export const executionStates = [...filterableExecutionStates, 'unknown'] as const;
// An operation cancelled before its decision has approval state `cancelled`: `state=cancelled` finds it (and every other cancelled one).
export const approvalStates = [
  'planning',
  'pending',
  'approved',
  'auto-approved',
  'not-required',
  'rejected',
  'expired',
  'dry-run',
] as const;

export const OperationIdParams = z.strictObject({
  id: z.string().regex(/^[\x21-\x7e]{1,1000}$/, 'must be an operation id (URL-encode its slashes)'),
});

export const OperationsQuery = z.strictObject({
  kind: z.enum(kinds).optional(),
  environment: word.optional(),
  node: word.optional(),
  state: z
    .enum([...filterableExecutionStates, ...approvalStates])
    .optional()
    .describe('an execution state (running, completed, ...) or an approval state (pending, approved, ...)'),
  requester: word.optional(),
  risk: z.enum(['low', 'medium', 'high']).optional(),
  vmid: wholeNumber(100, 999_999_999).optional(),
  pageSize: wholeNumber(1, 500).default(50).describe('operations per page'),
  pageToken: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,4000}$/, 'must be the nextPageToken of a previous page')
    .optional()
    .describe('the nextPageToken of the previous page; absent for the first page'),
});

export const OperationDetailQuery = z.strictObject({
  include: z.enum(['plan']).optional().describe('plan: add the whole plan, each step and planText (asks a worker)'),
});

const planVersion = z.number().int().min(1).describe('the plan version being decided (GET the operation to see it)');

export const ApproveBody = z.strictObject({
  planVersion,
  reason: z.string().trim().min(1).max(2000).optional(),
});

export const RejectBody = z.strictObject({
  planVersion,
  reason: z.string().trim().min(1, 'a rejection needs a reason').max(2000),
});

export const MaintenanceDecisionParams = OperationIdParams.extend({
  action: z.enum(['resume', 'skip-node', 'abort-and-return']),
});

export const MaintenanceDecisionBody = z.strictObject({
  node: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9-]*$/, 'must be a PVE node name'),
  reason: z.string().trim().min(1).max(2000).optional(),
});

export const NodeDecisionParams = OperationIdParams.extend({
  node: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9-]*$/, 'must be a PVE node name'),
  decision: z.enum(['approve', 'reject']),
});

export const CancelBody = z.strictObject({ reason: z.string().trim().min(1).max(2000).optional() });

export const Links = z.object({ self: z.string(), temporalUi: z.string() });

export const OperationStarted = z
  .object({
    id: z.string(),
    runId: z.string(),
    kind: z.string(),
    state: z.enum(executionStates),
    links: Links,
  })
  .meta({ id: 'OperationStarted' });

export const DryRunResult = OperationStarted.extend({
  result: z.unknown().describe("the workflow's result: { outcome: 'dry-run', plan }"),
  planText: z.string().optional().describe('the plan as a person reads it (the text every door shows)'),
}).meta({ id: 'DryRunResult' });

const StepState = z.enum(['pending', 'running', 'succeeded', 'failed', 'skipped']);

export const PublishedStatusSchema = z
  .object({
    phase: z.enum(['planning', 'awaiting-approval', 'applying', 'completed', 'rejected', 'failed', 'cancelled']),
    approvalState: z.enum([...approvalStates, 'cancelled']),
    plan: z
      .object({
        version: z.number().int(),
        summary: z.string(),
        risk: z.enum(['low', 'medium', 'high']),
        stepCount: z.number().int(),
      })
      .optional()
      .describe('the plan’s headline: approve by its version (include=plan for the whole plan)'),
    progress: z.record(StepState, z.number().int()).describe('steps per state'),
    approval: z
      .object({
        decision: z.enum(['approved', 'rejected']),
        by: z.string(),
        at: z.string(),
        planVersion: z.number().int(),
        reason: z.string().optional(),
      })
      .optional(),
    outcome: z.enum(['completed', 'nothing-to-do', 'rejected', 'dry-run', 'refused', 'failed', 'cancelled']).optional(),
    error: z.string().optional(),
    cancelRequestedAt: z.string().optional(),
    cancelled: z
      .object({
        requestedAt: z.string(),
        done: z.array(z.string()),
        failed: z.array(z.string()),
        notStarted: z.array(z.string()),
      })
      .optional(),
  })
  .describe('what the workflow published as it last changed; every field from the same moment')
  .meta({ id: 'OperationStatus' }) satisfies z.ZodType<PublishedStatus>;

export const OperationSummary = z
  .object({
    id: z.string(),
    runId: z.string(),
    kind: z.string(),
    environment: z.string().optional(),
    requester: z.string().optional(),
    state: z.enum(executionStates),
    approvalState: z.string().optional(),
    risk: z.string().optional(),
    nodes: z.array(z.string()),
    vmids: z.array(z.number()),
    summary: z.string().optional(),
    status: PublishedStatusSchema.optional(),
    startedAt: z.string(),
    closedAt: z.string().optional(),
    links: Links,
  })
  .meta({ id: 'OperationSummary' });

export const OperationList = z
  .object({
    operations: z.array(OperationSummary),
    nextPageToken: z.string().optional().describe('pass as pageToken for the next page; absent on the last page'),
  })
  .meta({ id: 'OperationList' });

export const OperationDetail = OperationSummary.extend({
  plan: z
    .record(z.string(), z.unknown())
    .optional()
    .describe('include=plan: the whole plan (steps, reasons, warnings, details)'),
  steps: z
    .array(
      z.object({
        id: z.string(),
        state: StepState,
        detail: z.string().optional(),
        startedAt: z.string().optional(),
        endedAt: z.string().optional(),
      }),
    )
    .optional()
    .describe('include=plan: each step and how it went'),
  planText: z.string().optional().describe('include=plan: the plan as a person reads it (the text every door shows)'),
  planUnavailable: z
    .string()
    .optional()
    .describe('include=plan: why the status query could not be answered (it needs a worker)'),
  transfers: z
    .array(z.object({ vmid: z.number().int().optional(), transferred: z.string(), of: z.string() }))
    .optional()
    .describe('bytes moved so far by running migrations, as PVE reports them'),
  result: z.unknown().optional().describe('the result, when the operation completed'),
  failure: z.object({ type: z.string(), message: z.string() }).optional(),
}).meta({ id: 'OperationDetail' });

export const Decision = z
  .object({
    id: z.string(),
    state: z
      .enum(['decided', 'accepted'])
      .describe(
        'decided: the workflow validated and recorded it; accepted: sent as a signal, validated when a worker runs',
      ),
    decision: z.record(z.string(), z.unknown()).optional(),
    message: z.string().optional(),
  })
  .meta({ id: 'Decision' });

export const CancelAccepted = z.object({ id: z.string(), state: z.literal('cancel-requested') });

// ---- audit ----

export const AuditQuery = z.strictObject({
  actor: word.optional(),
  action: z
    .string()
    .regex(/^[A-Za-z0-9._-]+\*?$/, 'must be an action such as operation.approved, or a prefix ending in *')
    .optional(),
  operationId: z
    .string()
    .regex(/^[\x21-\x7e]{1,1000}$/, 'must be an operation id')
    .optional(),
  environment: word.optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
  limit: wholeNumber(1, 1000).default(100),
});

export const AuditRecordSchema = z
  .object({
    seq: z.number().int(),
    at: z.string(),
    eventId: z.string().optional(),
    actor: z.string(),
    action: z.string(),
    result: z.string(),
    operationId: z.string().optional(),
    kind: z.string().optional(),
    environment: z.string().optional(),
    detail: z.record(z.string(), z.unknown()).optional(),
    prev: z.string(),
    hash: z.string(),
  })
  .meta({ id: 'AuditRecord' });

export const AuditRecords = z.object({ records: z.array(AuditRecordSchema) });

export const AuditVerificationSchema = z.union([
  z.object({ ok: z.literal(true), records: z.number().int() }),
  z.object({ ok: z.literal(false), line: z.number().int(), problem: z.string() }),
]);
