import { describe, expect, it } from 'vitest';
import { followsPattern, guestName, NamingError, vmidCandidates } from '../../lib/lifecycle/naming.js';

describe('naming policy', () => {
  it('fills {service} and {vmid} into the pattern', () => {
    expect(guestName('auto-{service}-{vmid}', { service: 'web', vmid: 1042 })).toBe('auto-web-1042');
    expect(guestName('{service}{vmid}', { service: 'db', vmid: 7 })).toBe('db7');
  });

  it('refuses a pattern with unknown placeholders or one that makes no DNS name', () => {
    expect(() => guestName('auto-{team}-{vmid}', { service: 'web', vmid: 1 })).toThrow(/unknown placeholder \{team\}/);
    expect(() => guestName('auto_{service}', { service: 'web', vmid: 1 })).toThrow(NamingError);
    expect(() => guestName('{service}-{vmid}-'.repeat(8), { service: 'web', vmid: 1 })).toThrow(/not a DNS name/);
  });
});

describe('VMID candidates', () => {
  it('yields the free VMIDs of the range, lowest first, skipping the taken ones', () => {
    const taken = new Set([1000, 1001, 1003]);
    const free = [...vmidCandidates({ min: 1000, max: 1005 }, (v) => taken.has(v))];
    expect(free).toEqual([1002, 1004, 1005]);
  });

  it('yields nothing when the range is full', () => {
    expect([...vmidCandidates({ min: 100, max: 102 }, () => true)]).toEqual([]);
  });
});

describe('recognising names the policy made', () => {
  it('matches any VMID for the service, and nothing else', () => {
    expect(followsPattern('auto-{service}-{vmid}', 'web', 'auto-web-1042')).toBe(true);
    expect(followsPattern('auto-{service}-{vmid}', 'web', 'auto-db-1042')).toBe(false);
    expect(followsPattern('auto-{service}-{vmid}', 'w.b', 'auto-web-1042')).toBe(false);
  });
});
