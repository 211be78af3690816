/**
 * Bulk actions by tag: which guests a tag expression selects, and each one's steps — planned
 * with the same rules as a single-guest action, from each guest's own pre-flight summary.
 */
import { backupBefore } from '../lib/backup/before.js';
import { inventoryFromResources, type GuestView } from '../lib/inventory.js';
import { mapBounded } from '../lib/lifecycle/bounded.js';
import {
  ACTION_RISK,
  planGuestSteps,
  StepRefusal,
  type GuestPreflight,
  type GuestType,
} from '../lib/lifecycle/guest-steps.js';
import { matchesTags } from '../lib/lifecycle/tag-expression.js';
import type { BulkActionInput } from '../lib/operations/catalog.js';
import type { PlanDraft, PlanStep } from '../lib/operations/plan.js';
import type { WorkerDeps } from '../worker/deps.js';
import { classified, fail } from './failures.js';
import { preflightLine, readPreflight, requestedTags } from './vm.js';
import { Failure } from '../lib/operations/failures.js';

export interface BulkTarget {
  vmid: number;
  name: string;
  type: GuestType;
  node: string;
  /** The pre-flight summary, in one line. */
  preflight: string;
  steps: PlanStep[];
}

export interface BulkPlanDetails {
  targets: BulkTarget[];
  /** Matching guests the plan leaves alone, and why. */
  skipped: { vmid: number; name: string; why: string }[];
  maxParallel: number;
}

/** Guests already where the action would leave them. */
function alreadyThere(action: BulkActionInput['action'], guest: GuestView): string | undefined {
  if (action === 'start' && guest.status === 'running') return 'already running';
  if ((action === 'stop' || action === 'shutdown') && guest.status === 'stopped') return 'already stopped';
  return undefined;
}

/** Pre-flight reads in parallel, bounded so a big selection does not flood the API. */
const PREFLIGHT_READS = 16;

export function createBulkActionActivities(deps: Pick<WorkerDeps, 'pve' | 'config'>) {
  return {
    async planBulkAction(input: BulkActionInput): Promise<PlanDraft<BulkPlanDetails>> {
      const client = await deps.pve(input.environment);
      const policy = deps.config.environments[input.environment]!.policy;
      return classified('write', async () => {
        const expression = requestedTags(input.tags);
        const { guests } = inventoryFromResources(await client.cluster.resources({ type: 'vm' }));
        const matching = guests.filter(
          (g) =>
            !g.template &&
            input.types.includes(g.type) &&
            (!input.nodes || input.nodes.includes(g.node)) &&
            matchesTags(expression, g.tags),
        );
        if (matching.length === 0) {
          fail(
            Failure.PlanRefused,
            `tags: no ${input.types.join(' or ')} guest${input.nodes ? ` on ${input.nodes.join(', ')}` : ''} matches '${input.tags}'`,
          );
        }

        const skipped: BulkPlanDetails['skipped'] = [];
        const candidates = matching.filter((g) => {
          const why = alreadyThere(input.action, g);
          if (why) skipped.push({ vmid: g.vmid, name: g.name, why });
          return !why;
        });
        const now = new Date();
        const planned = await mapBounded(candidates, PREFLIGHT_READS, async (g): Promise<BulkTarget | undefined> => {
          const preflight: GuestPreflight = await readPreflight(client, {
            vmid: g.vmid,
            type: g.type,
            node: g.node,
            status: g.status,
            ...(g.haState ? { haState: g.haState } : {}),
          });
          try {
            const steps = planGuestSteps(
              {
                action: input.action,
                vmid: g.vmid,
                name: g.name,
                shutdownTimeoutSeconds: input.shutdownTimeoutSeconds,
                forceStopAfterTimeout: input.forceStopAfterTimeout,
                ...(input.snapshot ? { snapshot: input.snapshot } : {}),
              },
              preflight,
              { snapshotBeforeChange: policy.snapshot_before_change, now },
            );
            return {
              vmid: g.vmid,
              name: g.name,
              type: g.type,
              node: g.node,
              preflight: preflightLine(g, g.name, preflight),
              steps: [...(input.action === 'delete' ? backupBefore(policy, 'delete', g) : []), ...steps].map((s) => ({
                ...s,
                id: `${g.vmid}/${s.id}`,
              })),
            };
          } catch (err) {
            if (!(err instanceof StepRefusal)) throw err;
            skipped.push({ vmid: g.vmid, name: g.name, why: err.message });
            return undefined;
          }
        });
        const targets: BulkTarget[] = [];
        for (const p of planned) {
          if (!p.ok) throw p.error;
          if (p.value) targets.push(p.value);
        }
        const { risk, why } = ACTION_RISK[input.action];
        const nodes = [...new Set(targets.map((t) => t.node))].sort();
        const waves = Math.ceil(targets.length / input.maxParallel);
        // Every guest skipped is an answer, not a refusal: a plan without steps completes as nothing-to-do.
        const nothing = targets.length === 0;
        return {
          summary: nothing
            ? `nothing to do: every guest matching '${input.tags}' is skipped (${skipped.map((s) => `${s.vmid}: ${s.why}`).join('; ')})`
            : `${input.action} ${targets.length} guest${targets.length === 1 ? '' : 's'} matching '${input.tags}' on ${nodes.join(', ')}, ${input.maxParallel} at a time`,
          risk: nothing ? 'low' : risk,
          reasons: nothing ? ['changes nothing'] : [why, `affects ${targets.length} guests`],
          steps: targets.flatMap((t) => t.steps),
          warnings: skipped.map((s) => `${s.vmid} '${s.name}' is left alone: ${s.why}`),
          nodes,
          vmids: targets.map((t) => t.vmid),
          estimatedDurationMs: waves * 15_000,
          details: { targets, skipped, maxParallel: input.maxParallel },
        };
      });
    },
  };
}

export type BulkActionActivities = ReturnType<typeof createBulkActionActivities>;
