/** A node's guests on the move, out or home: one migrateGuests child per batch of moves. */
import { executeChild } from '@temporalio/workflow';
import type { TaskMarker } from '../../activities/evacuation.js';
import type { EvacuationPlan, GuestMove } from '../../lib/planning/evacuation.js';
import { migrateGuests, type GuestOutcome } from '../migrate-guests.js';
import type { NodeRun } from './node-run.js';

export function migrate(
  run: NodeRun,
  phase: 'evacuate' | 'return',
  moves: GuestMove[],
  limits: EvacuationPlan['limits'],
  marker: TaskMarker,
  onFailure: 'stop' | 'continue',
): Promise<GuestOutcome[]> {
  const { moving, node, settings } = run;
  moving.phase = phase;
  moving.done.clear();
  return run.cancellation.cancellable(() =>
    executeChild(migrateGuests, {
      workflowId: `${run.self}/${phase}-${++moving.runs}`,
      staticSummary:
        phase === 'evacuate'
          ? `move ${moves.length} guests off ${node}`
          : `bring ${moves.length} guests back to ${node}`,
      args: [
        {
          environment: run.environment,
          pending: moves,
          limits,
          memoryHeadroom: settings.memoryHeadroom,
          memoryBasis: settings.memoryBasis,
          onFailure,
          marker,
          progressTo: run.self,
        },
      ],
    }),
  );
}

/** Guests whose migration took them where they were meant to be. */
export function arrived(outcomes: readonly GuestOutcome[]): GuestOutcome[] {
  return outcomes.filter((o) => o.state === 'migrated' || o.state === 'already-there');
}

export function failures(outcomes: readonly GuestOutcome[]): string {
  return outcomes
    .filter((o) => o.state === 'failed')
    .map((o) => o.error ?? `${o.vmid} failed`)
    .join('; ');
}
