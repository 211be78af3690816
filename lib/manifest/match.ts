/**
 * Which manifest guest is which PVE guest — by identity, never by guessing — and which guests
 * the manifest claims without listing them.
 */
import { followsPattern, guestName, NamingError } from '../lifecycle/naming.js';
import { guestLabel, type Fleet, type FleetGuest } from './load.js';
import { kindLabel, type ObservedGuest } from './observed.js';

export interface Matching {
  matched: Map<FleetGuest, ObservedGuest>;
  claimed: { guest: ObservedGuest; why: string }[];
}

export type Problem = (g: FleetGuest, path: (string | number)[], message: string) => void;

/**
 * Matches manifest guests to PVE guests by identity: a fixed VMID (whose guest must carry the
 * expected name), a name, or — for a service without a VMID — the one guest whose name follows
 * the naming policy for that service. Unmatched guests the manifest claims are returned too.
 */
export function matchGuests(
  fleet: Fleet,
  guests: readonly ObservedGuest[],
  pattern: string,
  problem: Problem,
): Matching {
  const matched = new Map<FleetGuest, ObservedGuest>();
  const owner = new Map<number, FleetGuest>();
  const byName = (name: string) => guests.filter((o) => o.name.toLowerCase() === name.toLowerCase());
  const take = (g: FleetGuest, o: ObservedGuest, path: string) => {
    if (o.template)
      return problem(
        g,
        [path],
        `${kindLabel(o.kind)} ${o.vmid} '${o.name}' is a template; a manifest manages guests, not templates`,
      );
    const other = owner.get(o.vmid);
    if (other)
      return problem(
        g,
        [path],
        `${kindLabel(o.kind)} ${o.vmid} '${o.name}' is already ${guestLabel(other)} (${other.file}:guests.${other.index})`,
      );
    owner.set(o.vmid, g);
    matched.set(g, o);
  };
  const nameOf = (g: FleetGuest, vmid: number): string | undefined => {
    if (g.name !== undefined) return g.name;
    try {
      return guestName(pattern, { service: g.service!, vmid });
    } catch (err) {
      if (err instanceof NamingError) problem(g, ['service'], err.message);
      else throw err;
      return undefined;
    }
  };

  for (const g of fleet.guests) {
    if (g.vmid !== undefined) {
      const expected = nameOf(g, g.vmid);
      if (expected === undefined) continue;
      const existing = guests.find((o) => o.vmid === g.vmid);
      if (existing && existing.name.toLowerCase() !== expected.toLowerCase()) {
        problem(
          g,
          ['vmid'],
          `${kindLabel(existing.kind)} ${g.vmid} is named '${existing.name}', not '${expected}'; a manifest does not rename guests`,
        );
        continue;
      }
      const elsewhere = byName(expected).find((o) => o.vmid !== g.vmid);
      if (elsewhere) {
        problem(
          g,
          [g.name !== undefined ? 'name' : 'service'],
          `'${expected}' is ${kindLabel(elsewhere.kind)} ${elsewhere.vmid}, not vmid ${g.vmid}`,
        );
        continue;
      }
      if (existing) take(g, existing, 'vmid');
      continue;
    }
    // A service's name carries its VMID under most patterns: any guest following the pattern is a candidate.
    let found: ObservedGuest[];
    if (g.name === undefined && pattern.includes('{vmid}')) {
      found = guests.filter((o) => followsPattern(pattern, g.service!, o.name));
    } else {
      const name = nameOf(g, 0);
      if (name === undefined) continue;
      found = byName(name);
    }
    const field = g.name !== undefined ? 'name' : 'service';
    if (found.length > 1) {
      problem(
        g,
        [field],
        `several guests match: ${found.map((o) => `${o.vmid} '${o.name}'`).join(', ')}; give the entry a vmid`,
      );
    } else if (found.length === 1) {
      take(g, found[0]!, field);
    }
  }

  const claimed: Matching['claimed'] = [];
  for (const o of guests) {
    if (o.template || owner.has(o.vmid)) continue;
    const tag = fleet.claims.tags.find((t) => o.tags.some((own) => own.toLowerCase() === t));
    const range = fleet.claims.vmids.find((r) => o.vmid >= r.min && o.vmid <= r.max);
    if (tag) claimed.push({ guest: o, why: `it carries the claimed tag '${tag}'` });
    else if (range) claimed.push({ guest: o, why: `its VMID is in the claimed range ${range.min}-${range.max}` });
  }
  return { matched, claimed };
}

/** The guests whose configs the diff reads: matched and claimed guests, and the templates the manifest clones. */
export function guestsToInspect(fleet: Fleet, guests: readonly ObservedGuest[], pattern: string): number[] {
  const { matched, claimed } = matchGuests(fleet, guests, pattern, () => {});
  const templates = fleet.guests.flatMap((g) =>
    g.source?.template !== undefined ? [resolveTemplate(g.source.template, guests)] : [],
  );
  return [
    ...new Set(
      [...matched.values(), ...claimed.map((c) => c.guest), ...templates.filter((t) => t !== undefined)].map(
        (o) => o.vmid,
      ),
    ),
  ].sort((a, b) => a - b);
}

export function resolveTemplate(ref: string | number, guests: readonly ObservedGuest[]): ObservedGuest | undefined {
  const candidates = guests.filter(
    (o) => o.kind === 'qemu' && (typeof ref === 'number' ? o.vmid === ref : o.name.toLowerCase() === ref.toLowerCase()),
  );
  return candidates.find((o) => o.template) ?? candidates[0];
}

/** Volumes the manifest names, whose nodes the diff needs (`ObservedCluster.volumes`). */
export function volumesToLocate(fleet: Fleet): string[] {
  return [
    ...new Set(
      fleet.guests.flatMap((g) =>
        [g.source?.image, g.source?.iso, g.source?.ostemplate].filter((v): v is string => v !== undefined),
      ),
    ),
  ].sort();
}
