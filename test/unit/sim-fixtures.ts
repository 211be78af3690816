/** A small cluster on a frozen clock, for specifications of the simulator's behaviour. */
import { SimClock } from '../../sim/clock.js';
import { Cluster, type Caller } from '../../sim/cluster.js';
import { parseScenario, type Scenario } from '../../sim/scenario.js';

export const API_CALLER: Caller = { authid: 'automation@pve!pm' };

export const GiB = 1024 ** 3;

export function smallScenario(overrides: Partial<Scenario> = {}): Scenario {
  return {
    nodes: [
      { name: 'pve1', memory: '64G' },
      { name: 'pve2', memory: '64G' },
      { name: 'pve3', memory: '64G' },
    ],
    storages: [
      { id: 'local', type: 'dir', path: '/var/lib/vz', content: ['iso', 'vztmpl', 'import'], size: '100G' },
      { id: 'local-lvm', type: 'lvmthin', content: ['images', 'rootdir'], size: '1T' },
      { id: 'shared', type: 'nfs', path: '/mnt/pve/shared', content: ['images', 'rootdir', 'iso'], size: '10T' },
    ],
    content: [{ volid: 'local:iso/debian.iso', node: 'pve1', size: '700M' }],
    guests: [
      {
        vmid: 100,
        name: 'tpl',
        node: 'pve1',
        status: 'stopped',
        template: true,
        memory: 2048,
        disks: [{ storage: 'shared', size: '10G' }],
      },
      { vmid: 101, name: 'web1', node: 'pve1', memory: 8192, disks: [{ storage: 'shared', size: '32G' }] },
      { vmid: 102, name: 'web2', node: 'pve1', memory: 8192, disks: [{ storage: 'shared', size: '32G' }] },
      { vmid: 103, name: 'db1', node: 'pve1', memory: 4096, disks: [{ storage: 'local-lvm', size: '20G' }] },
      {
        vmid: 104,
        name: 'off1',
        node: 'pve1',
        status: 'stopped',
        memory: 4096,
        disks: [{ storage: 'local-lvm', size: '10G' }],
      },
      { vmid: 105, name: 'ha1', node: 'pve2', memory: 2048, ha: true, disks: [{ storage: 'shared', size: '8G' }] },
      {
        vmid: 106,
        name: 'gpu',
        node: 'pve2',
        memory: 2048,
        hostpci: ['0000:01:00.0'],
        disks: [{ storage: 'shared', size: '8G' }],
      },
      {
        vmid: 107,
        name: 'iso',
        node: 'pve1',
        status: 'stopped',
        memory: 1024,
        cdrom: 'local:iso/debian.iso',
        disks: [{ storage: 'shared', size: '8G' }],
      },
      {
        vmid: 108,
        name: 'prot',
        node: 'pve3',
        status: 'stopped',
        memory: 1024,
        protection: true,
        disks: [{ storage: 'shared', size: '8G' }],
      },
      { vmid: 200, type: 'lxc', name: 'ct1', node: 'pve3', memory: 512, disks: [{ storage: 'local-lvm', size: '8G' }] },
    ],
    tokens: [{ id: 'automation@pve!pm', secret: 'sim-secret-0123', acl: [{ path: '/', roles: ['Administrator'] }] }],
    ...overrides,
  };
}

export function manualCluster(scenario: Scenario = smallScenario()): Cluster {
  return new Cluster(parseScenario(scenario), new SimClock({ manual: true, start: Date.UTC(2025, 0, 1, 12) }));
}
