/**
 * A VM template from a template runbook (runbooks/ubuntu-2404-cloudinit.md and friends):
 *
 *   plan     the runbook's steps for this node and PVE version; an existing template of the
 *            same name is reported and nothing is built, unless replacing it was asked for
 *   approve  medium risk; high when it replaces a template
 *   apply    the steps as a saga (VMID allocated from the template range as the VM is
 *            created), then the result read back and verified, then the old template removed;
 *            a failure removes what was built, unless the operator asked to keep it
 */
import type { TemplateBuildDetails, VerifiedTemplate } from '../activities/template-build.js';
import type { TemplateBuildInput } from '../lib/operations/catalog.js';
import { runOperation } from './operation.js';
import { applyRunbookPlan, runResolvedStep, type ExtraStep, type RunbookOutcome } from './runbook-run.js';
import { reads } from './activity-presets.js';

const planning = reads();

/** Verification only reads. */
const checking = reads();

export type TemplateBuildResult =
  | { status: 'exists'; vmid: number; node: string; name: string }
  | { status: 'built'; template: VerifiedTemplate; replaced?: number; run: RunbookOutcome };

export async function templateBuild(input: TemplateBuildInput) {
  return runOperation<TemplateBuildDetails, TemplateBuildResult>('template-build', input.meta, {
    plan: () => planning.planTemplateBuild(input),
    apply: async (plan, op) => {
      const details = plan.details!;
      const { existing, removePrevious } = details;
      if (existing && !removePrevious) return { status: 'exists', ...existing };

      let verified: VerifiedTemplate | undefined;
      const extra: ExtraStep[] = [
        {
          id: 'verify',
          run: async (vars) => {
            verified = await checking.verifyTemplate({
              environment: input.environment,
              node: details.node,
              vmid: Number(vars['vmid']),
              name: details.name,
              steps: details.plan.steps,
              vars: { ...vars },
            });
          },
        },
        ...(removePrevious
          ? [
              {
                id: removePrevious.id,
                run: (vars: Parameters<ExtraStep['run']>[0]) =>
                  runResolvedStep(input.environment, removePrevious, vars),
              },
            ]
          : []),
      ];
      const run = await applyRunbookPlan(input.environment, details.plan, op, {
        keepOnFailure: input.keepOnFailure,
        extra,
      });
      return { status: 'built', template: verified!, ...(existing ? { replaced: existing.vmid } : {}), run };
    },
  });
}
