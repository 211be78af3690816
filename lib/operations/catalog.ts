/**
 * Every operation the orchestrator can run: its request body (validated at the API edge),
 * the workflow that runs it, and how its workflow ID is formed. The API and the worker
 * both read this list, so adding an operation is one entry here plus its workflow.
 */
import { z } from 'zod';
import type { OperationMeta } from '../../workflows/definitions.js';
import type { EvacuationRequest } from '../planning/evacuation.js';

const vmid = z.number().int().min(100).max(999_999_999);
const nodeName = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9-]*$/, 'must be a PVE node name');

/** Fields every operation request may carry besides its own. */
const common = {
  environment: z.string().min(1),
  dryRun: z.boolean().default(false),
};

export interface OperationKind<S extends z.ZodType = z.ZodType> {
  kind: string;
  /** Exported name of the workflow function in workflows/index.ts. */
  workflowType: string;
  description: string;
  body: S;
  /** Readable, unique workflow ID; `at` is the request time (compact ISO). */
  workflowId: (body: z.infer<S>, at: string) => string;
  /** Nodes the request names, for listing operations by node before a plan exists. */
  nodes?: (body: z.infer<S>) => string[];
}

function defineOperation<S extends z.ZodType>(op: OperationKind<S>): OperationKind<S> {
  return op;
}

export const inventoryOperation = defineOperation({
  kind: 'inventory',
  workflowType: 'inventorySnapshot',
  description: 'Read every node, VM and container of an environment (read-only).',
  body: z.strictObject({ ...common }),
  workflowId: (b, at) => `inventory/${b.environment}/${at}`,
});

export const vmActionOperation = defineOperation({
  kind: 'vm-action',
  workflowType: 'vmAction',
  description: 'Start, stop, shut down, reboot, snapshot, roll back, migrate or delete one VM.',
  body: z.strictObject({
    ...common,
    vmid,
    /** The VM's name as the operator knows it: checked against PVE before anything happens. */
    name: z.string().min(1),
    action: z.enum(['start', 'stop', 'shutdown', 'reboot', 'snapshot', 'rollback', 'migrate', 'delete']),
    snapshot: z.string().regex(/^[a-zA-Z][a-zA-Z0-9_-]{1,39}$/, 'must be a PVE snapshot name').optional(),
    target: nodeName.optional(),
    shutdownTimeoutSeconds: z.number().int().min(1).max(3600).default(120),
    forceStopAfterTimeout: z.boolean().default(false),
  }),
  workflowId: (b, at) => `vm-action/${b.environment}/${b.vmid}/${b.action}/${at}`,
});

export const evacuationOperation = defineOperation({
  kind: 'evacuation',
  workflowType: 'evacuateNode',
  description:
    'Empty a node before maintenance: place its guests on other nodes, approve the plan, migrate in parallel, verify.',
  body: z.strictObject({
    ...common,
    node: nodeName,
    allowTargets: z.array(nodeName).min(1).optional(),
    denyTargets: z.array(nodeName).optional(),
    maxParallel: z.number().int().min(1).max(32).default(4),
    maxParallelPerTarget: z.number().int().min(1).max(16).default(2),
    bwlimitMiBps: z.number().int().min(1).max(1_000_000).optional(),
    includeStopped: z.boolean().default(true),
    includeTemplates: z.boolean().default(false),
    localDisks: z.enum(['migrate', 'leave']).default('migrate'),
    targetStorage: z.string().regex(/^[a-z][a-z0-9\-_.]*[a-z0-9]$/i, 'must be a PVE storage id').optional(),
    containers: z.enum(['restart', 'leave']).default('leave'),
    containerShutdownTimeoutSeconds: z.number().int().min(1).max(3600).default(180),
    onFailure: z.enum(['stop', 'continue']).default('stop'),
    haMaintenance: z.boolean().default(false),
    linkGbps: z.number().positive().max(800).default(10),
  }) satisfies z.ZodType<EvacuationRequest>,
  workflowId: (b, at) => `evacuate/${b.environment}/${b.node}/${at}`,
  nodes: (b) => [b.node],
});

export const operations = [inventoryOperation, vmActionOperation, evacuationOperation] as const satisfies readonly OperationKind[];

export type OperationKindName = (typeof operations)[number]['kind'];

export function findOperation(kind: string): OperationKind | undefined {
  return operations.find((o) => o.kind === kind);
}

/** What a workflow receives: the validated body plus who asked and under which policy. */
export type WorkflowInput<S extends z.ZodType> = z.infer<S> & { meta: OperationMeta };
export type InventoryInput = WorkflowInput<typeof inventoryOperation.body>;
export type VmActionInput = WorkflowInput<typeof vmActionOperation.body>;
export type EvacuationInput = WorkflowInput<typeof evacuationOperation.body>;
