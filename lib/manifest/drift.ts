/**
 * Drift: what differs between the cluster and its manifest, field by field, and since when.
 * A report is a plan that is never applied, compared with the previous report so each
 * difference keeps the time it was first seen until it goes away.
 */
import type { ChangeAction, FleetDiff, GuestChange } from './diff/index.js';
import type { Risk } from '../operations/plan.js';

export interface DriftField {
  field: string;
  /** What the manifest says. */
  expected: string;
  /** What PVE has. */
  actual: string;
  /** When this difference was first seen (ISO time). */
  since: string;
}

export interface DriftItem {
  key: string;
  action: ChangeAction;
  vmid: number;
  name: string;
  node: string;
  risk: Risk;
  fields: DriftField[];
  /** The earliest `since` of its fields. */
  since: string;
}

/** What the drift schedule starts `detectDrift` with (lib/manifest/schedule.ts). */
export interface DetectDriftInput {
  environment: string;
  /** The manifest folder; the configured one when absent. */
  manifests?: string;
}

export interface DriftReport {
  /** The report's id: its environment (one current report each). */
  id: string;
  environment: string;
  manifests: string;
  checkedAt: string;
  /** `invalid`: the manifest cannot be planned (see `problems`); nothing is known about drift. */
  state: 'in-sync' | 'drifted' | 'invalid';
  manifestDigest?: string;
  items: DriftItem[];
  warnings: string[];
  problems: string[];
  /** The plan that would close the drift, as text. */
  text: string;
  /** When the cluster was last seen matching the manifest. */
  lastInSyncAt?: string;
  /** The detection run that made this report. */
  workflowId?: string;
}

/** A change as its differences: a missing guest or a claimed extra one is one `exists` field. */
function fieldsOf(change: GuestChange): Omit<DriftField, 'since'>[] {
  switch (change.action) {
    case 'create':
      return [{ field: 'exists', expected: 'yes', actual: 'no' }];
    case 'delete':
      return [{ field: 'exists', expected: `no (${change.claimedBy})`, actual: 'yes' }];
    case 'replace':
      return change.fields.filter((f) => f.replaces).map((f) => ({ field: f.field, expected: f.to, actual: f.from }));
    case 'update':
      return change.fields.map((f) => ({ field: f.field, expected: f.to, actual: f.from }));
  }
}

export interface DriftRun {
  environment: string;
  manifests: string;
  checkedAt: string;
  workflowId?: string;
}

export function driftReport(
  run: DriftRun,
  diff: FleetDiff,
  text: string,
  previous: DriftReport | undefined,
): DriftReport {
  const earlier = new Map<string, string>();
  for (const item of previous?.items ?? [])
    for (const f of item.fields) earlier.set(`${item.key}\0${f.field}`, f.since);
  const items = diff.changes.map((change): DriftItem => {
    const fields = fieldsOf(change).map((f) => ({
      ...f,
      since: earlier.get(`${change.key}\0${f.field}`) ?? run.checkedAt,
    }));
    return {
      key: change.key,
      action: change.action,
      vmid: change.vmid,
      name: change.name,
      node: change.node,
      risk: change.risk,
      fields,
      since: fields.map((f) => f.since).sort()[0] ?? run.checkedAt,
    };
  });
  const inSync = items.length === 0;
  const lastInSyncAt = inSync ? run.checkedAt : previous?.lastInSyncAt;
  return {
    id: run.environment,
    environment: run.environment,
    manifests: run.manifests,
    checkedAt: run.checkedAt,
    state: inSync ? 'in-sync' : 'drifted',
    manifestDigest: diff.manifestDigest,
    items,
    warnings: diff.warnings,
    problems: [],
    text,
    ...(lastInSyncAt ? { lastInSyncAt } : {}),
    ...(run.workflowId ? { workflowId: run.workflowId } : {}),
  };
}

/** The report of a run whose manifest could not be planned: the previous drift is kept as it was. */
export function invalidManifestReport(
  run: DriftRun,
  problems: string[],
  previous: DriftReport | undefined,
): DriftReport {
  return {
    id: run.environment,
    environment: run.environment,
    manifests: run.manifests,
    checkedAt: run.checkedAt,
    state: 'invalid',
    items: previous?.items ?? [],
    warnings: [],
    problems,
    text: `The manifest cannot be planned:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    ...(previous?.lastInSyncAt ? { lastInSyncAt: previous.lastInSyncAt } : {}),
    ...(run.workflowId ? { workflowId: run.workflowId } : {}),
  };
}
