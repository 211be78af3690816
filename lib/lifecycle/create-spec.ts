/**
 * A guest to create, fixed at plan time except the final VMID (and a name built from it): what
 * the provisioning activity sends (activities/provision.ts) and what plans that create guests —
 * vm-create, cluster-up, the reconcile's manifest diff — put in their steps.
 */
export interface CreateSpec {
  kind: 'create' | 'clone';
  type: 'qemu' | 'lxc';
  node: string;
  /** The VMID the plan expects; the create takes the next free one if it is gone by then. */
  vmid: number;
  /** The operator named this VMID: it is used or the create fails, never substituted. */
  vmidFixed: boolean;
  range: { min: number; max: number };
  /** The name, or the naming pattern's inputs when the name carries the VMID. */
  name: { fixed: string } | { pattern: string; service: string };
  /** Request parameters besides vmid and name (create: the config; clone: full, target, storage). */
  params: Record<string, string | number | boolean>;
  source?: { vmid: number; name: string; node: string };
}
