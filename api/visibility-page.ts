/**
 * One page of a visibility query, resumed from Temporal's page token: the one place the API
 * reaches past the SDK's public surface, and why.
 *
 * `client.workflow.list()` (@temporalio/client 1.24) walks every page itself and cannot start
 * from a token, but the API answers one page per request and hands the token to its caller.
 * So the page is read with the raw `listWorkflowExecutions` call (public: `workflowService`),
 * and its rows are decoded into `WorkflowExecutionInfo` by the SDK's own decoder, the one
 * `list()` uses — `executionInfoFromRaw`, with the loaded default data converter — which the
 * package does not export from its root. Decoding by hand (search-attribute payload types,
 * status names, memo) would copy that code; when the SDK exports a paged list or the decoder,
 * this module goes.
 */
import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { executionInfoFromRaw } from '@temporalio/client/lib/helpers.js';
import { loadDataConverter } from '@temporalio/common/lib/internal-non-workflow/index.js';

/** The project uses Temporal's default data converter (no codec), so rows decode with it. */
const dataConverter = loadDataConverter();

export interface VisibilityPage {
  executions: WorkflowExecutionInfo[];
  /** Absent on the last page. */
  nextPageToken?: Uint8Array;
}

export async function visibilityPage(
  client: Client,
  request: { namespace: string; query: string; pageSize: number; pageToken?: Uint8Array },
): Promise<VisibilityPage> {
  const response = await client.workflowService.listWorkflowExecutions({
    namespace: request.namespace,
    query: request.query,
    pageSize: request.pageSize,
    nextPageToken: request.pageToken,
  });
  const executions = await Promise.all(
    response.executions.map((raw) => executionInfoFromRaw(raw, dataConverter, raw, request.namespace)),
  );
  const next = response.nextPageToken;
  return { executions, ...(next && next.length > 0 ? { nextPageToken: next } : {}) };
}
