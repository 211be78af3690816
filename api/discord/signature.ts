/**
 * Discord signs every interaction: Ed25519 over `timestamp + body` with the application's
 * key. A request is taken only when the signature verifies, the timestamp is recent, and
 * the same signature has not been seen before (a captured request replayed within the
 * window is refused too).
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it. */
const ed25519SpkiPrefix = Buffer.from('302a300506032b6570032100', 'hex');

export function ed25519PublicKey(hex: string): KeyObject {
  return createPublicKey({
    key: Buffer.concat([ed25519SpkiPrefix, Buffer.from(hex, 'hex')]),
    format: 'der',
    type: 'spki',
  });
}

export type Verdict = { ok: true } | { ok: false; why: string };

export function createVerifier(
  publicKeyHex: string,
  maxAgeMs: number,
  now: () => Date,
): (signature: string | undefined, timestamp: string | undefined, body: string) => Verdict {
  const key = ed25519PublicKey(publicKeyHex);
  /** Signatures seen within the window, with when they expire. */
  const seen = new Map<string, number>();

  return (signature, timestamp, body) => {
    if (!signature || !timestamp) return { ok: false, why: 'missing X-Signature-Ed25519 or X-Signature-Timestamp' };
    if (!/^[0-9a-f]{128}$/i.test(signature) || !/^\d{1,12}$/.test(timestamp))
      return { ok: false, why: 'malformed signature headers' };
    if (!verify(null, Buffer.from(timestamp + body), key, Buffer.from(signature, 'hex')))
      return { ok: false, why: 'bad signature' };
    const at = now().getTime();
    if (Math.abs(at - Number(timestamp) * 1000) > maxAgeMs) return { ok: false, why: 'stale timestamp' };
    for (const [sig, expires] of seen) if (expires < at) seen.delete(sig);
    if (seen.has(signature)) return { ok: false, why: 'replayed' };
    seen.set(signature, at + 2 * maxAgeMs);
    return { ok: true };
  };
}
