/** What an API handler gets: the cluster, the caller, its verified parameters, the answering node. */
import type { z } from 'zod';
import type { EndpointName, Endpoints } from '../../lib/pve/registry.js';
import type { Caller, Cluster } from '../cluster.js';
import type { Can } from '../ops/views.js';

export interface HandlerContext<P> {
  cluster: Cluster;
  caller: Caller;
  params: P;
  /** The node whose listener answered (for `local` flags and proxying). */
  local: string;
  /** Whether the caller holds any of `privs` at an ACL path. */
  can: Can;
  /** SHA-256 fingerprint of a node's own API certificate, for node listings. */
  fingerprintOf: (node: string) => string;
}

/** A handler's answer when the envelope carries more than `data` (e.g. `total` for task logs). */
export class Envelope {
  constructor(readonly body: Record<string, unknown>) {}
}

export type Handler<N extends EndpointName> = (ctx: HandlerContext<z.output<Endpoints[N]['params']>>) => unknown;

export type Handlers = { [N in EndpointName]?: Handler<N> };
