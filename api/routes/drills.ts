/**
 * The restore drills' history: when each guest's backups were last proven restorable, and the
 * findings — drills that failed and have not been made good by a later one. Read from the
 * records each drill operation writes (lib/backup/drills.ts), scheduled or asked for by hand.
 *
 * Mounted by listing `...drillRoutes(s)` with the other routers in api/app.ts.
 */
import { z } from 'zod';
import { createDrillStore, drillHistory, type DrillStore } from '../../lib/backup/drills.js';
import { requireEnvironment } from '../access.js';
import type { Services } from '../deps.js';
import type { Route } from '../route.js';
import { ErrorResponse } from '../schemas.js';
import { parseQuery } from '../validation.js';

const environment = z.string().regex(/^[a-z0-9][a-z0-9_-]*$/, 'must be an environment name');
const vmid = z.coerce.number().int().min(100).max(999_999_999);

const FindingsQuery = z.strictObject({
  environment,
  /** `open` (the default): not made good since; `resolved`: proven again by a later drill. */
  state: z.enum(['open', 'resolved', 'all']).default('open'),
  vmid: vmid.optional(),
});
const ProvenQuery = z.strictObject({ environment, vmid: vmid.optional() });

const DrillFindingList = z
  .object({
    environment: z.string(),
    findings: z.array(
      z.object({
        id: z.string().describe('the operation that first failed, # the guest'),
        vmid: z.number(),
        name: z.string(),
        volid: z.string().describe('the backup the latest failed drill restored'),
        reason: z.string(),
        since: z.string().describe('the first failed drill since the guest was last proven'),
        lastFailedAt: z.string(),
        failures: z.number(),
        operationId: z.string().describe('the latest failed drill operation'),
        state: z.enum(['open', 'resolved']),
        resolvedAt: z.string().optional(),
        resolvedBy: z.string().optional().describe('the drill operation that proved the guest again'),
      }),
    ),
  })
  .meta({ id: 'DrillFindingList' });

const ProvenList = z
  .object({
    environment: z.string(),
    guests: z.array(
      z.object({
        vmid: z.number(),
        name: z.string(),
        type: z.enum(['qemu', 'lxc']),
        lastProven: z
          .object({
            at: z.string().describe('when the drill ended'),
            volid: z.string(),
            backupCtime: z.number().describe('when the proven backup was taken (epoch seconds)'),
            seconds: z.number().describe('the restore and the check, in seconds'),
            operationId: z.string(),
          })
          .optional()
          .describe('absent when no drill has proven a backup of the guest'),
        lastDrill: z.object({
          at: z.string(),
          outcome: z.enum(['proven', 'failed']),
          volid: z.string(),
          operationId: z.string(),
        }),
      }),
    ),
  })
  .meta({ id: 'ProvenList' });

const errors = {
  400: { description: 'invalid request; `details` names each field', schema: ErrorResponse },
  401: { description: 'no valid bearer token', schema: ErrorResponse },
  403: { description: 'the token’s roles or environments do not allow this', schema: ErrorResponse },
} as const;

export function drillRoutes(s: Services, store: DrillStore = createDrillStore(s.config.backups.drill_dir)): Route[] {
  const history = async (env: string) => drillHistory(await store.list(env));
  return [
    {
      method: 'GET',
      path: '/v1/backups/findings',
      tag: 'backups',
      summary: 'Failed restore drills not made good since',
      description:
        'One finding per guest whose restore drill failed: the backup it tried, why, since when and how often. A later drill ' +
        'that proves the guest restorable resolves it (`state=resolved` lists those, `state=all` both).',
      access: 'read',
      query: FindingsQuery,
      responses: { 200: { description: 'findings, latest failure first', schema: DrillFindingList }, ...errors },
      handler: async (c) => {
        const query = parseQuery(c, FindingsQuery);
        requireEnvironment(c, s.config, query.environment);
        const findings = (await history(query.environment)).findings.filter(
          (f) =>
            (query.state === 'all' || f.state === query.state) && (query.vmid === undefined || f.vmid === query.vmid),
        );
        return c.json({ environment: query.environment, findings } satisfies z.infer<typeof DrillFindingList>);
      },
    },
    {
      method: 'GET',
      path: '/v1/backups/proven',
      tag: 'backups',
      summary: 'When each guest’s backups were last proven restorable',
      description:
        'Per drilled guest: the newest drill that proved a backup of it (the backup, when it was taken, how long restore and check took) and its latest drill.',
      access: 'read',
      query: ProvenQuery,
      responses: { 200: { description: 'guests by VMID', schema: ProvenList }, ...errors },
      handler: async (c) => {
        const query = parseQuery(c, ProvenQuery);
        requireEnvironment(c, s.config, query.environment);
        const guests = (await history(query.environment)).guests.filter(
          (g) => query.vmid === undefined || g.vmid === query.vmid,
        );
        return c.json({ environment: query.environment, guests } satisfies z.infer<typeof ProvenList>);
      },
    },
  ];
}
