/**
 * The HA manager, as far as clients see it: requests on HA-managed guests only queue
 * (`hastart`, `hastop`, `hamigrate` tasks that end OK at once), and some seconds later the
 * cluster resource manager runs the real task as root@pam. Success of the request is not
 * success of the operation; clients must follow the real task.
 */
import type { Caller, Cluster } from '../cluster.js';
import type { Guest, HaRequest } from '../state.js';
import type { TaskRecord } from '../tasks.js';
import { label } from './common.js';

export function requestHa(
  cluster: Cluster,
  caller: Caller,
  guest: Guest,
  request: HaRequest,
  /** The real operation, run as root@pam once the CRM picks the request up. */
  followUp: (guest: Guest) => void,
  target?: string,
): TaskRecord {
  const ha = cluster.state.haOf(guest)!;
  const queue = cluster.state.haRequests;
  const what =
    request === 'migrate' ? `migration for ${label(guest)} to node ${target}` : `${request} for ${label(guest)}`;
  return cluster.tasks.start({
    node: guest.node,
    type: `ha${request}`,
    id: String(guest.vmid),
    authid: caller.authid,
    run: async (ctx) => {
      ctx.log(`Requesting HA ${what}`);
      if (request === 'start') ha.state = 'started';
      if (request === 'stop') ha.state = 'stopped';
      queue.set(guest.vmid, request);
      await ctx.sleep(200);
      cluster.clock.schedule(cluster.state.timing.ha_delay_seconds * 1000, () => {
        if (queue.get(guest.vmid) === request) queue.delete(guest.vmid);
        if (cluster.stopped || cluster.state.guests.get(guest.vmid) !== guest) return;
        if (!cluster.state.node(guest.node).online) return;
        followUp(guest);
      });
    },
  });
}
