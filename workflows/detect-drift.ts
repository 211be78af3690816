/**
 * Drift detection, run by a Temporal Schedule (lib/manifest/schedule.ts): plan a reconcile of
 * the environment against its manifest — and never apply it. What the plan would change is
 * the drift; the report (what differs, since when) goes to the drift store, where the API
 * lists it and can turn it into a reconcile operation that goes through approval.
 */
import { ActivityFailure, ApplicationFailure, workflowInfo } from '@temporalio/workflow';
import type { DetectDriftInput, DriftReport } from '../lib/manifest/drift.js';
import { Failure } from '../lib/operations/failures.js';
import { reads, records } from './activity-presets.js';

const planning = reads({ startToCloseTimeout: '5 minutes', maximumAttempts: 3 });

const recording = records();

export async function detectDrift(input: DetectDriftInput): Promise<DriftReport> {
  const { environment } = input;
  const run = { environment, checkedAt: new Date(Date.now()).toISOString(), workflowId: workflowInfo().workflowId };
  try {
    const plan = await planning.planReconcile({
      environment,
      maxParallel: 1,
      ...(input.manifests ? { manifests: input.manifests } : {}),
    });
    return await recording.recordDrift({
      run: { ...run, manifests: plan.details!.manifests },
      plan: { ...plan.details!, warnings: plan.warnings },
    });
  } catch (err) {
    const failure = err instanceof ActivityFailure && err.cause instanceof ApplicationFailure ? err.cause : undefined;
    if (failure?.type !== Failure.ManifestInvalid) throw err;
    // An invalid manifest is a finding too: recorded, so the API shows why drift is unknown.
    const problems = Array.isArray(failure.details?.[0]) ? (failure.details[0] as string[]) : [failure.message];
    return recording.recordDrift({ run: { ...run, manifests: input.manifests ?? '' }, problems });
  }
}
