/**
 * Container maintenance: which running containers to patch, and the upgrade itself — `apt-get
 * update && apt-get upgrade` inside the container, run by `pct exec` over SSH on the node
 * that hosts it, with its output kept as the container's log.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { inventoryFromResources } from '../lib/inventory.js';
import { mapBounded } from '../lib/lifecycle/bounded.js';
import { safetySnapshotName } from '../lib/lifecycle/guest-steps.js';
import { matchesTags } from '../lib/lifecycle/tag-expression.js';
import type { LxcPatchInput } from '../lib/operations/catalog.js';
import { runCommand } from '../lib/ssh/client.js';
import type { PlanDraft, PlanStep } from '../lib/operations/plan.js';
import type { WorkerDeps } from '../worker/deps.js';
import { classified, fail } from './failures.js';
import { sshProblems } from './node-ssh.js';
import { describeGuest, requestedTags, verifyIdentity } from './vm.js';
import { Failure } from '../lib/operations/failures.js';

export interface PatchTarget {
  vmid: number;
  name: string;
  node: string;
  /** The safety snapshot taken first (absent when policy turns snapshots off). */
  snapshot?: string;
  steps: { snapshot?: PlanStep; patch: PlanStep; rollback?: PlanStep };
}

export interface PatchPlanDetails {
  containers: PatchTarget[];
  maxParallel: number;
  commandTimeoutSeconds: number;
}

export interface PatchLog {
  vmid: number;
  node: string;
  exitCode: number;
  /** Packages apt reported upgraded. */
  upgraded: number;
  /** The last lines of the command's output. */
  log: string[];
}

/** What runs inside each container. Non-interactive, keeping local config files on conflicts. */
export const UPGRADE_COMMAND =
  'export DEBIAN_FRONTEND=noninteractive; apt-get update && apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold upgrade';

const LOG_LINES = 40;

