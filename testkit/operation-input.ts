/** A request body validated as the API validates it, with the meta the API would add (what tests and benchmarks start workflows with). */
import type { z } from 'zod';
import type { OperationMeta, Risk } from '../lib/operations/plan.js';

export function operationInput<Body extends z.ZodType<{ environment: string; dryRun: boolean }>>(
  schema: Body,
  body: unknown,
  requester = 'operator',
  /** The risks the policy approves without a person (a benchmark runs unattended: low and medium). */
  autoApprove: Risk[] = ['low'],
): z.output<Body> & { meta: OperationMeta } {
  const parsed = schema.parse(body);
  return {
    ...parsed,
    meta: {
      requester,
      environment: parsed.environment,
      dryRun: parsed.dryRun,
      approvalTimeoutMs: 10 * 60_000,
      autoApprove,
    },
  };
}
