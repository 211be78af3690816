/**
 * Where an environment's nodes may download from without a person approving it. PVE's
 * `download-url` (ISO imports, template images) fetches from inside the cluster network, so a
 * URL naming a loopback, link-local or private address, or carrying credentials, could reach
 * what no caller of the API should: such URLs, and hosts outside the configured allow-list,
 * make the plan high risk (an approver decides) instead of being approved by policy.
 */
import { BlockList, isIP } from 'node:net';
import type { DownloadPolicy } from './schema.js';

const INTERNAL = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this" network
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local (cloud metadata services live here)
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
] as const) {
  INTERNAL.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 127], // unspecified and loopback
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
] as const) {
  INTERNAL.addSubnet(network, prefix, 'ipv6');
}

/** Whether a URL host (as `new URL` normalises it) is loopback, link-local or private. */
function isInternalHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(host)?.[1];
  if (mapped) return INTERNAL.check(mapped, 'ipv4');
  const family = isIP(host);
  return family !== 0 && INTERNAL.check(host, family === 4 ? 'ipv4' : 'ipv6');
}

/** An allow-list entry: a URL prefix (`https://mirror.lan/iso/`), a host, or `*.` and a domain. */
function allows(entry: string, url: URL): boolean {
  if (/^https?:\/\//i.test(entry)) return url.href.startsWith(new URL(entry).href);
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const wanted = entry.toLowerCase();
  return wanted.startsWith('*.') ? host.endsWith(wanted.slice(1)) : host === wanted;
}

/**
 * Why `url` lies outside the policy, or undefined when it is inside. Hosts are judged by the
 * name in the URL: a public name that resolves to a private address is caught only by an
 * allow-list (set one in production).
 */
export function downloadOutsidePolicy(url: string, policy: DownloadPolicy): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${url} is not a URL`;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `${parsed.protocol} is not http or https`;
  if ((parsed.username || parsed.password) && !policy.credentials_in_urls) {
    return `${parsed.hostname}: the URL carries credentials (user:password@)`;
  }
  const listed = policy.allow?.some((entry) => allows(entry, parsed));
  if (isInternalHost(parsed.hostname) && !listed) {
    return `${parsed.hostname} is a loopback, link-local or private address, and downloads.allow does not name it`;
  }
  if (policy.allow && !listed)
    return `${parsed.hostname} is not in downloads.allow (${policy.allow.join(', ') || 'empty'})`;
  return undefined;
}

/** The reason a plan gives when a download outside the policy makes it high risk. */
export function outsidePolicyReason(problem: string): string {
  return `downloads from outside the environment's download policy (${problem}): a person must approve`;
}
