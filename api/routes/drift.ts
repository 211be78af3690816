/**
 * Drift: what the drift schedule found between each environment and its manifest (what
 * differs, since when), and turning a report into a reconcile operation — which plans afresh
 * and goes through approval like any other.
 *
 * Mounted by listing `...driftRoutes(s)` with the other routers in api/app.ts.
 */
import { z } from 'zod';
import { durationMs } from '../../lib/config/duration.js';
import { createDriftStore, type DriftStore } from '../../lib/manifest/drift-store.js';
import { driftScheduleId } from '../../lib/manifest/schedule.js';
import { manifestSettings } from '../../lib/manifest/settings.js';
import { reconcileOperation } from '../../lib/operations/catalog.js';
import type { OperationMeta } from '../../lib/operations/plan.js';
import { PmApprovalState, PmEnvironment, PmOperationKind, PmRequester } from '../../workflows/search-attributes.js';
import type { DetectDriftInput } from '../../lib/manifest/drift.js';
import type { DriftOrigin } from '../../workflows/reconcile.js';
import { autoApprovable, inScope } from '../auth.js';
import { requireEnvironment } from '../access.js';
import type { Services } from '../deps.js';
import { ApiError } from '../errors.js';
import { compactIso, links } from '../temporal-operations.js';
import { noteAudit, type Route } from '../route.js';
import { ErrorResponse, OperationStarted } from '../schemas.js';
import { parseBody, parseParams, parseQuery } from '../validation.js';

const environmentName = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be an environment name')
  .meta({ 'x-environment': true });

const DriftIdParams = z.strictObject({ id: environmentName });
const DriftQuery = z.strictObject({ environment: environmentName.optional() });
const DriftApplyBody = z.strictObject({
  /** Guests changed at once. */
  maxParallel: z.number().int().min(1).max(32).default(4),
});

const DriftReportSchema = z
  .object({
    id: z.string().describe('the environment: one current report each'),
    environment: z.string(),
    manifests: z.string(),
    checkedAt: z.string(),
    state: z.enum(['in-sync', 'drifted', 'invalid']),
    manifestDigest: z.string().optional(),
    items: z.array(
      z.object({
        key: z.string(),
        action: z.enum(['create', 'update', 'replace', 'delete']),
        vmid: z.number(),
        name: z.string(),
        node: z.string(),
        risk: z.enum(['low', 'medium', 'high']),
        since: z.string(),
        fields: z.array(z.object({ field: z.string(), expected: z.string(), actual: z.string(), since: z.string() })),
      }),
    ),
    warnings: z.array(z.string()),
    problems: z.array(z.string()).describe('why the manifest could not be planned (state invalid)'),
    text: z.string().describe('the plan that would close the drift, as terraform plan prints one'),
    lastInSyncAt: z.string().optional(),
    workflowId: z.string().optional(),
  })
  .meta({ id: 'DriftReport' });
const DriftReportList = z.object({ reports: z.array(DriftReportSchema) }).meta({ id: 'DriftReportList' });
const DriftCheckStarted = z
  .object({
    id: z.string().describe('workflow ID of the check (detectDrift)'),
    runId: z.string(),
    report: z.string().describe('where its report appears once the check ends'),
  })
  .meta({ id: 'DriftCheckStarted' });

const errors = {
  400: { description: 'invalid request; `details` names each field', schema: ErrorResponse },
  401: { description: 'no valid bearer token', schema: ErrorResponse },
  403: { description: 'the token’s roles or environments do not allow this', schema: ErrorResponse },
} as const;

