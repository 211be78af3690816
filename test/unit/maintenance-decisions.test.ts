import { describe, expect, it } from 'vitest';
import {
  decisionRefusal,
  newNodeReport,
  nodeApprovalRefusal,
  type MaintenanceProgress,
} from '../../workflows/maintenance-definitions.js';

const node = newNodeReport;

function progress(over: Partial<MaintenanceProgress> = {}): MaintenanceProgress {
  return {
    state: 'halted',
    summary: '',
    current: ['pve2'],
    nodes: [node('pve1', 'maintained'), node('pve2', 'halted'), node('pve3', 'pending')],
    ignored: [],
    ...over,
  };
}

describe('decisions about a halted node', () => {
  it('are taken for the halted node only', () => {
    expect(decisionRefusal(progress(), { by: 'otto', node: 'pve2' })).toBeUndefined();
    expect(decisionRefusal(progress(), { by: 'otto', node: 'pve1' })).toBe(
      'pve1 is not halted (it is maintained); only a halted node takes a decision',
    );
    expect(decisionRefusal(progress(), { by: 'otto', node: 'pve9' })).toBe(
      'pve9 is not a node of this rolling maintenance (pve1, pve2, pve3)',
    );
  });
});

describe('per-node approval', () => {
  const plan = { version: 1, risk: 'high' as const, requester: 'otto' };
  const gated = () => progress({ gate: { node: 'pve3', planVersion: 1, since: '2026-01-01T00:00:00Z' } });

  it('follows the plan approval rules: plan version, no self-approval, a reason to reject', () => {
    expect(
      nodeApprovalRefusal(gated(), plan, { by: 'anna', node: 'pve3', planVersion: 1 }, 'approved'),
    ).toBeUndefined();
    expect(nodeApprovalRefusal(gated(), plan, { by: 'otto', node: 'pve3', planVersion: 1 }, 'approved')).toBe(
      'a high-risk operation cannot be approved by the actor who requested it',
    );
    expect(nodeApprovalRefusal(gated(), plan, { by: 'anna', node: 'pve3', planVersion: 2 }, 'approved')).toBe(
      'names plan version 2, but the approved plan is version 1',
    );
    expect(nodeApprovalRefusal(gated(), plan, { by: 'otto', node: 'pve3', planVersion: 1 }, 'rejected')).toBe(
      'a rejection needs a reason',
    );
    expect(
      nodeApprovalRefusal(gated(), plan, { by: 'otto', node: 'pve3', planVersion: 1, reason: 'not today' }, 'rejected'),
    ).toBeUndefined();
  });

  it('must name the node whose gate is open, once', () => {
    expect(nodeApprovalRefusal(progress(), plan, { by: 'anna', node: 'pve3', planVersion: 1 }, 'approved')).toBe(
      'no node is waiting for approval',
    );
    expect(nodeApprovalRefusal(gated(), plan, { by: 'anna', node: 'pve2', planVersion: 1 }, 'approved')).toBe(
      'names pve2, but the node waiting for approval is pve3',
    );
    const decided = gated();
    decided.gate!.decided = { decision: 'approved', by: 'anna' };
    expect(nodeApprovalRefusal(decided, plan, { by: 'vera', node: 'pve3', planVersion: 1 }, 'approved')).toBe(
      'already approved by anna',
    );
  });
});
