/**
 * The drill history: records of drill operations, in any order, folded into each guest's last
 * proof and the findings — a failed drill opens one, later failures add to it, a later proven
 * drill of the same guest resolves it.
 */
import { describe, expect, it } from 'vitest';
import { drillHistory, type DrillRecord, type DrillResult } from '../../lib/backup/drills.js';

const result = (vmid: number, outcome: DrillResult['outcome'], volid: string, error?: string): DrillResult => ({
  vmid,
  name: `guest-${vmid}`,
  type: 'qemu',
  volid,
  backupCtime: 1_000,
  outcome,
  seconds: 42,
  ...(error ? { error } : {}),
});

const record = (operationId: string, at: string, ...results: DrillResult[]): DrillRecord => ({
  environment: 'home',
  operationId,
  at,
  results,
});

describe('the drill history', () => {
  const first = record(
    'drill/1',
    '2026-12-06T08:00:00Z',
    result(1001, 'proven', 'a1'),
    result(1002, 'failed', 'b1', 'restore failed'),
  );
  const second = record('drill/2', '2026-12-06T09:00:00Z', result(1002, 'failed', 'b2', 'agent silent'));
  const third = record('drill/3', '2026-12-06T10:00:00Z', result(1002, 'proven', 'b3'));

  it('opens one finding per guest and keeps the latest failure in it', () => {
    const { findings } = drillHistory([second, first]);
    expect(findings).toEqual([
      expect.objectContaining({
        id: 'drill/1#1002',
        vmid: 1002,
        state: 'open',
        since: first.at,
        lastFailedAt: second.at,
        failures: 2,
        volid: 'b2',
        reason: 'agent silent',
      }),
    ]);
  });

  it('resolves the finding by a later proven drill of the guest, and keeps the guest’s last proof', () => {
    const { findings, guests } = drillHistory([third, first, second]);
    expect(findings).toEqual([
      expect.objectContaining({ vmid: 1002, state: 'resolved', resolvedAt: third.at, resolvedBy: 'drill/3' }),
    ]);
    expect(guests.map((g) => [g.vmid, g.lastProven?.volid, g.lastDrill.outcome])).toEqual([
      [1001, 'a1', 'proven'],
      [1002, 'b3', 'proven'],
    ]);
  });

  it('keeps the last proof of a guest whose latest drill failed', () => {
    const later = record('drill/4', '2026-12-06T11:00:00Z', result(1001, 'failed', 'a2', 'restore failed'));
    const [guest] = drillHistory([first, later]).guests;
    expect(guest).toMatchObject({
      vmid: 1001,
      lastProven: { volid: 'a1', operationId: 'drill/1' },
      lastDrill: { outcome: 'failed', volid: 'a2' },
    });
  });

  it('counts a record written twice (a retried activity) once', () => {
    expect(drillHistory([first, first, second]).findings[0]!.failures).toBe(
      drillHistory([first, second]).findings[0]!.failures,
    );
  });
});
