/**
 * The difference between a fleet manifest and a cluster, as the changes that close it: a pure
 * function of the manifest, one reading of the cluster and the environment's policy, so the
 * reconcile plan, drift detection and the tests share one answer.
 *
 * Per manifest guest: create it (clone a template, import an image, install from an ISO, or
 * unpack a container template), change it in place (live, or with a restart for what only
 * takes effect at boot), replace it (its kind or source changed), or leave it. Guests the
 * manifest does not name are left alone — unless the manifest claims them (by tag or VMID
 * range): then they are deleted. Deleting is never implied by omission alone.
 *
 * Every step carries the exact parameters it sends to PVE; config changes carry the config
 * `digest` they were computed from, so PVE refuses them if the guest changed in between.
 *
 * The parts, in the order a diff runs them: compare.ts (each manifest guest against the
 * cluster), new-guest.ts (what creating one takes), placement.ts (nodes, VMIDs and names for
 * new and moving guests), changes.ts (the steps of each change), and the waves below.
 */
import { findGuest, guestLabel, type Fleet, type FleetGuest, type ManifestProblem } from '../load.js';
import { matchGuests, type Problem } from '../match.js';
import { kindLabel, type ObservedCluster, type ObservedGuest } from '../observed.js';
import { configFlag } from '../pve-config.js';
import { manifestPath, stepRefusals } from '../refusals.js';
import { deleteChange, replaceChange, updateChange } from './changes.js';
import { compareGuests, type Pending } from './compare.js';
import { newGuestChange } from './new-guest.js';
import { newGuestIdentities, placePending, type NewGuestIdentities, type Placed } from './placement.js';
import type { DiffScope } from './scope.js';
import type { DiffContext, FleetDiff, GuestChange } from './types.js';

export type { FieldChange } from '../config-delta.js';
export { guestsToInspect, volumesToLocate } from '../match.js';
export type { GuestKind, ObservedCluster, ObservedGuest, ObservedStorage } from '../observed.js';
export { maxRisk } from './types.js';
export type { ChangeAction, DiffContext, FleetDiff, GuestChange } from './types.js';

export function diffFleet(fleet: Fleet, cluster: ObservedCluster, ctx: DiffContext): FleetDiff {
  const problems: ManifestProblem[] = [];
  const warnings: string[] = [];
  const problem: Problem = (g, path, message) =>
    problems.push({ file: g.file, path: ['guests', g.index, ...path].join('.'), message });
  const label = new Map(fleet.guests.map((g) => [g, guestLabel(g)]));
  const scope: DiffScope = { fleet, cluster, ctx, label, problem, problems, warn: (line) => warnings.push(line) };

  checkNodeNames(scope);
  const { matched, claimed } = matchGuests(fleet, cluster.guests, ctx.naming.pattern, problem);
  const { pending, unchanged } = compareGuests(scope, matched);
  const changes = plannedChanges(scope, pending, placePending(scope, pending, matched));
  changes.push(...claimedDeletions(scope, claimed, new Set(changes.map((c) => c.key))));
  orderInWaves(scope, changes);
  const byKey = new Map(fleet.guests.map((g) => [label.get(g)!, g]));
  for (const c of changes) {
    const g = byKey.get(c.key);
    if (g) reportRefusals(g, c, problem);
  }
  return {
    environment: ctx.environment,
    manifestDigest: fleet.digest,
    changes: problems.length ? [] : changes,
    unchanged,
    warnings,
    problems,
  };
}

/** Every node a manifest guest names (its node, its placement rule's nodes) exists. */
function checkNodeNames({ fleet, cluster, ctx, problem }: DiffScope): void {
  const knownNodes = new Set(cluster.nodes.map((n) => n.name));
  for (const g of fleet.guests) {
    for (const [path, node] of [
      ['node', g.node] as const,
      ...(g.placement?.nodes ?? []).map((n, i) => [`placement.nodes.${i}`, n] as const),
    ]) {
      if (node !== undefined && !knownNodes.has(node))
        problem(g, path.split('.'), `no node '${node}' in environment ${ctx.environment}`);
    }
  }
}

