/**
 * Shared snapshots of what PVE says, at most `maxAgeMs` old: every request for an environment
 * within that bound is answered from one read, and concurrent requests past it share one
 * read (api/coalesce.ts); a fresh read is one started after it was asked for. A read that
 * fails is not kept: the next request reads again.
 */
import { createHash } from 'node:crypto';
import { coalesced } from './coalesce.js';

export interface Snapshot<V> {
  value: V;
  /** When the read that made it started (ms since the epoch): its age is counted from here. */
  readAt: number;
  /** Rendered answers by what was asked, each with its ETag, made once per snapshot. */
  rendered: Map<string, Rendered>;
}

export interface Rendered {
  body: string;
  etag: string;
}

export interface Snapshots<V> {
  /** The snapshot of `key`; `fresh` reads PVE again, whatever the age of the one held. */
  get(key: string, options: { fresh: boolean }): Promise<Snapshot<V>>;
}

export function snapshots<V>(read: (key: string) => Promise<V>, maxAgeMs: number, now: () => number): Snapshots<V> {
  const held = new Map<string, Snapshot<V>>();
  const shared = coalesced<Snapshot<V>>();
  return {
    async get(key, { fresh }) {
      const current = held.get(key);
      if (!fresh && current && now() - current.readAt <= maxAgeMs) return current;
      return shared(
        key,
        async () => {
          const readAt = now();
          const snapshot: Snapshot<V> = { value: await read(key), readAt, rendered: new Map() };
          held.set(key, snapshot);
          return snapshot;
        },
        { joinRunning: !fresh },
      );
    },
  };
}

/** The JSON answer for `ask` from a snapshot, rendered (and its ETag hashed) once per snapshot. */
export function render<V>(snapshot: Snapshot<V>, ask: string, answer: (value: V) => unknown): Rendered {
  let rendered = snapshot.rendered.get(ask);
  if (!rendered) {
    const body = JSON.stringify(answer(snapshot.value));
    rendered = { body, etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
    snapshot.rendered.set(ask, rendered);
  }
  return rendered;
}

/** Whether an `If-None-Match` header names this ETag (weak comparison, as RFC 9110 asks for it). */
export function matches(ifNoneMatch: string | undefined, etag: string): boolean {
  if (!ifNoneMatch) return false;
  if (ifNoneMatch.trim() === '*') return true;
  return ifNoneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}
