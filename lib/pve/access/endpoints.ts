/** Access control: `/access/*`. */
import { z } from 'zod';
import { defineEndpoint, perm, pveBoolean } from '../endpoint.js';
import { pve } from '../params.js';

export const access = {
  permissions: defineEndpoint({
    name: 'accessPermissions',
    method: 'GET',
    path: '/access/permissions',
    params: {
      path: pve.string().optional(),
      userid: pve
        .string({
          pattern: '(?^:^(?^:[^\\s:/]+)\\@(?^:[A-Za-z][A-Za-z0-9\\.\\-_]+)(?:!(?^:[A-Za-z][A-Za-z0-9\\.\\-_]+))?$)',
        })
        .optional(),
    },
    /** path -> privilege -> propagate (0/1). */
    returns: z.record(z.string(), z.record(z.string(), pveBoolean)),
    permission: { kind: 'or', checks: [{ kind: 'userid-param' }, perm('/access', ['Sys.Audit'])] },
    permissionNote: "Callers may read their own (and their tokens') permissions; others need Sys.Audit on /access.",
    async: false,
  }),
} as const;
