/**
 * Building VM templates from template runbooks: the plan (the runbook's plan, plus what a
 * template build owes the operator: no duplicate of an existing template, a replacement only
 * when asked, the old template removed only after the new one is verified) and the
 * verification of the result read back from PVE.
 */
import { ApplicationFailure } from '@temporalio/activity';
import type { TemplateBuildInput } from '../lib/operations/catalog.js';
import { compareGuestConfig, expectedGuestConfig } from '../lib/runbooks/config-check.js';
import { finishStep, type ResolvedStep } from '../lib/runbooks/plan.js';
import type { Value } from '../lib/runbooks/placeholders.js';
import { parseTags } from '../lib/inventory.js';
import type { PlanDraft, PlanStep } from '../lib/operations/plan.js';
import { classified, fail } from './failures.js';
import {
  operationId,
  planStepsOf,
  prepareRunbook,
  type RunbookActivityDeps,
  type RunbookPlanDetails,
} from './runbook.js';
import { Failure } from '../lib/operations/failures.js';

export interface ExistingTemplate {
  vmid: number;
  node: string;
  name: string;
}

export interface TemplateBuildDetails extends RunbookPlanDetails {
  /** The template's name: the runbook's `name` parameter. */
  name: string;
  /** A template that already has the name. Without replaceExisting the build stops here. */
  existing?: ExistingTemplate;
  /** With replaceExisting: removes the old template once the new one is verified. */
  removePrevious?: ResolvedStep;
}

export interface VerifiedTemplate {
  vmid: number;
  node: string;
  name: string;
  tags: string[];
  /** Config keys checked against what the runbook set. */
  checked: string[];
}

function removalOf(existing: ExistingTemplate): ResolvedStep {
  return {
    id: 'remove-previous',
    description: `remove the previous template ${existing.vmid} '${existing.name}' on ${existing.node}, now that the new one is verified`,
    kind: 'api',
    api: 'qemuDestroy',
    method: 'DELETE',
    params: { node: existing.node, vmid: existing.vmid, purge: true, 'destroy-unreferenced-disks': true },
    async: true,
    destructive: true,
    verifyName: existing.name,
    pending: [],
    captures: [],
    timeoutMs: 2 * 3_600_000,
  };
}

