/**
 * The node itself: whether it may go down now, its state, the reboot (sent only while it
 * still runs the boot seen before), the wait until it is back, HA maintenance, and the check
 * that it holds its guests again.
 */
import { Context } from '@temporalio/activity';
import { setTimeout as sleep } from 'node:timers/promises';
import { runCommand, SshConnectError } from '../../lib/ssh/client.js';
import { nodeAccess, type NodeProbe, type RollingMaintenanceDeps } from './common.js';
import { classified, fail, toTemporalFailure } from '../failures.js';
import { Failure } from '../../lib/operations/failures.js';

export function createNodeActivities(deps: RollingMaintenanceDeps) {
  const pollMs = deps.pollMs ?? 2_000;
  const { sshTo, probe, busyTasks } = nodeAccess(deps);
  return {
    /**
     * May the node be taken down now? The cluster is quorate, every other node is online
     * (except those maintained alongside it), enough stay up, and the node runs nothing that
     * a maintenance would cut across.
     */
    async checkNodeTurn(input: {
      environment: string;
      node: string;
      alongside: string[];
      minNodesUp: number;
      returning?: number[];
    }): Promise<void> {
      const client = await deps.pve(input.environment);
      await classified('read', async () => {
        const status = await client.cluster.status();
        const nodes = status.filter((e) => e.type === 'node');
        const problems: string[] = [];
        if (!status.find((e) => e.type === 'cluster')?.quorate) problems.push('the cluster is not quorate');
        if (!nodes.find((n) => n.name === input.node)?.online) problems.push(`${input.node} is offline`);
        const down = nodes
          .filter((n) => !n.online && n.name !== input.node && !input.alongside.includes(n.name))
          .map((n) => n.name);
        if (down.length > 0) problems.push(`${down.join(', ')} ${down.length === 1 ? 'is' : 'are'} offline`);
        const up = nodes.filter((n) => n.online && n.name !== input.node && !input.alongside.includes(n.name)).length;
        if (up < input.minNodesUp) problems.push(`only ${up} node(s) would stay up, and ${input.minNodesUp} must`);
        if (problems.length === 0) problems.push(...(await busyTasks(client, [input.node], input.returning)));
        if (problems.length > 0)
          fail(Failure.NodeNotReady, `${input.node} cannot be taken down now: ${problems.join('; ')}`);
      });
    },

    /** Uptime, version and kernel of a node, as the API reports them. */
    async readNodeState(input: { environment: string; node: string }): Promise<NodeProbe> {
      const client = await deps.pve(input.environment);
      return classified('read', () => probe(client, input.node));
    },

    /**
     * Sends `reboot`, unless the node already went down (or came back with a newer boot)
     * since `uptimeBefore` was read: then an earlier attempt's reboot is under way.
     */
    async rebootNode(input: { environment: string; node: string; uptimeBefore: number }): Promise<{ sent: boolean }> {
      const client = await deps.pve(input.environment);
      const now = await classified('read', () => probe(client, input.node));
      if (!now.reachable || !now.online || (now.uptimeSeconds ?? Infinity) < input.uptimeBefore) return { sent: false };
      const target = await sshTo(input.environment, input.node);
      try {
        await runCommand(target, 'reboot', { timeoutMs: 60_000, label: 'reboot' });
      } catch (err) {
        // A node going down may drop the session before `reboot` reports back.
        if (!(err instanceof SshConnectError && /closed before the command finished/.test(err.message))) {
          throw toTemporalFailure(err, 'write');
        }
      }
      return { sent: true };
    },

    /**
     * Waits until the node has been down and is back: its API answers, the cluster sees it
     * online and quorate, and it reports the expected version. "Has been down" is seen
     * directly, or — for a reboot that happened while no worker watched — from an uptime
     * shorter than before the reboot.
     */
    async waitForNodeBack(input: {
      environment: string;
      node: string;
      uptimeBefore: number;
      expectVersion?: string;
      /** Epoch ms after which the node counts as not back. */
      until: number;
    }): Promise<NodeProbe> {
      const client = await deps.pve(input.environment);
      const ctx = Context.current();
      let wentDown = (ctx.info.heartbeatDetails as { wentDown?: boolean } | undefined)?.wentDown ?? false;
      return classified('read', async () => {
        for (;;) {
          const p = await probe(client, input.node);
          if (!p.reachable || !p.online || (p.uptimeSeconds ?? Infinity) < input.uptimeBefore) wentDown = true;
          const waitingFor = !wentDown
            ? 'it to go down'
            : !p.reachable
              ? 'its API to answer'
              : !p.online
                ? 'the cluster to see it online'
                : !p.quorate
                  ? 'the cluster to be quorate'
                  : input.expectVersion && p.version !== input.expectVersion
                    ? `version ${input.expectVersion} (it reports ${p.version ?? 'none'})`
                    : undefined;
          if (!waitingFor) return p;
          if (Date.now() >= input.until) {
            fail(Failure.NodeNotBack, `${input.node} is not back in time: still waiting for ${waitingFor}`);
          }
          ctx.heartbeat({ wentDown, waitingFor });
          await sleep(pollMs, undefined, { signal: ctx.cancellationSignal });
        }
      });
    },

    /** HA maintenance on or off (PVE offers it only through `ha-manager`); doing it twice is harmless. */
    async setHaMaintenance(input: { environment: string; node: string; enabled: boolean }): Promise<void> {
      const target = await sshTo(input.environment, input.node);
      const action = input.enabled ? 'enable' : 'disable';
      await classified('write', () =>
        runCommand(target, `ha-manager crm-command node-maintenance ${action} ${input.node}`, {
          timeoutMs: 60_000,
          label: `ha-manager crm-command node-maintenance ${action}`,
        }),
      );
    },

    /** The node is up on the expected version and holds the guests that came back, each as it was. */
    async verifyNode(input: {
      environment: string;
      node: string;
      expectVersion?: string;
      guests: { vmid: number; name: string; type: 'qemu' | 'lxc'; status: 'running' | 'stopped' }[];
    }): Promise<{ version?: string }> {
      const client = await deps.pve(input.environment);
      return classified('read', async () => {
        const p = await probe(client, input.node);
        const resources = await client.cluster.resources({ type: 'vm' });
        const problems: string[] = [];
        if (!p.reachable || !p.online) problems.push(`${input.node} is not online`);
        if (!p.quorate) problems.push('the cluster is not quorate');
        if (input.expectVersion && p.version !== input.expectVersion) {
          problems.push(`${input.node} reports version ${p.version ?? 'none'}, expected ${input.expectVersion}`);
        }
        for (const g of input.guests) {
          const r = resources.find((x) => x.vmid === g.vmid);
          if (r?.node !== input.node) problems.push(`${label(g)} is on ${r?.node ?? 'no node'}, not ${input.node}`);
          else if ((r.status === 'running') !== (g.status === 'running'))
            problems.push(`${label(g)} is ${r.status}, was ${g.status}`);
        }
        if (problems.length > 0) fail(Failure.VerificationFailed, problems.join('; '));
        return p.version ? { version: p.version } : {};
      });
    },
  };
}

function label(g: { type: string; vmid: number; name: string }): string {
  return `${g.type === 'qemu' ? 'VM' : 'CT'} ${g.vmid} (${g.name})`;
}
