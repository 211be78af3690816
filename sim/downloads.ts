/**
 * What lives at a download URL, as far as the simulator is concerned. The simulator cannot
 * fetch the internet, so every URL serves real, deterministic bytes generated from the URL,
 * and every checksum — PVE's `download-url` verification, `sha256sum` on a node, the demo's
 * list of offered downloads — is a hash of those bytes, never a typed-in value.
 *
 * The bytes are a small stand-in (CONTENT_BYTES) for a file of the declared size: task
 * durations, the cost model and storage accounting use the declared (simulated) size, because
 * a 3 GiB ISO held in memory would only slow the simulator down and change nothing it models.
 */
import { createHash } from 'node:crypto';
import type { ResolvedScenario } from './scenario.js';
import { unitHash } from './state.js';
import { MiB } from './units.js';

export const CONTENT_BYTES = 256 * 1024;

/** SHA-256 in counter mode over the URL: the same URL always serves the same bytes. */
export function downloadContent(url: string): Buffer {
  const blocks: Buffer[] = [];
  for (let i = 0; i * 32 < CONTENT_BYTES; i++) blocks.push(createHash('sha256').update(`${url}\n${i}`).digest());
  return Buffer.concat(blocks).subarray(0, CONTENT_BYTES);
}

export function downloadChecksum(url: string, algorithm = 'sha256'): string {
  return createHash(algorithm).update(downloadContent(url)).digest('hex');
}

export interface RemoteFile {
  /** Simulated size in bytes: the scenario's declared one, else derived from the URL. */
  size: number;
  checksum(algorithm: string): string;
  /** HTTP failure the server answers with, if any. */
  httpStatus?: number;
}

type DownloadSpec = ResolvedScenario['downloads'][number];

export function remoteFile(downloads: ReadonlyMap<string, DownloadSpec>, url: string): RemoteFile {
  const spec = downloads.get(url);
  let content: Buffer | undefined;
  return {
    size: spec?.size ?? Math.round((50 + unitHash(`size/${url}`) * 750) * MiB),
    ...(spec?.http_status ? { httpStatus: spec.http_status } : {}),
    checksum: (algorithm) =>
      createHash(algorithm)
        .update((content ??= downloadContent(url)))
        .digest('hex'),
  };
}

export interface OfferedDownload {
  url: string;
  size: number;
  sha256: string;
  /** For sources that publish SHA512SUMS (Debian). */
  sha512: string;
}

/** The scenario's downloads that succeed, with their checksums: what the demo offers to fetch. */
export function offeredDownloads(downloads: ReadonlyMap<string, DownloadSpec>): OfferedDownload[] {
  return [...downloads.values()]
    .filter((d) => !d.http_status)
    .map((d) => {
      const file = remoteFile(downloads, d.url);
      return { url: d.url, size: d.size, sha256: file.checksum('sha256'), sha512: file.checksum('sha512') };
    });
}
