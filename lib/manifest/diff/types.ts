/** The answer of a diff: the changes that close the gap between a manifest and a cluster. */
import type { SafetyPolicy, VmDefaults } from '../../config/schema.js';
import type { CreateSpec } from '../../lifecycle/create-spec.js';
import type { PlanStep, Risk } from '../../operations/plan.js';
import type { FieldChange } from '../config-delta.js';
import type { ManifestProblem, VmidRange } from '../load.js';
import type { GuestKind } from '../observed.js';

export interface DiffContext {
  environment: string;
  naming: { pattern: string };
  /** The environment's VM range: new guests' VMIDs come from it unless their file claims one. */
  vmids: VmidRange;
  defaults: VmDefaults;
  policy: SafetyPolicy;
  now: Date;
}

export type ChangeAction = 'create' | 'update' | 'replace' | 'delete';

export interface GuestChange {
  /** The guest as the manifest names it (name, service, or `service#vmid`); a deleted guest's own name. */
  key: string;
  action: ChangeAction;
  kind: GuestKind;
  /** The guest as it is (update, replace, delete) or will be (create). */
  vmid: number;
  name: string;
  node: string;
  /** What a replacement creates. */
  replacement?: { vmid: number; name: string; node: string; kind: GuestKind };
  /** The change restarts the guest (or takes effect at its next start). */
  restart: boolean;
  fields: FieldChange[];
  steps: PlanStep[];
  risk: Risk;
  /** Why the change carries its risk. */
  reasons: string[];
  /** Dependency wave: wave n starts once every change of wave n-1 has finished. */
  wave: number;
  /** Keys of the guests whose changes must succeed first. */
  dependsOn: string[];
  /** Creates sharing a lane run one at a time (clones of one template: PVE locks it while copying). */
  lane?: string;
  create?: CreateSpec;
  /**
   * The plan-time values of the keys the config step sets (null: absent). The config digest
   * also changes when the safety snapshot is taken, so the apply compares these to tell its
   * own snapshot from someone else's edit.
   */
  before?: Record<string, string | null>;
  /** The manifest file naming the guest; deletes say why the guest is claimed instead. */
  file?: string;
  claimedBy?: string;
}

export interface FleetDiff {
  environment: string;
  manifestDigest: string;
  /** In apply order: by wave, then as the manifest lists them. */
  changes: GuestChange[];
  unchanged: { key: string; vmid: number; name: string }[];
  /** Differences the reconcile does not change (shrinking disks, moving storage), and notices. */
  warnings: string[];
  /** Manifest entries that cannot be planned against this cluster, as `file:path: reason`. */
  problems: ManifestProblem[];
}

const RISK_ORDER: Record<Risk, number> = { low: 0, medium: 1, high: 2 };
export function maxRisk(risks: Iterable<Risk>): Risk {
  let worst: Risk = 'low';
  for (const r of risks) if (RISK_ORDER[r] > RISK_ORDER[worst]) worst = r;
  return worst;
}
