/**
 * The simulator's guests as automation reaches them: `pct exec` into containers.
 * (Guest SSH to VMs is covered end to end in test/integration/create-stateful-vm.test.ts.)
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { UPGRADE_COMMAND } from '../../activities/lxc-patch.js';
import { SimClock } from '../../sim/clock.js';
import { Cluster } from '../../sim/cluster.js';
import { attachGuestSystems, type GuestSystems } from '../../sim/guest-ssh.js';
import { parseScenario } from '../../sim/scenario.js';

let cluster: Cluster;
let guests: GuestSystems;

beforeEach(() => {
  cluster = new Cluster(
    parseScenario({
      nodes: [{ name: 'pve1' }, { name: 'pve2' }],
      storages: [{ id: 'local-lvm', type: 'lvmthin', content: ['images', 'rootdir'], size: '100G' }],
      guests: [
        { vmid: 201, type: 'lxc', name: 'pihole', node: 'pve1', disks: [{ storage: 'local-lvm', size: '8G' }] },
        {
          vmid: 202,
          type: 'lxc',
          name: 'idle',
          node: 'pve1',
          status: 'stopped',
          disks: [{ storage: 'local-lvm', size: '8G' }],
        },
      ],
    }),
    new SimClock({ speed: 10_000 }),
  );
  guests = attachGuestSystems(cluster, { authorizedKeys: [] });
});

async function pct(node: string, args: string[]) {
  let stdout = '';
  let stderr = '';
  const code = await guests.pct(node, args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

describe('pct exec into a container', () => {
  it('upgrades its pending packages after apt-get update, and then has none left', async () => {
    expect(guests.pendingUpgrades(201)).toHaveLength(2);
    const first = await pct('pve1', ['exec', '201', '--', 'sh', '-c', UPGRADE_COMMAND]);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/2 upgraded, 0 newly installed/);
    expect(guests.pendingUpgrades(201)).toEqual([]);
    const again = await pct('pve1', ['exec', '201', '--', 'sh', '-c', UPGRADE_COMMAND]);
    expect(again.stdout).toMatch(/0 upgraded/);
  });

  it('fails like apt over a half-configured dpkg when told to, and keeps the packages pending', async () => {
    guests.failUpgrades(201);
    const run = await pct('pve1', ['exec', '201', '--', 'sh', '-c', UPGRADE_COMMAND]);
    expect(run.code).toBe(100);
    expect(run.stderr).toBe(
      "E: dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem.\n",
    );
    expect(guests.pendingUpgrades(201)).toHaveLength(2);
  });

  it('answers like pct for a container that is elsewhere or stopped', async () => {
    expect(await pct('pve2', ['exec', '201', '--', 'true'])).toMatchObject({
      code: 255,
      stderr: "Configuration file 'nodes/pve2/lxc/201.conf' does not exist\n",
    });
    expect(await pct('pve1', ['exec', '202', '--', 'true'])).toMatchObject({
      code: 255,
      stderr: 'CT 202 not running\n',
    });
  });
});
