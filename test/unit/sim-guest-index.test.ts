/**
 * The simulator's guests by node: cluster/resources adds up each node's memory and CPU from
 * the guests on it, so that view must follow every move, creation and removal.
 */
import { describe, expect, it } from 'vitest';
import { Guest, GuestMap } from '../../sim/state.js';

const guest = (vmid: number, node: string) =>
  new Guest(vmid, 'qemu', node, { name: `vm${vmid}` }, 0.1, 0.5, `10.0.0.${vmid % 250}`);
const on = (guests: GuestMap, node: string) => guests.on(node).map((g) => g.vmid);

describe('guests by node', () => {
  it("lists a node's guests in the order the cluster lists them", () => {
    const guests = new GuestMap();
    for (const [vmid, node] of [
      [103, 'a'],
      [101, 'b'],
      [102, 'a'],
      [100, 'a'],
    ] as const)
      guests.set(vmid, guest(vmid, node));
    expect(on(guests, 'a')).toEqual([103, 102, 100]);
    expect(on(guests, 'b')).toEqual([101]);
    expect(on(guests, 'c')).toEqual([]);
  });

  it('follows a guest that changes node, keeping its place in the order', () => {
    const guests = new GuestMap();
    for (const vmid of [100, 101, 102]) guests.set(vmid, guest(vmid, vmid === 101 ? 'b' : 'a'));
    guests.get(102)!.node = 'b';
    guests.get(100)!.node = 'b';
    expect(on(guests, 'a')).toEqual([]);
    expect(on(guests, 'b')).toEqual([100, 101, 102]);
  });

  it('forgets a removed guest, and a replaced one takes its place', () => {
    const guests = new GuestMap();
    for (const vmid of [100, 101, 102]) guests.set(vmid, guest(vmid, 'a'));
    const removed = guests.get(101)!;
    guests.delete(101);
    removed.node = 'b';
    expect(on(guests, 'b')).toEqual([]);
    guests.set(100, guest(100, 'b'));
    expect(on(guests, 'a')).toEqual([102]);
    expect(on(guests, 'b')).toEqual([100]);
    expect([...guests.keys()]).toEqual([100, 102]);
  });
});
