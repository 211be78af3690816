/**
 * A fleet diff as an operation plan: the steps an approver reads (each with the exact PVE
 * parameters it sends), the risk and why, and — as details — the structured diff and its
 * `terraform plan`-style text, so the API can return both.
 */
import type { PlanDraft } from '../operations/plan.js';
import { maxRisk, type FleetDiff, type GuestChange } from './diff/index.js';
import type { Fleet } from './load.js';
import { countChanges, renderPlan, summarizeDiff } from './render.js';

export interface ReconcileDetails {
  environment: string;
  /** The manifest folder the plan was made from. */
  manifests: string;
  manifestDigest: string;
  files: Fleet['files'];
  maxParallel: number;
  changes: GuestChange[];
  unchanged: FleetDiff['unchanged'];
  counts: Record<GuestChange['action'], number>;
  /** The plan as `terraform plan` would print it. */
  text: string;
}

const STEP_MS = 15_000;

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function reconcilePlan(
  diff: FleetDiff,
  fleet: Fleet,
  opts: { manifests: string; maxParallel: number },
): PlanDraft<ReconcileDetails> {
  const { changes } = diff;
  const counts = countChanges(diff);
  const steps = changes.flatMap((c) => c.steps);

  // Every destructive change is named; the rest are counted.
  const reasons = [
    ...changes.filter((c) => c.risk === 'high').flatMap((c) => c.reasons),
    ...(counts.create ? [`creates ${plural(counts.create, 'guest')}, allocating memory and disks`] : []),
    ...changes.filter((c) => c.action === 'update' && c.risk === 'medium').flatMap((c) => c.reasons),
    ...(changes.some((c) => c.action === 'update' && c.risk === 'low')
      ? [
          `${plural(changes.filter((c) => c.action === 'update' && c.risk === 'low').length, 'guest')}: tags, description, onboot or power-on only`,
        ]
      : []),
  ];
  const waves = new Set(changes.map((c) => c.wave)).size;
  return {
    summary: `reconcile ${diff.environment} with manifest ${diff.manifestDigest.slice(0, 12)}: ${changes.length ? summarizeDiff(diff) : 'no changes'}`,
    risk: maxRisk(changes.map((c) => c.risk)),
    reasons: reasons.length ? reasons : ['the cluster matches the manifest: nothing to do'],
    steps,
    warnings: diff.warnings,
    nodes: [
      ...new Set(
        changes.flatMap((c) => [
          c.node,
          ...(c.replacement ? [c.replacement.node] : []),
          ...c.steps.flatMap((s) => (s.target ? [s.target] : [])),
        ]),
      ),
    ].sort(),
    vmids: [...new Set(changes.flatMap((c) => [c.vmid, ...(c.replacement ? [c.replacement.vmid] : [])]))].sort(
      (a, b) => a - b,
    ),
    estimatedDurationMs:
      Math.round((steps.length * STEP_MS) / Math.max(1, Math.min(opts.maxParallel, changes.length || 1))) +
      waves * STEP_MS,
    details: {
      environment: diff.environment,
      manifests: opts.manifests,
      manifestDigest: diff.manifestDigest,
      files: fleet.files,
      maxParallel: opts.maxParallel,
      changes,
      unchanged: diff.unchanged,
      counts,
      text: renderPlan(diff),
    },
  };
}
