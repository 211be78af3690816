import { setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { InventorySummary } from '../activities/inventory.js';
import type { InventoryInput } from '../lib/operations/catalog.js';
import type { OperationStatus } from '../lib/operations/plan.js';
import { statusQuery } from './definitions.js';
import { publishStatus } from './operation.js';
import { PmApprovalState, PmEnvironment, PmOperationKind, PmRequester } from './search-attributes.js';
import { reads } from './activity-presets.js';

const { summarizeInventory } = reads({ startToCloseTimeout: '1 minute' });

/** Read-only: what runs where in one environment. Nothing to approve. */
export async function inventory(input: InventoryInput): Promise<InventorySummary> {
  const status: OperationStatus = {
    phase: 'applying',
    requester: input.meta.requester,
    environment: input.environment,
    dryRun: input.dryRun,
    approvalState: 'not-required',
    steps: [{ id: 'read-inventory', state: 'running' }],
    ignoredApprovals: [],
  };
  setHandler(statusQuery, () => status);
  upsertSearchAttributes([
    { key: PmOperationKind, value: 'inventory' },
    { key: PmEnvironment, value: input.environment },
    { key: PmRequester, value: input.meta.requester },
    // A read changes nothing: no approval is asked for (the API starts every operation at 'planning').
    { key: PmApprovalState, value: 'not-required' },
  ]);
  publishStatus(status);

  const summary = await summarizeInventory(input.environment);
  status.steps = [{ id: 'read-inventory', state: 'succeeded' }];
  status.phase = 'completed';
  status.outcome = 'completed';
  publishStatus(status);
  return summary;
}
