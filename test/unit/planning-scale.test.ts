/**
 * The evacuation planner at scale makes exactly the plans it made before it was optimised:
 * plans for seeded generated clusters (test/support/generated-snapshot.ts) are compared with
 * the ones recorded from the planner as it was (test/fixtures/planning/evacuation-plans.json,
 * fingerprints written at commit a7ca561 with `PM_RECORD_PLANS=1 npx vitest run test/unit/planning-scale.test.ts`).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  describeEvacuation,
  planEvacuation,
  type EvacuationRequest,
  type PlacementPolicy,
} from '../../lib/planning/evacuation.js';
import {
  defaultPolicy,
  evacuateEverything,
  generatedSnapshot,
  type GeneratedSnapshotOptions,
} from '../../testkit/generated-snapshot.js';

const FIXTURE = new URL('../fixtures/planning/evacuation-plans.json', import.meta.url);

const request = evacuateEverything;
const policy = defaultPolicy;

const cases: {
  name: string;
  cluster: GeneratedSnapshotOptions;
  request?: Partial<EvacuationRequest>;
  policy?: Partial<PlacementPolicy>;
}[] = [
  { name: '12 nodes, 600 guests', cluster: { nodes: 12, guests: 600, seed: 1 } },
  {
    name: '40 nodes, 1,600 guests, tight, containers and local disks left, two nodes denied',
    cluster: { nodes: 40, guests: 1600, seed: 2, memoryPressure: 0.85 },
    request: { containers: 'leave', localDisks: 'leave', denyTargets: ['pve002', 'pve003'] },
  },
  {
    name: '7 nodes, 300 guests, overfull (packing), memory basis used, disks to local-lvm',
    cluster: { nodes: 7, guests: 300, seed: 3, memoryPressure: 1.1 },
    request: { targetStorage: 'local-lvm', includeTemplates: false },
    policy: { memory_basis: 'used' },
  },
  { name: '100 nodes, 3,000 guests', cluster: { nodes: 100, guests: 3000, seed: 4 } },
];

function plan(c: (typeof cases)[number]) {
  const { snapshot, largestNode } = generatedSnapshot(c.cluster);
  const details = planEvacuation(snapshot, { ...request, node: largestNode, ...c.request }, { ...policy, ...c.policy });
  return { details, described: describeEvacuation(details) };
}

/** Who goes where in which order, and who stays, readable in a failing diff; the digest covers every other word of the plan. */
function fingerprint(p: ReturnType<typeof plan>) {
  return {
    moves: p.details.moves.map((m) => `${m.vmid} -> ${m.target} ${m.mode}`),
    leftBehind: p.details.leftBehind.map((l) => `${l.vmid}${l.covered ? ' (blocked)' : ''}`),
    sha256: createHash('sha256').update(JSON.stringify(p.described)).digest('hex'),
  };
}

describe('the evacuation planner on generated clusters', () => {
  if (process.env['PM_RECORD_PLANS'] === '1') {
    it('records the plans', () => {
      writeFileSync(
        FIXTURE,
        `${JSON.stringify(Object.fromEntries(cases.map((c) => [c.name, fingerprint(plan(c))])))}\n`,
      );
    });
    return;
  }
  const recorded = existsSync(FIXTURE) ? (JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, unknown>) : {};

  it.each(cases)('makes the plan it made before: $name', (c) => {
    expect(recorded[c.name], 'no recorded plan').toBeDefined();
    expect(fingerprint(plan(c))).toEqual(recorded[c.name]);
  });

  it('covers moves, guests left behind for every kind of reason, and unplaceable guests', () => {
    const plans = cases.map(plan);
    expect(plans.every((p) => p.details.moves.length > 0)).toBe(true);
    const reasons = plans.flatMap((p) => p.details.leftBehind.map((l) => l.reason.split(/[ (:]/)[0]));
    for (const start of ['locked', 'uses', 'local', 'its', 'no', 'running', 'has']) expect(reasons).toContain(start);
  });
});
