/**
 * A plan as a person reads it before deciding. The API answers it as `planText` next to
 * the plan itself, and every door (pm, the MCP server, Discord) shows this text rather
 * than its own rendering, so an approver sees the same words wherever they look.
 */
import type { OperationPlan, PlanStep } from './plan.js';
import { formatDuration } from '../planning/units.js';

export function renderPlanText(plan: OperationPlan): string {
  const lines = [
    `Plan v${plan.version} · risk ${plan.risk} · about ${formatDuration(plan.estimatedDurationMs)}`,
    plan.summary,
  ];
  if (plan.reasons.length > 0) lines.push('', 'Why this risk:', ...plan.reasons.map((r) => `  - ${r}`));
  lines.push('', plan.steps.length > 0 ? 'Steps:' : 'Steps: none (nothing to do)');
  plan.steps.forEach((step, i) => lines.push(...stepLines(step, i + 1)));
  if (plan.warnings.length > 0) lines.push('', 'Warnings:', ...plan.warnings.map((w) => `  ! ${w}`));
  return lines.join('\n');
}

function stepLines(step: PlanStep, n: number): string[] {
  const where = [step.node, step.target].filter(Boolean).join(' -> ');
  const lines = [`  ${n}. ${step.description}${where ? ` [${where}]` : ''}`];
  if (step.params && Object.keys(step.params).length > 0) {
    lines.push(
      `     ${Object.entries(step.params)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
  }
  return lines;
}
