import { describe, expect, it } from 'vitest';
import { answerFile, hostKeyLine, installCommand, verifyCommand } from '../../lib/lifecycle/alpine.js';
import { tokenize } from '../../sim/ssh/shell.js';

const install = {
  hostname: 'auto-web-1042',
  disk: '/dev/sda',
  rootSshKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample pm@worker',
  packages: ['docker', 'tailscale'],
  marker: "installed by operation create-stateful-vm/home/web/it's",
};

describe('the Alpine disk install', () => {
  it('answers setup-alpine for an unattended sys install with root’s key only', () => {
    const answers = answerFile(install).join('\n');
    expect(answers).toContain('HOSTNAMEOPTS="-n auto-web-1042"');
    expect(answers).toContain('DISKOPTS="-m sys /dev/sda"');
    expect(answers).toContain(`ROOTSSHKEY="${install.rootSshKey}"`);
    expect(answers).toContain('USEROPTS="none"');
    expect(answers).toMatch(/INTERFACESOPTS="auto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n"/);
  });

  it('is one shell line whose words survive quoting, marker included', () => {
    const words = tokenize(installCommand(install));
    const steps = words.join(' ').split(' && ');
    expect(steps.map((s) => s.split(' ')[0])).toEqual([
      'printf',
      'ERASE_DISKS=/dev/sda',
      'mount',
      'apk',
      'chroot',
      'echo',
      'cat',
      'umount',
    ]);
    const echo = words.indexOf('echo');
    expect(words[echo + 1]).toBe(install.marker);
    expect(words.slice(words.indexOf('add') + 1, words.indexOf('add') + 4)).toEqual([
      'qemu-guest-agent',
      'docker',
      'tailscale',
    ]);
    expect(words[words.indexOf('printf') + 1]).toBe('%s\\n');
  });

  it('checks the installed root and reads the new host key back', () => {
    expect(verifyCommand(install)).toBe("cat /etc/proxmox-manager-install && grep -E '^/dev/sda3 / ' /proc/mounts");
    expect(hostKeyLine('OK: 3 packages\nssh-ed25519 AAAAC3Nza+/x= root@auto-web-1042\n')).toEqual({
      type: 'ssh-ed25519',
      base64: 'AAAAC3Nza+/x=',
    });
    expect(hostKeyLine('no key here')).toBeUndefined();
  });
});
