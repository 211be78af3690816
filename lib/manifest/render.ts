/**
 * A fleet diff as text, the way `terraform plan` shows one: each guest with its symbol
 * (`+` create, `~` update, `-/+` replace, `-` delete), the fields that change, what forces a
 * replacement or needs a restart, then the warnings and the counts.
 */
import type { FieldChange, FleetDiff, GuestChange } from './diff/index.js';

const SYMBOL: Record<GuestChange['action'], string> = { create: '  +', update: '  ~', replace: '-/+', delete: '  -' };

function kindLabel(kind: GuestChange['kind']): string {
  return kind === 'qemu' ? 'VM' : 'CT';
}

function heading(c: GuestChange): string {
  const at = `${kindLabel(c.kind)} ${c.vmid} on ${c.node}`;
  switch (c.action) {
    case 'create':
      return `will be created (${at})`;
    case 'update':
      return `will be updated in place (${at}${c.restart ? ', restarted' : ''})`;
    case 'replace': {
      const r = c.replacement!;
      return `must be replaced (${at} -> ${kindLabel(r.kind)} ${r.vmid} '${r.name}' on ${r.node})`;
    }
    case 'delete':
      return `will be destroyed (${at}): the manifest claims it — ${c.claimedBy} — and does not list it`;
  }
}

function fieldLine(f: FieldChange, width: number, action: GuestChange['action']): string {
  const name = f.field.padEnd(width);
  const note = f.replaces ? '  # forces replacement' : f.restart ? '  # takes effect after a restart' : '';
  if (action === 'create' || f.from === '(none)') return `      + ${name} = ${JSON.stringify(f.to)}${note}`;
  return `      ~ ${name} = ${JSON.stringify(f.from)} -> ${JSON.stringify(f.to)}${note}`;
}

export function renderChange(c: GuestChange): string {
  const lines = [`${SYMBOL[c.action]} guest "${c.key}" ${heading(c)}`];
  const width = Math.max(0, ...c.fields.map((f) => f.field.length));
  for (const f of c.fields) lines.push(fieldLine(f, width, c.action));
  lines.push(
    `        steps: ${c.steps.map((s) => s.id.slice(s.id.lastIndexOf('/') + 1)).join(', ')}${c.dependsOn.length ? `  (after ${c.dependsOn.join(', ')})` : ''}`,
  );
  return lines.join('\n');
}

export function countChanges(diff: Pick<FleetDiff, 'changes'>): Record<GuestChange['action'], number> {
  const counts = { create: 0, update: 0, replace: 0, delete: 0 };
  for (const c of diff.changes) counts[c.action]++;
  return counts;
}

/** One line: `2 to add, 1 to change, 1 to replace, 1 to destroy`. */
export function summarizeDiff(diff: Pick<FleetDiff, 'changes'>): string {
  const n = countChanges(diff);
  return `${n.create} to add, ${n.update} to change, ${n.replace} to replace, ${n.delete} to destroy`;
}

export function renderPlan(diff: FleetDiff): string {
  const out: string[] = [`Environment ${diff.environment}, manifest ${diff.manifestDigest.slice(0, 12)}`, ''];
  if (diff.problems.length > 0) {
    out.push('The manifest cannot be planned:', ...diff.problems.map((p) => `  - ${p.file}:${p.path}: ${p.message}`));
    return out.join('\n');
  }
  if (diff.changes.length === 0) {
    out.push(
      `No changes. The ${diff.unchanged.length} guest${diff.unchanged.length === 1 ? '' : 's'} of the manifest match the cluster.`,
    );
  } else {
    out.push('proxmox-manager will perform these actions:', '');
    for (const c of diff.changes) out.push(renderChange(c), '');
    out.push(`Plan: ${summarizeDiff(diff)}; ${diff.unchanged.length} unchanged.`);
  }
  if (diff.warnings.length > 0)
    out.push('', 'Warnings (not changed by this plan):', ...diff.warnings.map((w) => `  - ${w}`));
  return out.join('\n');
}
