/**
 * A route is its handler plus what the rest of the app needs to know about it: who may call
 * it, what it reads and answers (zod schemas, which also become the OpenAPI document), and
 * the audit action it records. Routers are lists of these; app.ts wires them up.
 */
import type { Context } from 'hono';
import type { z } from 'zod';
import type { AuditEntry } from '../lib/audit/log.js';
import type { Identity, Permission } from './auth.js';

/** What the audit record of a state-changing request says beyond actor and action. */
export type AuditNote = Partial<Pick<AuditEntry, 'operationId' | 'kind' | 'environment' | 'result' | 'detail'>>;

export interface ApiEnv {
  Variables: {
    requestId: string;
    /** Set for every route that is not public. */
    identity: Identity;
    auditNote: AuditNote;
  };
}

export type ApiContext = Context<ApiEnv>;

export interface ResponseSpec {
  description: string;
  schema?: z.ZodType;
}

export interface Route {
  method: 'GET' | 'POST';
  /** OpenAPI form: `/v1/operations/{id}`. */
  path: string;
  tag: string;
  summary: string;
  description?: string;
  access: 'public' | Permission;
  params?: z.ZodType;
  query?: z.ZodType;
  body?: { schema: z.ZodType; required: boolean };
  responses: Record<number, ResponseSpec>;
  /** Audit action recorded for every call (state-changing routes). */
  audit?: string;
  /** Left out of the OpenAPI document (catch-alls that only produce errors). */
  hidden?: boolean;
  handler: (c: ApiContext) => Promise<Response>;
}

/** Adds fields to the audit record of the current request. */
export function noteAudit(c: ApiContext, note: AuditNote): void {
  const current = c.get('auditNote') ?? {};
  c.set('auditNote', { ...current, ...note, detail: { ...current.detail, ...note.detail } });
}
