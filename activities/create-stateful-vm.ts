/**
 * Stateful PXE installs (003's create-stateful-vm): plan the network-booted VM, find its
 * address through the guest agent, install Alpine to its disk over SSH, and check it came
 * back from disk. SSH reaches the guest through the node it runs on, and is pinned at every
 * hop: the node by its configured key, the live image by the key the operator names, the
 * installed system by the key the install printed over that pinned session.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { setTimeout as sleep } from 'node:timers/promises';
import ssh2 from 'ssh2';
import {
  hostKeyLine,
  installCommand,
  MARKER_PATH,
  rootPartition,
  verifyCommand,
  type AlpineInstall,
} from '../lib/lifecycle/alpine.js';
import type { StatefulVmInput } from '../lib/operations/catalog.js';
import type { PveClient } from '../lib/pve/client.js';
import { PveApiError } from '../lib/pve/errors.js';
import { runCommand, SshError, SshHostKeyError, sshFingerprint, type SshTarget } from '../lib/ssh/client.js';
import type { PlanDraft, PlanStep } from '../lib/operations/plan.js';
import type { WorkerDeps } from '../worker/deps.js';
import { classified, fail } from './failures.js';
import { sshProblems, withTunnel } from './node-ssh.js';
import type { CreateSpec } from '../lib/lifecycle/create-spec.js';
import { createProvisionActivities } from './provision.js';
import { describeGuest, operationId, verifyIdentity } from './vm.js';
import { Failure } from '../lib/operations/failures.js';

export interface StatefulPlanDetails {
  spec: CreateSpec;
  /** The live image's SSH host key, pinned for the install session. */
  liveHostKey: string;
  disk: string;
}

export interface InstallOutcome {
  /** Fingerprint of the installed system's host key, pinned when it boots from disk. */
  hostKey: string;
  marker: string;
  log: string[];
}

export interface DiskBootCheck {
  address: string;
  marker: string;
  rootDevice: string;
}

/** The disk the VM gets (scsi0 on virtio-scsi), as the live image names it. */
const INSTALL_DISK = '/dev/sda';
const SSH_PORT = 22;
const LOG_LINES = 40;

function publicKeyLine(privateKey: string | Buffer): string {
  const key = ssh2.utils.parseKey(privateKey);
  if (key instanceof Error)
    throw ApplicationFailure.create({
      type: Failure.SshNotConfigured,
      message: 'credentials.ssh_key is not a usable private key',
      nonRetryable: true,
    });
  const parsed = Array.isArray(key) ? key[0]! : key;
  return `${parsed.type} ${parsed.getPublicSSH().toString('base64')}`;
}

/** The agent answers only once the guest has booted far enough; until then PVE says so. */
function agentNotReady(err: unknown): boolean {
  return err instanceof PveApiError && /guest agent is not running|is not running|not running/i.test(err.pveMessage);
}

async function guestAddress(client: PveClient, node: string, vmid: number): Promise<string | undefined> {
  try {
    const { result } = await client.qemu.agentNetworkInterfaces({ node, vmid });
    for (const iface of result) {
      if (iface.name === 'lo') continue;
      const v4 = iface['ip-addresses']?.find(
        (a) => a['ip-address-type'] === 'ipv4' && !/^(127\.|169\.254\.)/.test(a['ip-address']),
      );
      if (v4) return v4['ip-address'];
    }
    return undefined;
  } catch (err) {
    if (agentNotReady(err)) return undefined;
    throw err;
  }
}

/** Waits for the guest's SSH to accept us; only "not reachable yet" is waited out. */
async function untilSshAnswers(target: SshTarget, deadline: number, heartbeat: (what: string) => void): Promise<void> {
  for (;;) {
    try {
      await runCommand(target, 'true', { timeoutMs: 15_000, label: 'SSH readiness check' });
      return;
    } catch (err) {
      if (!(err instanceof SshError && err.retryable) || Date.now() > deadline) throw err;
      heartbeat(`waiting for SSH on ${target.host}:${target.port}`);
      await sleep(1_000);
    }
  }
}

