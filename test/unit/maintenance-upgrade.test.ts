import { describe, expect, it } from 'vitest';
import { parseAptOutput, pveVersionOf, rebootReasons } from '../../lib/maintenance/upgrade.js';

/** As apt-get dist-upgrade prints it on a PVE node getting a new kernel. */
const distUpgrade = `Reading package lists... Done
Building dependency tree... Done
Reading state information... Done
Calculating upgrade... Done
The following NEW packages will be installed:
  proxmox-kernel-6.17.4-1-pve-signed
The following packages will be upgraded:
  libpve-common-perl proxmox-kernel-6.17 pve-manager
  qemu-server
4 upgraded, 1 newly installed, 0 to remove and 0 not upgraded.
Need to get 112 MB of archives.
Setting up pve-manager (9.1.4) ...
`;

describe('parseAptOutput', () => {
  it('reads the upgraded and newly installed packages and the count', () => {
    expect(parseAptOutput(distUpgrade)).toEqual({
      upgraded: ['libpve-common-perl', 'proxmox-kernel-6.17', 'pve-manager', 'qemu-server'],
      installed: ['proxmox-kernel-6.17.4-1-pve-signed'],
      changed: 5,
    });
  });

  it('reads nothing to do as nothing', () => {
    expect(
      parseAptOutput('Calculating upgrade... Done\n0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n'),
    ).toEqual({
      upgraded: [],
      installed: [],
      changed: 0,
    });
  });

  it('leaves the count unknown when apt never got that far', () => {
    expect(parseAptOutput('E: Could not get lock /var/lib/dpkg/lock-frontend').changed).toBeUndefined();
  });
});

describe('rebootReasons', () => {
  it('asks for a reboot after a kernel, firmware or microcode upgrade, or when the node says so', () => {
    expect(rebootReasons(parseAptOutput(distUpgrade), '')).toEqual([
      'proxmox-kernel-6.17, proxmox-kernel-6.17.4-1-pve-signed take effect after a reboot',
    ]);
    expect(rebootReasons({ upgraded: ['amd64-microcode'], installed: [] }, '')).toEqual([
      'amd64-microcode takes effect after a reboot',
    ]);
    expect(rebootReasons({ upgraded: ['libc6'], installed: [] }, 'reboot-required\n')).toEqual([
      '/run/reboot-required exists',
    ]);
  });

  it('does not reboot for user-space packages alone', () => {
    expect(rebootReasons({ upgraded: ['pve-manager', 'qemu-server'], installed: [] }, '')).toEqual([]);
  });
});

describe('pveVersionOf', () => {
  it('reads the manager version from pveversion and the API', () => {
    expect(pveVersionOf('pve-manager/9.1.4/5b6ad4b2e4e0c0b1 (running kernel: 6.17.2-1-pve)')).toBe('9.1.4');
    expect(pveVersionOf('nothing here')).toBeUndefined();
  });
});
