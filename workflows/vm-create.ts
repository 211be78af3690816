import type { NewGuestInput } from '../activities/provision.js';
import { createSummary, runGuestStep, taskSummary } from './guest-step.js';
import { runOperation } from './operation.js';
import { reads, dispatches, waits } from './activity-presets.js';

const planning = reads({ startToCloseTimeout: '1 minute' });

/** A repeated attempt looks for the guest an earlier one created before creating anything. */
const creating = dispatches();

const waiting = waits();

/**
 * A new guest — created from the cluster's defaults, or cloned from a VM or template: plan
 * (VMID, name, node under the memory headroom, storage), approve, then create it with the
 * next free VMID, configure and start it if asked, and check it is there as planned.
 */
export async function vmCreate(input: NewGuestInput) {
  const { environment } = input;
  return runOperation('sourceVmid' in input ? 'vm-clone' : 'vm-create', input.meta, {
    plan: () => planning.planCreateGuest(input),
    apply: async (plan, op) => {
      const guest = await op.step('create', async () => {
        const { spec } = plan.details!;
        const created = await creating.createGuest.executeWithOptions({ summary: createSummary(spec) }, [
          { environment, spec },
        ]);
        if (created.upid)
          await waiting.awaitTask.executeWithOptions({ summary: taskSummary(created.upid) }, [
            { environment, upid: created.upid },
          ]);
        return created;
      });
      op.mark(
        'create',
        'succeeded',
        `created ${guest.type === 'qemu' ? 'VM' : 'CT'} ${guest.vmid} '${guest.name}' on ${guest.node}`,
      );
      for (const step of plan.steps.filter((s) => s.id === 'configure' || s.id === 'start')) {
        await op.step(step.id, () => runGuestStep(environment, guest, { ...step, vmid: guest.vmid, name: guest.name }));
      }
      return op.step('verify', () =>
        planning.verifyNewGuest({
          environment,
          vmid: guest.vmid,
          name: guest.name,
          node: guest.node,
          tags: input.tags,
          ...(input.start ? { status: 'running' as const } : {}),
        }),
      );
    },
  });
}