export function createStatefulVmActivities(deps: Pick<WorkerDeps, 'pve' | 'config' | 'sshTarget'>) {
  const provision = createProvisionActivities(deps);

  /** The guest's SSH through its node: a tunnel, pinned at both ends. */
  async function overSsh<T>(
    args: { environment: string; vmid: number; name: string; address: string; hostKey: string; timeoutMs: number },
    fn: (target: SshTarget) => Promise<T>,
  ): Promise<T> {
    const client = await deps.pve(args.environment);
    const guest = await classified('write', () => verifyIdentity(client, args.vmid, args.name));
    if (guest.status !== 'running')
      fail(Failure.PlanRefused, `${describeGuest(guest)} is ${guest.status}, not running`);
    return classified('write', async () => {
      const node = await deps.sshTarget(args.environment, guest.node);
      return withTunnel(node, { host: args.address, port: SSH_PORT }, Math.min(args.timeoutMs, 60_000), (local) =>
        fn({ ...local, username: 'root', privateKey: node.privateKey, hostKeySha256: args.hostKey }),
      );
    });
  }

  return {
    async planStatefulVm(input: StatefulVmInput): Promise<PlanDraft<StatefulPlanDetails>> {
      const env = deps.config.environments[input.environment]!;
      if (!env.pxe)
        fail(
          Failure.PlanRefused,
          `environment '${input.environment}' has no pxe section: network boot is not set up there`,
        );
      const liveHostKey = input.liveImageHostKey ?? env.pxe.live_image_host_key;
      if (!liveHostKey) {
        fail(
          Failure.PlanRefused,
          "liveImageHostKey: the live image's SSH host key must be pinned for the install session (in the request or as pxe.live_image_host_key)",
        );
      }

      const base = await provision.planNewGuest(
        { ...input, start: false },
        { create: { type: 'qemu', netboot: true } },
      );
      const spec = base.details!.spec;
      const problems = sshProblems(env, [spec.node]);
      if (problems.length > 0)
        fail(Failure.PlanRefused, `the install runs over SSH through ${spec.node}, but ${problems.join('; ')}`);

      const create = base.steps.find((s) => s.id === 'create')!;
      const ref = { vmid: create.vmid!, name: create.name!, node: spec.node };
      const steps: PlanStep[] = [
        {
          ...create,
          description: `${create.description}, booting from the network first (PXE from ${env.pxe.tftp_server})`,
        },
        { ...ref, id: 'start', action: 'start', description: 'start the VM: it boots the live image over the network' },
        {
          ...ref,
          id: 'discover-ip',
          action: 'discover-ip',
          description: 'wait for its address through the guest agent',
        },
        {
          ...ref,
          id: 'install',
          action: 'install',
          params: { disk: INSTALL_DISK, packages: input.packages.join(' ') },
          description:
            `over SSH (through ${spec.node}, live image key ${liveHostKey}): setup-alpine -f answers onto ${INSTALL_DISK}, ` +
            `add qemu-guest-agent${input.packages.length ? ` and ${input.packages.join(', ')}` : ''}, leave ${MARKER_PATH}`,
        },
        {
          ...ref,
          id: 'boot-from-disk',
          action: 'config',
          params: { boot: 'order=scsi0;net0' },
          description: 'boot from the disk first from now on',
        },
        { ...ref, id: 'reboot', action: 'reboot', description: 'reboot into the installed system' },
        {
          ...ref,
          id: 'verify',
          action: 'verify',
          description: `check it came back from disk: address again, SSH with the installed system's key, ${MARKER_PATH}, / on ${rootPartition(INSTALL_DISK)}`,
        },
        {
          ...ref,
          id: 'cleanup',
          action: 'destroy',
          description: input.keepOnFailure
            ? 'if a step fails: keep the VM for inspection'
            : 'only if a step fails: stop and delete the VM',
        },
      ];
      return {
        ...base,
        summary: `stateful install of ${base.summary.replace(/^create /, '')}`,
        reasons: [...base.reasons, 'the installer erases the new VM’s own disk (nothing else)'],
        steps,
        estimatedDurationMs: input.installTimeoutSeconds * 1000,
        details: { spec, liveHostKey, disk: INSTALL_DISK },
      };
    },

    /** The guest's IPv4 address as its agent reports it (polled until the agent answers). */
    async discoverGuestAddress(args: {
      environment: string;
      vmid: number;
      name: string;
      timeoutMs: number;
    }): Promise<string> {
      const client = await deps.pve(args.environment);
      const ctx = Context.current();
      return classified('write', async () => {
        const deadline = Date.now() + args.timeoutMs;
        let pauseMs = 500;
        for (;;) {
          const guest = await verifyIdentity(client, args.vmid, args.name);
          const address = guest.status === 'running' ? await guestAddress(client, guest.node, args.vmid) : undefined;
          if (address) return address;
          if (Date.now() > deadline) {
            throw ApplicationFailure.create({
              type: Failure.NoGuestAddress,
              message: `${describeGuest(guest)} reported no address through its guest agent within ${Math.round(args.timeoutMs / 1000)} s (it is ${guest.status})`,
              nonRetryable: true,
            });
          }
          ctx.heartbeat('waiting for the guest agent');
          await sleep(pauseMs, undefined, { signal: ctx.cancellationSignal });
          pauseMs = Math.min(pauseMs * 2, 5_000);
        }
      });
    },

    /** Installs Alpine to the disk from the live image. Not retried: a failed install is cleaned up, not repeated. */
    async installToDisk(args: {
      environment: string;
      vmid: number;
      name: string;
      address: string;
      liveHostKey: string;
      disk: string;
      packages: string[];
      timeoutSeconds: number;
    }): Promise<InstallOutcome> {
      const ctx = Context.current();
      const marker = `installed by proxmox-manager operation ${operationId()} as VM ${args.vmid}`;
      const timeoutMs = args.timeoutSeconds * 1000;
      const lines: string[] = [];
      const output = await overSsh({ ...args, hostKey: args.liveHostKey, timeoutMs }, async (target) => {
        await untilSshAnswers(target, Date.now() + Math.min(timeoutMs, 5 * 60_000), (what) => ctx.heartbeat(what));
        const install: AlpineInstall = {
          hostname: args.name,
          disk: args.disk,
          rootSshKey: publicKeyLine(target.privateKey),
          packages: args.packages,
          marker,
        };
        const result = await runCommand(target, installCommand(install), {
          timeoutMs,
          label: 'Alpine disk install',
          onOutput: (chunk) => {
            lines.push(...chunk.split('\n').filter(Boolean));
            lines.splice(0, Math.max(0, lines.length - LOG_LINES));
            ctx.heartbeat(lines.at(-1));
          },
        });
        return result.stdout;
      });
      const key = hostKeyLine(output);
      if (!key) {
        throw ApplicationFailure.create({
          type: Failure.InstallFailed,
          message: 'the install did not print the new system’s SSH host key',
          nonRetryable: true,
          details: [lines],
        });
      }
      return { hostKey: sshFingerprint(Buffer.from(key.base64, 'base64')), marker, log: lines };
    },

    /** The VM runs the installed system: SSH answers with its key, the marker is there, `/` is the disk. */
    async verifyDiskBoot(args: {
      environment: string;
      vmid: number;
      name: string;
      hostKey: string;
      marker: string;
      disk: string;
      timeoutMs: number;
    }): Promise<DiskBootCheck> {
      const ctx = Context.current();
      const client = await deps.pve(args.environment);
      const deadline = Date.now() + args.timeoutMs;
      let address: string | undefined;
      while (!address) {
        const guest = await classified('write', () => verifyIdentity(client, args.vmid, args.name));
        address =
          guest.status === 'running'
            ? await classified('write', () => guestAddress(client, guest.node, args.vmid))
            : undefined;
        if (address) break;
        if (Date.now() > deadline) {
          throw ApplicationFailure.create({
            type: Failure.NoGuestAddress,
            message: `VM ${args.vmid} reported no address after the reboot`,
            nonRetryable: true,
          });
        }
        ctx.heartbeat('waiting for the guest agent after the reboot');
        await sleep(1_000, undefined, { signal: ctx.cancellationSignal });
      }
      try {
        const stdout = await overSsh({ ...args, address, timeoutMs: args.timeoutMs }, async (target) => {
          await untilSshAnswers(target, deadline, (what) => ctx.heartbeat(what));
          return (await runCommand(target, verifyCommand(args), { timeoutMs: 60_000, label: 'disk boot check' }))
            .stdout;
        });
        if (!stdout.includes(args.marker)) {
          throw ApplicationFailure.create({
            type: Failure.NotAsPlanned,
            message: `VM ${args.vmid} answers, but ${MARKER_PATH} does not hold this install's marker`,
            nonRetryable: true,
          });
        }
        return { address, marker: args.marker, rootDevice: rootPartition(args.disk) };
      } catch (err) {
        const hostKeyMismatch = err instanceof ApplicationFailure && err.type === SshHostKeyError.name;
        if (!hostKeyMismatch) throw err;
        throw ApplicationFailure.create({
          type: Failure.NotBootedFromDisk,
          message: `VM ${args.vmid} at ${address} answers SSH with another host key than the installed system's: it did not boot from its disk (${err.message})`,
          nonRetryable: true,
        });
      }
    },
  };
}

export type StatefulVmActivities = ReturnType<typeof createStatefulVmActivities>;
