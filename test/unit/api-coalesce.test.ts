/**
 * Concurrent reads of one key share a call, and no caller gets an answer read before it asked.
 */
import { describe, expect, it } from 'vitest';
import { coalesced } from '../../api/coalesce.js';

/** A read the test finishes by hand; `started` counts the calls made. */
function manualReads() {
  const pending: ((value: number) => void)[] = [];
  let started = 0;
  const read = () => new Promise<number>((resolve) => pending.push(resolve));
  return {
    read: () => (started++, read()),
    started: () => started,
    finish: async (value: number) => {
      pending.shift()!(value);
      // Let the settled read hand over to the one queued behind it.
      await new Promise((r) => setImmediate(r));
    },
  };
}

describe('coalesced reads', () => {
  it('gives callers that arrive during a read the one read after it, shared', async () => {
    const shared = coalesced<number>();
    const reads = manualReads();
    const first = shared('op', reads.read);
    const second = shared('op', reads.read);
    const third = shared('op', reads.read);
    expect(reads.started()).toBe(1);
    await reads.finish(1);
    expect(await first).toBe(1);
    expect(reads.started()).toBe(2);
    await reads.finish(2);
    expect([await second, await third]).toEqual([2, 2]);
  });

  it('lets a caller content with the read in flight join it', async () => {
    const shared = coalesced<number>();
    const reads = manualReads();
    const first = shared('inventory', reads.read);
    const joined = shared('inventory', reads.read, { joinRunning: true });
    await reads.finish(7);
    expect([await first, await joined, reads.started()]).toEqual([7, 7, 1]);
  });

  it('reads different keys separately, and reads again after a failure', async () => {
    const shared = coalesced<number>();
    let calls = 0;
    await expect(shared('a', async () => (calls++, Promise.reject(new Error('PVE down'))))).rejects.toThrow('PVE down');
    expect(await shared('a', async () => (calls++, 1))).toBe(1);
    expect(await shared('b', async () => (calls++, 2))).toBe(2);
    expect(calls).toBe(3);
  });
});