/** The change of each pending guest, in manifest order; new guests get their node, VMID and name here. */
function plannedChanges(scope: DiffScope, pending: readonly Pending[], placed: Placed): GuestChange[] {
  const identities = newGuestIdentities(scope);
  return pending.flatMap((p) => {
    const dependsOn = p.g.depends_on.map((d) => scope.label.get(findGuest(scope.fleet.guests, d)!)!);
    if (p.action !== 'update') return createdChange(scope, p, placed, identities, dependsOn) ?? [];
    const target = p.move ? placed(p) : undefined;
    return updateChange(p.g, scope.label.get(p.g)!, p.observed!, p.delta!, p.power, target, dependsOn, scope.ctx);
  });
}

/** A create or a replacement: undefined (reported) when the guest has no node, VMID or name. */
function createdChange(
  scope: DiffScope,
  p: Pending,
  placed: Placed,
  identities: NewGuestIdentities,
  dependsOn: string[],
): GuestChange | undefined {
  const g = p.g;
  const node = placed(p);
  const vmid = node ? identities.allocate(g) : undefined;
  if (!node || !vmid) return undefined;
  const name = identities.name(p, vmid.vmid);
  if (name === undefined) return undefined;
  const key = scope.label.get(g)!;
  const created = newGuestChange(
    p.draft!,
    { node, vmid: vmid.vmid, range: vmid.range, name },
    scope.fleet.claims.tags,
    scope.ctx,
    (m) => scope.warn(`${key}: ${m}`),
  );
  return p.action === 'create'
    ? { ...created, dependsOn, file: g.file }
    : replaceChange(p.observed!, p.forcing!, created, dependsOn, g.file);
}

/** Guests the manifest claims (by tag or VMID range) but no longer lists are deleted, unless protected. */
function claimedDeletions(
  scope: DiffScope,
  claimed: readonly { guest: ObservedGuest; why: string }[],
  keys: ReadonlySet<string>,
): GuestChange[] {
  return claimed.flatMap(({ guest, why }) => {
    const what = `${kindLabel(guest.kind)} ${guest.vmid} '${guest.name}'`;
    if (configFlag(guest.config ?? {}, 'protection')) {
      scope.warn(
        `${guest.name}: ${what} is claimed by the manifest (${why}) but not in it, and has protection enabled; it is kept`,
      );
      return [];
    }
    const key = keys.has(guest.name) ? `${guest.name}#${guest.vmid}` : guest.name;
    return [deleteChange(key, guest, why)];
  });
}

/**
 * Waves: a guest's changes start once those of the guests it depends on have finished; deletes
 * go first. Sorted by wave, then as the manifest lists the guests.
 */
function orderInWaves({ fleet, label }: DiffScope, changes: GuestChange[]): void {
  const level = new Map<FleetGuest, number>();
  const levelOf = (g: FleetGuest): number => {
    const known = level.get(g);
    if (known !== undefined) return known;
    level.set(g, 0);
    const deps = g.depends_on.map((d) => findGuest(fleet.guests, d)!);
    const value = deps.length === 0 ? 0 : 1 + Math.max(...deps.map(levelOf));
    level.set(g, value);
    return value;
  };
  const byKey = new Map(fleet.guests.map((g) => [label.get(g)!, g]));
  for (const c of changes) c.wave = c.action === 'delete' ? 0 : 1 + levelOf(byKey.get(c.key)!);
  const order = new Map(fleet.guests.map((g, i) => [label.get(g)!, i]));
  changes.sort((a, b) => a.wave - b.wave || (order.get(a.key) ?? -1) - (order.get(b.key) ?? -1) || a.vmid - b.vmid);
}

/** A step's parameters PVE would refuse, as problems of the manifest field they come from. */
function reportRefusals(g: FleetGuest, c: GuestChange, problem: Problem): void {
  for (const s of c.steps) {
    if (!s.params) continue;
    // A replacement's create and configure steps act on the new guest, whose kind may differ.
    const kind = c.replacement && s.action !== 'destroy' && s.action !== 'shutdown' ? c.replacement.kind : c.kind;
    for (const [key, reason] of Object.entries(stepRefusals(kind, s.action, s.params))) {
      problem(g, manifestPath(key), `PVE would refuse ${key}=${String(s.params[key])}: ${reason}`);
    }
  }
}
