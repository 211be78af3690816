/**
 * Runbooks: what the runbooks/ directory holds, machine-readable (parameters, steps) and as
 * the markdown people read. A file that does not validate is listed with its problems rather
 * than hidden. Running and ingesting runbooks are operations (`runbook-run`,
 * `runbook-ingest`, `template-build`): POST /v1/operations/<kind>.
 */
import { z } from 'zod';
import { parseRunbookMarkdown, RunbookError } from '../../lib/runbooks/markdown.js';
import type { Runbook } from '../../lib/runbooks/schema.js';
import {
  defaultRunbooksDir,
  listRunbookNames,
  loadRunbook,
  readRunbookText,
  RunbookNotFoundError,
} from '../../lib/runbooks/store.js';
import type { Services } from '../deps.js';
import { ApiError } from '../errors.js';
import type { Route } from '../route.js';
import { ErrorResponse } from '../schemas.js';
import { parseParams } from '../validation.js';

const RunbookParameterView = z.object({
  name: z.string(),
  type: z.string(),
  description: z.string(),
  required: z.boolean(),
  default: z.union([z.string(), z.number(), z.boolean(), z.array(z.string())]).optional(),
  convention: z.string().optional(),
  allocate: z.boolean().optional(),
  values: z.array(z.string()).optional(),
});

const RunbookStepView = z.object({
  id: z.string(),
  kind: z.enum(['api', 'ssh', 'guest', 'ansible']),
  description: z.string(),
  /** The PVE endpoint, for API steps. */
  api: z.string().optional(),
  when: z.string().optional(),
  unless: z.string().optional(),
});

const RunbookSummary = z
  .object({
    name: z.string(),
    valid: z.boolean(),
    description: z.string().optional(),
    imageType: z.string().optional(),
    requires: z.array(z.string()).optional(),
    /** Builds a VM template: run it with the template-build operation. */
    template: z.boolean().optional(),
    /** Why the file does not validate (`path: reason`). */
    problems: z.array(z.string()).optional(),
  })
  .meta({ id: 'RunbookSummary' });

const RunbookList = z.object({ runbooks: z.array(RunbookSummary) });

const RunbookDetail = RunbookSummary.extend({
  parameters: z.array(RunbookParameterView),
  steps: z.array(RunbookStepView),
  cleanup: z.array(RunbookStepView.extend({ after: z.string(), on: z.enum(['failure', 'always']) })),
  notes: z.array(z.string()),
  markdown: z.string(),
  sha256: z.string(),
}).meta({ id: 'RunbookDetail' });

const RunbookNameParams = z.strictObject({
  name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be a runbook name (lowercase letters, digits, dashes)'),
});

function isTemplate(runbook: Runbook): boolean {
  return runbook.steps.some((s) => s.kind === 'api' && s.api === 'qemuTemplate');
}

function stepView(step: Runbook['steps'][number]): z.infer<typeof RunbookStepView> {
  return {
    id: step.id,
    kind: step.kind,
    description: step.description,
    ...(step.kind === 'api' ? { api: step.api } : {}),
    ...(step.when ? { when: step.when } : {}),
    ...(step.unless ? { unless: step.unless } : {}),
  };
}

function summary(name: string, runbook: Runbook): z.infer<typeof RunbookSummary> {
  return {
    name,
    valid: true,
    description: runbook.description,
    imageType: runbook.image_type,
    requires: runbook.requires,
    template: isTemplate(runbook),
  };
}

export function runbookRoutes(_s: Services, options: { runbooksDir?: string } = {}): Route[] {
  const dir = () => options.runbooksDir ?? defaultRunbooksDir();
  return [
    {
      method: 'GET',
      path: '/v1/runbooks',
      tag: 'runbooks',
      summary: 'Runbooks in runbooks/ (invalid files listed with their problems)',
      description: 'Run one with POST /v1/operations/runbook-run, or template-build for template runbooks.',
      access: 'read',
      responses: { 200: { description: 'runbooks', schema: RunbookList } },
      handler: async (c) => {
        const runbooks = await Promise.all(
          (await listRunbookNames(dir())).map(async (name) => {
            const text = (await readRunbookText(dir(), name)) ?? '';
            try {
              return summary(name, parseRunbookMarkdown(text, `${name}.md`).runbook);
            } catch (err) {
              if (!(err instanceof RunbookError)) throw err;
              return { name, valid: false, problems: [...err.issues] };
            }
          }),
        );
        return c.json({ runbooks } satisfies z.infer<typeof RunbookList>);
      },
    },
    {
      method: 'GET',
      path: '/v1/runbooks/{name}',
      tag: 'runbooks',
      summary: 'One runbook: parameters, steps, cleanup and its markdown',
      access: 'read',
      params: RunbookNameParams,
      responses: {
        200: { description: 'the runbook', schema: RunbookDetail },
        404: { description: 'no such runbook', schema: ErrorResponse },
        422: { description: 'the file does not validate; `details` lists each problem', schema: ErrorResponse },
      },
      handler: async (c) => {
        const { name } = parseParams(c, RunbookNameParams);
        let stored;
        try {
          stored = await loadRunbook(dir(), name);
        } catch (err) {
          if (err instanceof RunbookNotFoundError) throw new ApiError(404, 'not_found', err.message);
          if (err instanceof RunbookError) {
            throw new ApiError(
              422,
              'invalid_runbook',
              `runbooks/${name}.md does not validate`,
              err.issues.map((issue) => {
                const colon = issue.indexOf(': ');
                return { path: issue.slice(0, colon), message: issue.slice(colon + 2) };
              }),
            );
          }
          throw err;
        }
        const { runbook } = stored;
        const notes = runbook.notes === undefined ? [] : Array.isArray(runbook.notes) ? runbook.notes : [runbook.notes];
        return c.json({
          ...summary(name, runbook),
          parameters: Object.entries(runbook.parameters).map(([pname, p]) => ({
            name: pname,
            type: p.type,
            description: p.description,
            required: p.required,
            ...(p.default !== undefined ? { default: p.default } : {}),
            ...(p.convention ? { convention: p.convention } : {}),
            ...(p.allocate ? { allocate: true } : {}),
            ...(p.values ? { values: p.values } : {}),
          })),
          steps: runbook.steps.map(stepView),
          cleanup: runbook.cleanup.map((s) => ({ ...stepView(s), after: s.after, on: s.on })),
          notes,
          markdown: stored.markdown,
          sha256: stored.sha256,
        } satisfies z.infer<typeof RunbookDetail>);
      },
    },
  ];
}
