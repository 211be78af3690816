/**
 * Driving an evacuation the way the API does: start the workflow, wait for its plan, approve
 * it as a second person, wait for the result. Shared by the benchmark and the integration tests.
 */
import { signed } from './approvals.js';
import type { Client, WorkflowHandle } from '@temporalio/client';
import type { z } from 'zod';
import { operationInput } from './operation-input.js';
import { evacuationOperation, type EvacuationInput } from '../lib/operations/catalog.js';
import type { OperationStatus } from '../lib/operations/plan.js';
import { approveUpdate, statusQuery } from '../workflows/definitions.js';
import type { evacuation } from '../workflows/evacuation.js';

/** A request body as a client sends it: defaults may be left out. */
export type EvacuationBody = Partial<z.input<typeof evacuationOperation.body>> & { environment: string; node: string };

/** A validated request body, as the API would pass it to the workflow. */
export function evacuationInput(body: EvacuationBody, requester = 'operator'): EvacuationInput {
  return operationInput(evacuationOperation.body, body, requester);
}

export async function startEvacuation(
  client: Client,
  taskQueue: string,
  input: EvacuationInput,
  workflowId = `evacuate/${input.environment}/${input.node}/${Date.now()}`,
): Promise<WorkflowHandle<typeof evacuation>> {
  return client.workflow.start<typeof evacuation>('evacuation', { taskQueue, workflowId, args: [input] });
}

/** Polls the status query until `done` holds (the workflow may still be planning). */
export async function waitForStatus(
  handle: WorkflowHandle,
  done: (s: OperationStatus) => boolean,
  timeoutMs = 60_000,
): Promise<OperationStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const status = await handle.query(statusQuery);
      if (done(status)) return status;
    } catch (err) {
      // The query handler is registered once the first workflow task ran.
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline)
      throw new Error(`workflow ${handle.workflowId} did not reach the expected state in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits for the plan and approves it as `approver` (a high-risk plan needs someone other than the requester). */
export async function approveWhenPlanned(handle: WorkflowHandle, approver = 'approver'): Promise<OperationStatus> {
  const status = await waitForStatus(handle, (s) => s.phase === 'awaiting-approval' || s.phase === 'failed');
  if (status.phase === 'failed') throw new Error(`planning failed: ${status.error}`);
  await handle.executeUpdate(approveUpdate, {
    args: [signed(handle.workflowId, 'approved', { by: approver, planVersion: status.plan!.version })],
  });
  return status;
}
