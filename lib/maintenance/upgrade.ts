/**
 * A node's package upgrade as the rolling maintenance runs it over SSH: the default command,
 * what apt's output says was upgraded, and whether the node must reboot for it to take effect.
 */

/**
 * Non-interactive, keeping locally changed config files on conflicts. The `-o` options are
 * written attached (`-oName=value`), which apt accepts like the spaced form.
 */
export const DEFAULT_UPGRADE_COMMAND =
  'DEBIAN_FRONTEND=noninteractive apt-get update && ' +
  'DEBIAN_FRONTEND=noninteractive apt-get -y -oDpkg::Options::=--force-confdef -oDpkg::Options::=--force-confold dist-upgrade';

/**
 * Prints `reboot-required` when a package asked for a reboot (Debian's convention). Exits 0
 * either way, also where `test` is missing, so only its output decides.
 */
export const REBOOT_REQUIRED_CHECK = 'test -e /run/reboot-required && echo reboot-required || true';

/** What is left to upgrade, without changing anything: apt's simulation. */
export const PENDING_UPGRADES_CHECK = 'apt-get -s dist-upgrade';

/** Packages that only take effect after a reboot: kernels, firmware, CPU microcode. */
const NEEDS_REBOOT = /^(proxmox-kernel|pve-kernel|linux-image|pve-firmware|intel-microcode|amd64-microcode)/;

export interface AptSummary {
  /** Packages apt listed as upgraded. */
  upgraded: string[];
  /** Packages apt listed as newly installed (a new kernel arrives this way). */
  installed: string[];
  /** From apt's closing line `N upgraded, M newly installed, ...`; undefined when absent. */
  changed?: number;
}

/** Reads the package lists and the closing count out of `apt-get dist-upgrade` (or `-s`) output. */
export function parseAptOutput(output: string): AptSummary {
  const upgraded: string[] = [];
  const installed: string[] = [];
  let list: string[] | undefined;
  for (const line of output.split('\n')) {
    if (/^The following packages will be upgraded:/.test(line)) list = upgraded;
    else if (/^The following NEW packages will be installed:/.test(line)) list = installed;
    else if (list && /^\s+\S/.test(line)) list.push(...line.trim().split(/\s+/));
    else list = undefined;
  }
  const counts = /^(\d+) upgraded, (\d+) newly installed/m.exec(output);
  return { upgraded, installed, ...(counts ? { changed: Number(counts[1]) + Number(counts[2]) } : {}) };
}

/** Why the node must reboot after this upgrade; empty when it need not. */
export function rebootReasons(summary: AptSummary, checkOutput: string): string[] {
  const reasons: string[] = [];
  const packages = [...summary.upgraded, ...summary.installed].filter((p) => NEEDS_REBOOT.test(p));
  if (packages.length > 0)
    reasons.push(`${packages.join(', ')} take${packages.length === 1 ? 's' : ''} effect after a reboot`);
  if (/^reboot-required$/m.test(checkOutput)) reasons.push('/run/reboot-required exists');
  return reasons;
}

/** `pve-manager/9.1.4/abcdef (running kernel: ...)` -> `9.1.4`, as `pveversion` and the API print it. */
export function pveVersionOf(text: string): string | undefined {
  return /pve-manager\/([^/\s]+)/.exec(text)?.[1];
}
