/**
 * The Alpine disk install a stateful VM gets while it runs the network-booted live image:
 * the `setup-alpine` answer file, the install and post-install commands, and how the result
 * is checked after the VM boots from its disk. Pure text, so tests read exactly what runs.
 */

export interface AlpineInstall {
  hostname: string;
  /** The disk to install to, as the live system sees it (virtio-scsi: /dev/sda). */
  disk: string;
  /** The public key (OpenSSH format) root of the new system accepts. */
  rootSshKey: string;
  /** Packages added to the installed system besides the guest agent. */
  packages: string[];
  /** Written into the installed system; read back after it boots from disk. */
  marker: string;
}

/** Where the installed system keeps the marker. */
export const MARKER_PATH = '/etc/proxmox-manager-install';

/** `setup-alpine -f` answers: `sys` mode on one disk, DHCP, OpenSSH with root's key only. */
export function answerFile(install: AlpineInstall): string[] {
  return [
    'KEYMAPOPTS="us us"',
    `HOSTNAMEOPTS="-n ${install.hostname}"`,
    'INTERFACESOPTS="auto lo',
    'iface lo inet loopback',
    '',
    'auto eth0',
    'iface eth0 inet dhcp',
    '"',
    'TIMEZONEOPTS="-z UTC"',
    'PROXYOPTS="none"',
    'APKREPOSOPTS="-1"',
    'USEROPTS="none"',
    'SSHDOPTS="-c openssh"',
    `ROOTSSHKEY="${install.rootSshKey}"`,
    'NTPOPTS="-c chrony"',
    `DISKOPTS="-m sys ${install.disk}"`,
    'LBUOPTS="none"',
    'APKCACHEOPTS="none"',
  ];
}

/** `sys` installs put the root file system on the third partition (boot, swap, root). */
export function rootPartition(disk: string): string {
  return `${disk}3`;
}

function quote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * One command line for the live system: write the answers, install to disk, then, in the new
 * root, add the guest agent and packages, enable the agent, leave the marker, and print the
 * new system's SSH host key (read over this pinned session, it becomes the next pin).
 */
export function installCommand(install: AlpineInstall): string {
  const root = rootPartition(install.disk);
  return [
    `printf '%s\\n' ${answerFile(install).map(quote).join(' ')} > /tmp/pm-answers`,
    `ERASE_DISKS=${install.disk} setup-alpine -e -f /tmp/pm-answers`,
    `mount ${root} /mnt`,
    `apk --root /mnt --no-cache add ${['qemu-guest-agent', ...install.packages].join(' ')}`,
    'chroot /mnt rc-update add qemu-guest-agent default',
    `echo ${quote(install.marker)} > /mnt${MARKER_PATH}`,
    'cat /mnt/etc/ssh/ssh_host_ed25519_key.pub',
    'umount /mnt',
  ].join(' && ');
}

/** After the reboot: the marker, and the mount table line of `/` (a disk partition, not the live image's tmpfs). */
export function verifyCommand(install: Pick<AlpineInstall, 'disk'>): string {
  return `cat ${MARKER_PATH} && grep -E '^${rootPartition(install.disk)} / ' /proc/mounts`;
}

/** The ed25519 host key line the install printed, as `<type> <base64>`. */
export function hostKeyLine(output: string): { type: string; base64: string } | undefined {
  const m = /^(ssh-ed25519) ([A-Za-z0-9+/]+={0,2})(?:\s.*)?$/m.exec(output);
  return m ? { type: m[1]!, base64: m[2]! } : undefined;
}
