/**
 * VMIDs and names of new guests. A VMID comes from the environment's VM range and is never
 * one a guest already has; the name follows the naming policy (`auto-{service}-{vmid}` unless
 * configured otherwise). PVE's own check at create time is the final word — these functions
 * only choose the candidates.
 */
import type { VmidRange } from '../config/schema.js';

/** Free VMIDs in `range`, lowest first, skipping those in use or held by other creates. */
export function* vmidCandidates(range: VmidRange, taken: (vmid: number) => boolean): Generator<number> {
  for (let vmid = range.min; vmid <= range.max; vmid++) if (!taken(vmid)) yield vmid;
}

export class NamingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NamingError';
  }
}

const DNS_NAME = /^(?=.{1,63}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?$/i;

/** A service name usable inside a guest name: lowercase letters, digits and dashes. */
export const SERVICE_PATTERN = /^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$/;

/**
 * The name the policy gives a guest. Placeholders: `{service}`, `{vmid}`. The result must be
 * a DNS label, since PVE uses it as the guest's hostname.
 */
export function guestName(pattern: string, values: { service: string; vmid: number }): string {
  const name = pattern.replace(/\{(\w+)\}/g, (whole, key: string) => {
    if (key === 'service') return values.service;
    if (key === 'vmid') return String(values.vmid);
    throw new NamingError(`naming.pattern '${pattern}' has an unknown placeholder ${whole} (use {service} and {vmid})`);
  });
  if (!DNS_NAME.test(name)) {
    throw new NamingError(
      `naming.pattern '${pattern}' gives '${name}', which is not a DNS name (letters, digits, dashes; at most 63)`,
    );
  }
  return name;
}

/** Whether a name could have come from the pattern for this service (any VMID). */
export function followsPattern(pattern: string, service: string, name: string): boolean {
  const source = pattern
    .split(/(\{\w+\})/)
    .map((part) => (part === '{vmid}' ? '\\d+' : part === '{service}' ? escape(service) : escape(part)))
    .join('');
  return new RegExp(`^${source}$`, 'i').test(name);
}

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