export function createTemplateBuildActivities(deps: RunbookActivityDeps) {
  return {
    async planTemplateBuild(input: TemplateBuildInput): Promise<PlanDraft<TemplateBuildDetails>> {
      const { stored, details } = await prepareRunbook(deps, input, operationId());
      if (!stored.runbook.steps.some((s) => s.kind === 'api' && s.api === 'qemuTemplate')) {
        fail(
          Failure.PlanRefused,
          `runbook: ${stored.name} does not build a template (no qemuTemplate step); run it as a runbook-run instead`,
        );
      }
      const name = details.parameters['name'];
      if (typeof name !== 'string') {
        fail(
          Failure.PlanRefused,
          `runbook: ${stored.name} has no name parameter; a template runbook names its template with one`,
        );
      }
      const client = await deps.pve(input.environment);
      const guests = await classified('write', () => client.cluster.resources({ type: 'vm' }));
      const vmid = details.parameters['vmid'];
      const taken = typeof vmid === 'number' ? guests.find((g) => g.vmid === vmid) : undefined;
      if (taken)
        fail(Failure.PlanRefused, `parameters.vmid: VMID ${vmid} exists ('${taken.name ?? ''}' on ${taken.node})`);

      const sameName = guests.filter((g) => g.name === name && (g.type === 'qemu' || g.type === 'lxc'));
      if (sameName.length > 1) {
        fail(
          Failure.PlanRefused,
          `parameters.name: ${sameName.length} guests are named '${name}' (${sameName.map((g) => g.vmid).join(', ')}); choose a unique name`,
        );
      }
      const found = sameName[0];
      if (found && !found.template) {
        fail(
          Failure.PlanRefused,
          `parameters.name: '${name}' is ${found.type === 'qemu' ? 'VM' : 'CT'} ${found.vmid} on ${found.node}, not a template; choose another name`,
        );
      }
      const existing = found ? { vmid: found.vmid!, node: found.node!, name } : undefined;
      const base = { ...details, name, ...(existing ? { existing } : {}) };

      if (existing && !input.replaceExisting) {
        return {
          summary: `template '${name}' exists as ${existing.vmid} on ${existing.node}: nothing to build (ask for replaceExisting to rebuild it)`,
          risk: 'low',
          reasons: ['changes nothing'],
          steps: [],
          warnings: [`template '${name}' exists (${existing.vmid} on ${existing.node})`],
          nodes: [existing.node],
          vmids: [existing.vmid],
          estimatedDurationMs: 0,
          details: base,
        };
      }

      const removePrevious = existing ? removalOf(existing) : undefined;
      const { plan } = details;
      const steps: PlanStep[] = [
        ...planStepsOf(plan),
        {
          id: 'verify',
          action: 'verify-template',
          name,
          node: details.node,
          description: `read the template's config back and check it holds what the runbook set`,
        },
        ...(removePrevious
          ? [
              {
                id: removePrevious.id,
                action: 'api:qemuDestroy',
                vmid: existing!.vmid,
                name,
                node: existing!.node,
                description: removePrevious.description,
              },
            ]
          : []),
      ];
      return {
        summary: `build template '${name}' from runbook ${details.runbook} on ${details.node}${existing ? `, replacing ${existing.vmid}` : ''}`,
        risk: existing ? 'high' : plan.risk === 'high' ? 'high' : 'medium',
        reasons: [
          ...(existing ? [`replaces template ${existing.vmid} '${name}' (removed after the new one is verified)`] : []),
          'creates a VM and its disks, and converts it into a template',
          ...plan.reasons.filter((r) => r !== 'creates or changes cluster resources'),
        ],
        steps,
        warnings: plan.skipped.map((s) => `step ${s.id} does not run here (${s.why})`),
        nodes: [...new Set([details.node, ...(existing ? [existing.node] : [])])],
        vmids: existing ? [existing.vmid] : [],
        estimatedDurationMs: plan.steps.length * 20_000,
        details: { ...base, ...(removePrevious ? { removePrevious } : {}) },
      };
    },

    /**
     * Reads the template back: it must be a template with the expected name, and hold every
     * setting the runbook's steps set (as PVE stores them).
     */
    async verifyTemplate(args: {
      environment: string;
      node: string;
      vmid: number;
      name: string;
      steps: ResolvedStep[];
      vars: Record<string, Value>;
    }): Promise<VerifiedTemplate> {
      const client = await deps.pve(args.environment);
      const [config, resources] = await classified('write', () =>
        Promise.all([
          client.qemu.config({ node: args.node, vmid: args.vmid }),
          client.cluster.resources({ type: 'vm' }),
        ]),
      );
      const expected = expectedGuestConfig(args.steps.map((s) => finishStep(s, args.vars)));
      const problems = compareGuestConfig(expected, config).map(
        (m) => `${m.key}: expected ${m.expected}, PVE has ${m.actual ?? '(unset)'}`,
      );
      if (config.name !== args.name)
        problems.unshift(`name: expected ${args.name}, PVE has ${config.name ?? '(unset)'}`);
      const listed = resources.find((r) => r.vmid === args.vmid);
      if (!config.template || !listed?.template) problems.unshift('template: the VM is not a template');
      if (problems.length > 0) {
        throw ApplicationFailure.create({
          type: Failure.TemplateVerificationFailed,
          nonRetryable: true,
          message: `template ${args.vmid} does not hold what the runbook set: ${problems.join('; ')}`,
        });
      }
      return {
        vmid: args.vmid,
        node: args.node,
        name: args.name,
        tags: parseTags(config.tags),
        checked: Object.keys(expected),
      };
    },
  };
}

export type TemplateBuildActivities = ReturnType<typeof createTemplateBuildActivities>;