export function createLxcPatchActivities(deps: Pick<WorkerDeps, 'pve' | 'config' | 'sshTarget'>) {
  return {
    async planLxcPatch(input: LxcPatchInput): Promise<PlanDraft<PatchPlanDetails>> {
      const env = deps.config.environments[input.environment]!;
      const client = await deps.pve(input.environment);
      if (input.rollbackOnFailure && !env.policy.snapshot_before_change) {
        fail(
          Failure.PlanRefused,
          'rollbackOnFailure: rolling back needs the snapshot taken first, and policy.snapshot_before_change is off',
        );
      }
      return classified('write', async () => {
        const expression = input.tags ? requestedTags(input.tags) : undefined;
        const { guests } = inventoryFromResources(await client.cluster.resources({ type: 'vm' }));
        const matching = guests.filter(
          (g) =>
            g.type === 'lxc' &&
            !g.template &&
            (!input.nodes || input.nodes.includes(g.node)) &&
            (!expression || matchesTags(expression, g.tags)),
        );
        if (matching.length === 0) {
          fail(
            Failure.PlanRefused,
            `no container${input.tags ? ` matches '${input.tags}'` : ''}${input.nodes ? ` on ${input.nodes.join(', ')}` : ''}`,
          );
        }
        const selected = matching.filter((g) => g.status === 'running');
        const stopped = matching
          .filter((g) => g.status !== 'running')
          .map((g) => `CT ${g.vmid} '${g.name}' is ${g.status}: only running containers are patched`);
        // Every matching container stopped is an answer, not a refusal: a plan without steps completes as nothing-to-do.
        if (selected.length === 0) {
          return {
            summary: `nothing to do: no container${input.tags ? ` matching '${input.tags}'` : ''} is running`,
            risk: 'low',
            reasons: ['changes nothing'],
            steps: [],
            warnings: stopped,
            nodes: [],
            vmids: [],
            estimatedDurationMs: 0,
            details: {
              containers: [],
              maxParallel: input.maxParallel,
              commandTimeoutSeconds: input.commandTimeoutSeconds,
            },
          };
        }
        const nodes = [...new Set(selected.map((g) => g.node))].sort();
        const problems = sshProblems(env, nodes);
        if (problems.length > 0)
          fail(Failure.PlanRefused, `containers are patched over SSH to their nodes, but ${problems.join('; ')}`);

        const now = new Date();
        const existing = await mapBounded(selected, 16, (g) => client.lxc.snapshots({ node: g.node, vmid: g.vmid }));
        const containers = selected.map((g, i): PatchTarget => {
          const base = { vmid: g.vmid, name: g.name, node: g.node };
          const read = existing[i]!;
          if (!read.ok) throw read.error;
          const taken = read.value.map((s) => s.name);
          const snapshot = env.policy.snapshot_before_change ? safetySnapshotName('patch', now, taken) : undefined;
          return {
            ...base,
            ...(snapshot ? { snapshot } : {}),
            steps: {
              ...(snapshot
                ? {
                    snapshot: {
                      ...base,
                      id: `${g.vmid}/snapshot-before`,
                      action: 'snapshot',
                      params: { snapname: snapshot },
                      description: `snapshot CT ${g.vmid} as '${snapshot}'`,
                    },
                  }
                : {}),
              patch: {
                ...base,
                id: `${g.vmid}/patch`,
                action: 'patch',
                description: `apt-get update && apt-get -y upgrade inside CT ${g.vmid} '${g.name}' (pct exec on ${g.node})`,
              },
              ...(input.rollbackOnFailure && snapshot
                ? {
                    rollback: {
                      ...base,
                      id: `${g.vmid}/rollback`,
                      action: 'rollback',
                      params: { snapname: snapshot, start: true },
                      description: `only if the upgrade fails: roll CT ${g.vmid} back to '${snapshot}' and start it again`,
                    },
                  }
                : {}),
            },
          };
        });
        return {
          summary: `patch ${containers.length} running container${containers.length === 1 ? '' : 's'} on ${nodes.join(', ')}, ${input.maxParallel} at a time`,
          risk: 'medium',
          reasons: ['package upgrades restart services inside the containers'],
          steps: containers.flatMap((c) =>
            [c.steps.snapshot, c.steps.patch, c.steps.rollback].filter((s): s is PlanStep => s !== undefined),
          ),
          warnings: [
            ...stopped,
            ...(env.policy.snapshot_before_change
              ? []
              : ['policy.snapshot_before_change is off: no snapshot is taken before upgrading']),
          ],
          nodes,
          vmids: containers.map((c) => c.vmid),
          estimatedDurationMs: Math.ceil(containers.length / input.maxParallel) * 120_000,
          details: { containers, maxParallel: input.maxParallel, commandTimeoutSeconds: input.commandTimeoutSeconds },
        };
      });
    },

    /**
     * Upgrades one container's packages. Not retried by the workflow: a half-finished apt run
     * is for the operator (or the rollback) to judge, not to repeat blindly.
     */
    async patchContainer(args: {
      environment: string;
      vmid: number;
      name: string;
      timeoutSeconds: number;
    }): Promise<PatchLog> {
      const client = await deps.pve(args.environment);
      const guest = await classified('write', () => verifyIdentity(client, args.vmid, args.name));
      if (guest.type !== 'lxc') fail(Failure.PlanRefused, `${describeGuest(guest)} is not a container`);
      if (guest.status !== 'running')
        fail(Failure.PlanRefused, `${describeGuest(guest)} is ${guest.status}; only running containers are patched`);

      const ctx = Context.current();
      const lines: string[] = [];
      let partial = '';
      const target = await classified('read', () => deps.sshTarget(args.environment, guest.node));
      const command = `pct exec ${args.vmid} -- sh -c '${UPGRADE_COMMAND}'`;
      const result = await classified('write', () =>
        runCommand(target, command, {
          timeoutMs: args.timeoutSeconds * 1000,
          allowNonZeroExit: true,
          label: `apt upgrade in CT ${args.vmid}`,
          onOutput: (chunk) => {
            const parts = (partial + chunk).split('\n');
            partial = parts.pop() ?? '';
            for (const line of parts) lines.push(line);
            lines.splice(0, Math.max(0, lines.length - LOG_LINES));
            ctx.heartbeat(lines.at(-1));
          },
        }),
      );
      if (partial) lines.push(partial);
      const log = lines.slice(-LOG_LINES);
      if (result.exitCode !== 0) {
        throw ApplicationFailure.create({
          type: Failure.PatchFailed,
          message: `apt upgrade in CT ${args.vmid} on ${guest.node} exited ${result.exitCode}: ${log.at(-1) ?? 'no output'}`,
          nonRetryable: true,
          details: [{ vmid: args.vmid, node: guest.node, exitCode: result.exitCode, log }],
        });
      }
      const upgraded = Number(/(\d+) upgraded,/.exec(result.stdout)?.[1] ?? 0);
      return { vmid: args.vmid, node: guest.node, exitCode: 0, upgraded, log };
    },
  };
}

export type LxcPatchActivities = ReturnType<typeof createLxcPatchActivities>;
