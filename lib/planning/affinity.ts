/**
 * Which guests must share a node, which must not, and where they may run — from guest tags
 * (any PVE version) and PVE 9 HA rules, in the vocabulary of placeGuests.
 *
 * Tags: `affinity-<name>` keeps guests together, `anti-affinity-<name>` keeps them apart
 * (PVE tags allow letters, digits, `-`, `_`, `+` and `.`). HA rules: a positive
 * resource-affinity rule keeps its resources together, a negative one apart; a node-affinity
 * rule prefers its nodes by priority, and a strict one allows no others. Disabled rules count
 * for nothing, as in PVE.
 */
import { haResourceId, type GuestState, type HaRule } from './snapshot.js';

const AFFINITY_TAG = /^affinity-(.+)$/i;
const ANTI_AFFINITY_TAG = /^anti-affinity-(.+)$/i;

export interface GuestAffinity {
  /** Group keys whose members share a node. */
  together: string[];
  /** Group keys whose members must not share a node. */
  apart: string[];
  /** Nodes the guest may run on at all (strict node affinity). */
  onlyOn?: string[];
  /** Nodes it should run on, best first (node affinity). */
  prefers?: string[];
}

export function affinityOf(guest: Pick<GuestState, 'type' | 'vmid' | 'tags'>, rules: readonly HaRule[]): GuestAffinity {
  const together: string[] = [];
  const apart: string[] = [];
  for (const tag of guest.tags) {
    const t = tag.toLowerCase();
    if (ANTI_AFFINITY_TAG.test(t)) apart.push(t);
    else if (AFFINITY_TAG.test(t)) together.push(t);
  }

  const sid = haResourceId(guest);
  const result: GuestAffinity = { together, apart };
  for (const rule of rules) {
    if (rule.disabled || !rule.resources.includes(sid)) continue;
    if (rule.type === 'resource-affinity') {
      (rule.affinity === 'negative' ? apart : together).push(`ha-rule:${rule.rule}`);
    } else if (rule.nodes?.length) {
      const byPriority = [...rule.nodes].sort((a, b) => b.priority - a.priority).map((n) => n.node);
      result.prefers = byPriority;
      if (rule.strict) result.onlyOn = byPriority;
    }
  }
  return result;
}