export function driftRoutes(
  s: Services,
  store: DriftStore = createDriftStore(manifestSettings(s.config).driftDir),
): Route[] {
  const { client, taskQueue } = s.temporal;

  const load = async (id: string) => {
    const report = await store.read(id);
    if (!report)
      throw new ApiError(404, 'not_found', `no drift report for environment '${id}' (has the drift schedule run?)`);
    return report;
  };

  return [
    {
      method: 'GET',
      path: '/v1/drift',
      tag: 'drift',
      summary: 'The latest drift report of each environment',
      description:
        'Written by the drift schedule (detectDrift): for each guest that differs from the manifest, what differs and since when.',
      access: 'read',
      query: DriftQuery,
      responses: { 200: { description: 'reports', schema: DriftReportList }, ...errors },
      handler: async (c) => {
        const query = parseQuery(c, DriftQuery);
        if (query.environment !== undefined) requireEnvironment(c, s.config, query.environment);
        const identity = c.get('identity');
        const reports = (await store.list()).filter(
          (r) =>
            r.environment in s.config.environments &&
            inScope(identity, r.environment) &&
            (query.environment === undefined || r.environment === query.environment),
        );
        return c.json({ reports } satisfies z.infer<typeof DriftReportList>);
      },
    },
    {
      method: 'GET',
      path: '/v1/drift/{id}',
      tag: 'drift',
      summary: 'One environment’s drift report',
      access: 'read',
      params: DriftIdParams,
      responses: {
        200: { description: 'the report', schema: DriftReportSchema },
        ...errors,
        404: { description: 'no report yet', schema: ErrorResponse },
      },
      handler: async (c) => {
        const { id } = parseParams(c, DriftIdParams);
        requireEnvironment(c, s.config, id, 'id');
        return c.json((await load(id)) satisfies z.infer<typeof DriftReportSchema>);
      },
    },
    {
      method: 'POST',
      path: '/v1/drift/{id}/check',
      tag: 'drift',
      summary: 'Check an environment for drift now, without waiting for the schedule',
      description:
        'Runs the drift check the schedule runs (plans against the manifest, never applies), whether or not ' +
        '`manifests.drift_interval` turns the schedule on. Its report replaces the environment’s report at `report`.',
      access: 'start',
      params: DriftIdParams,
      audit: 'api.drift.check',
      responses: {
        202: { description: 'started; the report follows within seconds', schema: DriftCheckStarted },
        ...errors,
      },
      handler: async (c) => {
        const { id } = parseParams(c, DriftIdParams);
        noteAudit(c, { environment: id });
        requireEnvironment(c, s.config, id, 'id');
        const workflowId = `${driftScheduleId(id)}/check/${compactIso(s.now())}`;
        const input: DetectDriftInput = { environment: id };
        const handle = await client.workflow.start('detectDrift', {
          taskQueue,
          workflowId,
          args: [input],
          staticSummary: `drift check of ${id} asked for by ${c.get('identity').actor}`,
        });
        noteAudit(c, { operationId: workflowId, result: 'started' });
        const started: z.infer<typeof DriftCheckStarted> = {
          id: workflowId,
          runId: handle.firstExecutionRunId,
          report: `/v1/drift/${id}`,
        };
        return c.json(started, 202, { Location: started.report });
      },
    },
    {
      method: 'POST',
      path: '/v1/drift/{id}/apply',
      tag: 'drift',
      summary: 'Close the drift: start a reconcile operation for the report’s environment',
      description:
        'The reconcile plans afresh from the manifest and the cluster as they are now, and waits for approval like any ' +
        'operation (replacements and deletes need a second person). Refused when the report found no drift or an invalid manifest.',
      access: 'start',
      params: DriftIdParams,
      body: { schema: DriftApplyBody, required: false },
      audit: 'api.drift.apply',
      responses: {
        202: { description: 'started; follow links.self', schema: OperationStarted },
        ...errors,
        404: { description: 'no report yet', schema: ErrorResponse },
        409: { description: 'the report found no drift, or the manifest is invalid', schema: ErrorResponse },
      },
      handler: async (c) => {
        const { id } = parseParams(c, DriftIdParams);
        const body = await parseBody(c, DriftApplyBody, { optional: true });
        noteAudit(c, { kind: reconcileOperation.kind, environment: id });
        requireEnvironment(c, s.config, id, 'id');
        const report = await load(id);
        if (report.state === 'in-sync') {
          throw new ApiError(
            409,
            'no_drift',
            `environment '${id}' matched its manifest when last checked (${report.checkedAt}); nothing to apply`,
          );
        }
        if (report.state === 'invalid') {
          throw new ApiError(
            409,
            'manifest_invalid',
            `the manifest could not be planned when last checked (${report.checkedAt}); fix it first`,
            report.problems.map((message) => ({ path: 'manifest', message })),
          );
        }
        const requester = c.get('identity').actor;
        const request = reconcileOperation.body.parse({ environment: id, maxParallel: body.maxParallel });
        const workflowId = reconcileOperation.workflowId(request, compactIso(s.now()));
        const fromDrift: DriftOrigin = { reportId: report.id, checkedAt: report.checkedAt };
        noteAudit(c, { operationId: workflowId, detail: { fromDrift, drifted: report.items.length } });
        const meta: OperationMeta = {
          requester,
          environment: id,
          dryRun: false,
          approvalTimeoutMs: durationMs(s.config.approvals.timeout),
          autoApprove: autoApprovable(c.get('identity'), s.config.approvals.auto_approve),
        };
        const handle = await client.workflow.start(reconcileOperation.workflowType, {
          taskQueue,
          workflowId,
          // The manifest folder the report was made from, not a caller's choice.
          args: [{ ...request, manifests: report.manifests, meta, fromDrift }],
          typedSearchAttributes: [
            { key: PmOperationKind, value: reconcileOperation.kind },
            { key: PmEnvironment, value: id },
            { key: PmRequester, value: requester },
            { key: PmApprovalState, value: 'planning' },
          ],
          staticSummary: `reconcile ${id} to close the drift found at ${report.checkedAt}, requested by ${requester}`,
        });
        noteAudit(c, { result: 'started' });
        const started: z.infer<typeof OperationStarted> = {
          id: workflowId,
          runId: handle.firstExecutionRunId,
          kind: reconcileOperation.kind,
          state: 'running',
          links: links(s, workflowId),
        };
        return c.json(started, 202, { Location: started.links.self });
      },
    },
  ];
}
