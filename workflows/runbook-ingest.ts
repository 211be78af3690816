/**
 * A runbook submitted as markdown: parsed, validated and adapted to the environment's
 * conventions (the plan shows each adaptation and the diff), saved into runbooks/ only
 * once approved. Adding one is medium risk; replacing one is high risk.
 */
import type { IngestDetails, RunbookActivities } from '../activities/runbook.js';
import type { RunbookIngestInput } from '../lib/operations/catalog.js';
import { runOperation } from './operation.js';
import { reads, records } from './activity-presets.js';

const planning = reads({ startToCloseTimeout: '1 minute' });

/** Saving is idempotent (the same text twice is a no-op) and refuses a file changed since review. */
const saving = records({ maximumAttempts: 5 });

export async function runbookIngest(input: RunbookIngestInput) {
  return runOperation<IngestDetails, Awaited<ReturnType<RunbookActivities['saveIngestedRunbook']>>>(
    'runbook-ingest',
    input.meta,
    {
      plan: () => planning.planRunbookIngest(input),
      apply: (plan, op) => op.step('save', () => saving.saveIngestedRunbook(plan.details!)),
    },
  );
}
