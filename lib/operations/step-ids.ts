/**
 * Ids of plan steps that a planner writes and a workflow finds again by them (progress,
 * signals): small and pure, so workflows need not load the planners.
 */
import type { NodeStep } from '../maintenance/plan.js';

/** The plan step (and progress entry) of one guest's migration. */
export function migrationStepId(vmid: number): string {
  return `migrate-${vmid}`;
}

/** The plan step (and progress entry) of one node's step; `approval` is the per-node gate. */
export function nodeStepId(node: string, step: NodeStep | 'approval'): string {
  return `${node}/${step}`;
}
