import { ApplicationFailure, isCancellation } from '@temporalio/workflow';
import type { StatefulVmInput } from '../lib/operations/catalog.js';
import type { PlanStep } from '../lib/operations/plan.js';
import { createSummary, failureMessage, runGuestStep, taskSummary } from './guest-step.js';
import { runOperation } from './operation.js';
import { Failure } from '../lib/operations/failures.js';
import { reads, dispatches, waits } from './activity-presets.js';

const planning = reads({ startToCloseTimeout: '1 minute' });

const creating = dispatches();

/** Watching the guest (its agent, its SSH) only reads: safe to repeat. */
const watching = reads({ startToCloseTimeout: '20 minutes', maximumAttempts: 3 });

const waiting = waits({ startToCloseTimeout: '20 minutes', maximumAttempts: 3 });

/** The install erases and writes the disk: it runs once, and a failure is cleaned up, not repeated. */
const installing = waits({ maximumAttempts: 1 });

const ADDRESS_TIMEOUT_MS = 10 * 60_000;

/**
 * 003's create-stateful-vm: create a VM that boots from the network first, start it, find its
 * address through the guest agent, install Alpine to its disk over SSH (answer file plus
 * post-install steps), make the disk the first boot device, reboot, and check it came back
 * from disk. A failure part-way stops and deletes the VM unless the operator asked to keep it.
 */
export async function createStatefulVm(input: StatefulVmInput) {
  const { environment } = input;
  return runOperation('create-stateful-vm', input.meta, {
    plan: () => planning.planStatefulVm(input),
    apply: async (plan, op) => {
      const { spec, liveHostKey, disk } = plan.details!;
      const planned = (id: string): PlanStep => plan.steps.find((s) => s.id === id)!;

      const guest = await op.step('create', async () => {
        const created = await creating.createGuest.executeWithOptions({ summary: createSummary(spec) }, [
          { environment, spec },
        ]);
        if (created.upid)
          await waiting.awaitTask.executeWithOptions({ summary: taskSummary(created.upid) }, [
            { environment, upid: created.upid },
          ]);
        return created;
      });
      op.mark('create', 'succeeded', `created VM ${guest.vmid} '${guest.name}' on ${guest.node}`);
      const ref = { environment, vmid: guest.vmid, name: guest.name };
      const onGuest = (id: string) => ({ ...planned(id), vmid: guest.vmid, name: guest.name });

      let current = 'start';
      const step = <T>(id: string, fn: () => Promise<T>) => {
        current = id;
        return op.step(id, fn);
      };
      try {
        await step('start', () => runGuestStep(environment, guest, onGuest('start')));
        const address = await step('discover-ip', () =>
          watching.discoverGuestAddress({ ...ref, timeoutMs: ADDRESS_TIMEOUT_MS }),
        );
        const installed = await step('install', () =>
          installing.installToDisk({
            ...ref,
            address,
            liveHostKey,
            disk,
            packages: input.packages,
            timeoutSeconds: input.installTimeoutSeconds,
          }),
        );
        await step('boot-from-disk', () => runGuestStep(environment, guest, onGuest('boot-from-disk')));
        await step('reboot', () => runGuestStep(environment, guest, onGuest('reboot')));
        const booted = await step('verify', () =>
          watching.verifyDiskBoot({
            ...ref,
            hostKey: installed.hostKey,
            marker: installed.marker,
            disk,
            timeoutMs: ADDRESS_TIMEOUT_MS,
          }),
        );
        op.mark('cleanup', 'skipped', 'the install succeeded');
        return {
          vmid: guest.vmid,
          name: guest.name,
          node: guest.node,
          address: booted.address,
          hostKey: installed.hostKey,
          installLog: installed.log,
        };
      } catch (err) {
        const why = `${current} failed: ${failureMessage(err)}`;
        if (input.keepOnFailure) {
          op.mark('cleanup', 'skipped', 'kept for inspection (keepOnFailure)');
          throw ApplicationFailure.create({
            type: Failure.InstallFailed,
            nonRetryable: true,
            message: `${why}; VM ${guest.vmid} '${guest.name}' kept for inspection`,
            cause: err as Error,
          });
        }
        // Even a cancelled operation removes what it created.
        const cleanup = async () => {
          await runGuestStep(environment, guest, {
            ...onGuest('cleanup'),
            id: 'cleanup-stop',
            action: 'stop',
            description: 'stop the VM',
          });
          await runGuestStep(environment, guest, onGuest('cleanup'));
        };
        await op.step('cleanup', cleanup, { undo: true }).catch((cleanupErr: unknown) => {
          throw ApplicationFailure.create({
            type: Failure.InstallFailed,
            nonRetryable: true,
            message: `${why}; removing VM ${guest.vmid} '${guest.name}' also failed (${failureMessage(cleanupErr)}): remove it by hand`,
          });
        });
        if (isCancellation(err)) throw err;
        throw ApplicationFailure.create({
          type: Failure.InstallFailed,
          nonRetryable: true,
          message: `${why}; VM ${guest.vmid} '${guest.name}' was removed`,
          cause: err as Error,
        });
      }
    },
  });
}
