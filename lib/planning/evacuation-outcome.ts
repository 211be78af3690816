/**
 * What an evacuation's workflow concludes once its moves ran: the check of the node, the
 * guests that stayed and why, and whether HA maintenance may follow. Pure and small, apart
 * from the planner, because the evacuation and maintain-node workflows run it.
 */
import type { EvacuationPlan, LeftBehind } from './evacuation.js';

/** What the node looks like after the moves, against the plan. */
export interface Verification {
  /** The source holds nothing but the guests the plan left there, and every moved guest is as planned. */
  ok: boolean;
  unexpectedOnSource: { vmid: number; name: string }[];
  misplaced: { vmid: number; name: string; expected: string; actual: string }[];
  wrongState: { vmid: number; name: string; expected: string; actual: string }[];
}

/** A guest the request covered that is still on the node once the evacuation ran, and why. */
export interface Stayed {
  vmid: number;
  name: string;
  reason: string;
}

/**
 * The honest outcome of an applied evacuation: `evacuated` only when the node holds nothing the
 * request covered — every planned move done and checked, and no guest left behind for a reason
 * other than the request's own options. Otherwise `incomplete`, with every guest that stayed.
 */
export function evacuationOutcome(
  plan: EvacuationPlan,
  outcomes: readonly { vmid: number; name: string; state: string; error?: string }[],
  verification: { ok: boolean; unexpectedOnSource: readonly { vmid: number; name: string }[] },
): { outcome: 'evacuated' | 'incomplete'; stayed: Stayed[] } {
  const stayed: Stayed[] = plan.leftBehind
    .filter((l) => l.covered)
    .map((l) => ({ vmid: l.vmid, name: l.name, reason: l.unblock ? `${l.reason}; to move it: ${l.unblock}` : l.reason }));
  for (const o of outcomes) {
    if (o.state === 'failed') stayed.push({ vmid: o.vmid, name: o.name, reason: `its migration failed: ${o.error ?? 'no reason given'}` });
    if (o.state === 'not-started') stayed.push({ vmid: o.vmid, name: o.name, reason: `not started: ${o.error ?? 'the evacuation stopped'}` });
  }
  for (const g of verification.unexpectedOnSource) {
    if (!stayed.some((s) => s.vmid === g.vmid)) stayed.push({ ...g, reason: `still on ${plan.source} after its migrations` });
  }
  stayed.sort((a, b) => a.vmid - b.vmid);
  return { outcome: verification.ok && stayed.length === 0 ? 'evacuated' : 'incomplete', stayed };
}

/** Why HA maintenance must not be enabled after this evacuation, or undefined when it may. */
export function haMaintenanceBlocker(plan: EvacuationPlan, verification: { ok: boolean }, stayed: readonly Stayed[]): string | undefined {
  const guests = [...new Map([...plan.leftBehind, ...stayed].map((g) => [g.vmid, g])).values()];
  if (guests.length > 0) {
    const shown = guests.slice(0, 5).map((g) => `${g.vmid} (${g.name})`).join(', ');
    return `${plan.source} is not empty: ${guests.length} guest${guests.length === 1 ? ' stays' : 's stay'} (${shown}${guests.length > 5 ? ', ...' : ''}), and HA maintenance would fence or move them`;
  }
  if (!verification.ok) return `the verification of ${plan.source} failed, so it is not known to be empty`;
  return undefined;
}

/** The verification's failures, one sentence each. */
export function describeVerification(v: Verification): string {
  return [
    ...v.unexpectedOnSource.map((g) => `${g.vmid} (${g.name}) is still on the node`),
    ...v.misplaced.map((g) => `${g.vmid} (${g.name}) is on ${g.actual}, planned ${g.expected}`),
    ...v.wrongState.map((g) => `${g.vmid} (${g.name}) is ${g.actual}, was ${g.expected}`),
  ].join('; ');
}

/**
 * A running guest that keeps a node from being emptied: why, and what would unblock it — the
 * constraint or option to change, or stopping the guest (a stopped guest may stay on its node).
 */
export function describeStuck(l: LeftBehind): string {
  const unblock = [l.unblock, 'stop it before the maintenance (a stopped guest may stay on its node)'].filter(Boolean).join('; or ');
  return `${guestLabel(l)} ${l.status} — ${l.reason}; to unblock: ${unblock}`;
}

/** Guests an evacuation leaves on the node that would go down with it. */
export function runningLeftBehind(plan: EvacuationPlan): LeftBehind[] {
  return plan.leftBehind.filter((l) => l.status !== 'stopped');
}

/** `VM 101 (web-1)`, `CT 200 (dns)`. */
export function guestLabel(g: { type: string; vmid: number; name: string }): string {
  return `${g.type === 'qemu' ? 'VM' : 'CT'} ${g.vmid} (${g.name})`;
}
