/**
 * Reading the audit log and checking its hash chain. A token scoped to some environments
 * reads only their records.
 */
import type { z } from 'zod';
import { requireEnvironment } from '../access.js';
import type { Services } from '../deps.js';
import type { Route } from '../route.js';
import { AuditQuery, AuditRecords, AuditVerificationSchema, ErrorResponse } from '../schemas.js';
import { parseQuery } from '../validation.js';

export function auditRoutes(s: Services): Route[] {
  return [
    {
      method: 'GET',
      path: '/v1/audit',
      tag: 'audit',
      summary: 'Audit records, oldest first (the newest `limit` that match)',
      description: '`action` matches exactly, or as a prefix when it ends in `*` (`api.operation.*`).',
      access: 'read',
      query: AuditQuery,
      responses: {
        200: { description: 'records', schema: AuditRecords },
        400: { description: 'invalid filter', schema: ErrorResponse },
      },
      handler: async (c) => {
        const query = parseQuery(c, AuditQuery);
        if (query.environment !== undefined) requireEnvironment(c, s.config, query.environment);
        const environment = query.environment ?? c.get('identity').environments;
        const records = await s.audit.read({ ...query, ...(environment !== undefined ? { environment } : {}) });
        return c.json({ records } satisfies z.infer<typeof AuditRecords>);
      },
    },
    {
      method: 'GET',
      path: '/v1/audit/verify',
      tag: 'audit',
      summary: 'Check the audit log’s hash chain',
      description: 'Reports the first edited, deleted, inserted or reordered line, if any.',
      access: 'read',
      responses: { 200: { description: 'the verdict', schema: AuditVerificationSchema } },
      handler: async (c) => c.json(await s.audit.verify()),
    },
  ];
}
