/** The way home: the return planned like an evacuation, and where the task histories stand before it starts. */
import type { NodeSettings } from '../../lib/maintenance/plan.js';
import { planReturn, type ReturnPlan } from '../../lib/maintenance/returns.js';
import type { AwayGuest } from '../../lib/maintenance/node-outcomes.js';
import type { TaskMarker } from '../evacuation.js';
import { type RollingMaintenanceDeps } from './common.js';
import { classified } from '../failures.js';

export function createReturnActivities(deps: RollingMaintenanceDeps) {
  return {
    /**
     * The migrations that bring a node's guests home, from where each is now and in the
     * state it is in now, planned like an evacuation (lib/maintenance/returns.ts); guests
     * already home, and guests that no longer exist, are named.
     */
    async planReturn(input: {
      environment: string;
      node: string;
      guests: AwayGuest[];
      drain: NodeSettings['drain'];
    }): Promise<ReturnPlan> {
      const client = await deps.pve(input.environment);
      const resources = await classified('read', () => client.cluster.resources({ type: 'vm' }));
      return planReturn(
        input.node,
        input.guests,
        (vmid) => {
          const now = resources.find((r) => r.vmid === vmid);
          return now?.node
            ? { node: now.node, running: now.status === 'running', haManaged: now.hastate !== undefined }
            : undefined;
        },
        input.drain,
      );
    },

    /** Where the task histories of `nodes` stand: migrations started after this belong to the caller. */
    async markTasks(input: { environment: string; nodes: string[] }): Promise<TaskMarker> {
      const client = await deps.pve(input.environment);
      return classified('read', async () => {
        const all = [];
        for (const node of input.nodes) all.push(...(await client.tasks.list({ node, source: 'all', limit: 50 })));
        const since = Math.max(0, ...all.map((t) => t.starttime));
        return {
          node: input.nodes[0] ?? '',
          since,
          upids: all.filter((t) => t.starttime === since).map((t) => t.upid),
        };
      });
    },
  };
}
