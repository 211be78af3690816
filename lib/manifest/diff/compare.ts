/**
 * Each manifest guest against the cluster: create it (no guest matches), replace it (its kind
 * or recorded source changed), update it (config, power, node), or leave it unchanged.
 */
import { configDelta, type ConfigDelta, type FieldChange } from '../config-delta.js';
import type { FleetGuest } from '../load.js';
import { kindLabel, type ObservedGuest } from '../observed.js';
import { configFlag, configString, parseDescription, sourceLabel } from '../pve-config.js';
import { draftNew, type NewGuestDraft } from './new-guest.js';
import { allowedNodes, type DiffScope } from './scope.js';
import type { FleetDiff } from './types.js';

/** A change decided but not yet placed: new and moving guests still need a node (placement.ts). */
export interface Pending {
  g: FleetGuest;
  observed?: ObservedGuest;
  action: 'create' | 'update' | 'replace';
  delta?: ConfigDelta;
  forcing?: FieldChange[];
  power?: 'start' | 'shutdown';
  move?: boolean;
  draft?: NewGuestDraft;
}

export function compareGuests(
  scope: DiffScope,
  matched: Map<FleetGuest, ObservedGuest>,
): { pending: Pending[]; unchanged: FleetDiff['unchanged'] } {
  const pending: Pending[] = [];
  const unchanged: FleetDiff['unchanged'] = [];
  for (const g of scope.fleet.guests) {
    const observed = matched.get(g);
    const p = observed ? compareExisting(scope, g, observed) : compareMissing(scope, g);
    if (p === 'unchanged') unchanged.push({ key: scope.label.get(g)!, vmid: observed!.vmid, name: observed!.name });
    else if (p) pending.push(p);
  }
  return { pending, unchanged };
}

/** No guest matches: create it, unless the manifest entry already has a problem. */
function compareMissing(scope: DiffScope, g: FleetGuest): Pending | undefined {
  const at = `guests.${g.index}`;
  if (scope.problems.some((p) => p.file === g.file && (p.path === at || p.path.startsWith(`${at}.`)))) return undefined;
  const draft = draftNew(scope, g, false);
  return draft ? { g, action: 'create', draft } : undefined;
}

function compareExisting(scope: DiffScope, g: FleetGuest, observed: ObservedGuest): Pending | 'unchanged' | undefined {
  const key = scope.label.get(g)!;
  const what = `${kindLabel(observed.kind)} ${observed.vmid} '${observed.name}'`;
  const config = observed.config;
  if (!config) {
    scope.problem(g, [], `the config of ${what} was not read`);
    return undefined;
  }
  const recorded = parseDescription(configString(config, 'description')).source;
  const forcing = replacementCauses(scope, g, observed, recorded, what);
  if (forcing.length > 0) {
    if (configFlag(config, 'protection')) {
      scope.warn(
        `${key}: ${what} must be replaced (${forcing.map((f) => f.field).join(', ')} changed) but has protection enabled; turn it off in PVE to let the manifest replace it`,
      );
      return undefined;
    }
    const draft = draftNew(scope, g, true);
    return draft ? { g, observed, action: 'replace', forcing, draft } : undefined;
  }
  if (observed.lock)
    scope.warn(`${key}: ${what} is locked (${observed.lock}); PVE refuses changes until the lock clears`);
  const running = observed.status === 'running';
  const delta = configDelta(g, {
    kind: g.kind,
    config,
    running,
    fields: new Set(g.managed),
    claimTags: scope.fleet.claims.tags,
    defaults: scope.ctx.defaults,
    source: recorded,
    warn: (m) => scope.warn(`${key}: ${m}`),
    what,
  });
  const power = powerChange(g, running);
  const allowed = g.managed.includes('node') ? allowedNodes(g) : undefined;
  const move = allowed !== undefined && !allowed.includes(observed.node);
  if (delta.fields.length === 0 && delta.resizes.length === 0 && !power && !move) return 'unchanged';
  return { g, observed, action: 'update', delta, ...(power ? { power } : {}), move };
}

/** What only a replacement changes: the guest's kind, or the source it records being created from. */
function replacementCauses(
  scope: DiffScope,
  g: FleetGuest,
  observed: ObservedGuest,
  recorded: string | undefined,
  what: string,
): FieldChange[] {
  const forcing: FieldChange[] = [];
  if (observed.kind !== g.kind) forcing.push({ field: 'kind', from: observed.kind, to: g.kind, replaces: true });
  if (g.managed.includes('source') && g.source) {
    const wanted = sourceLabel(g.source);
    if (recorded === undefined)
      scope.warn(
        `${scope.label.get(g)!}: ${what} does not record what it was created from; its source is not compared`,
      );
    else if (recorded !== wanted) forcing.push({ field: 'source', from: recorded, to: wanted, replaces: true });
  }
  return forcing;
}

function powerChange(g: FleetGuest, running: boolean): 'start' | 'shutdown' | undefined {
  if (!g.managed.includes('power') || g.power === undefined || (g.power === 'running') === running) return undefined;
  return g.power === 'running' ? 'start' : 'shutdown';
}
