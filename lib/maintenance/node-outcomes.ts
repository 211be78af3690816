/**
 * What the steps of one node's maintenance report: the guests moved off it, its upgrade and
 * its reboot. Activities return them and the node's workflow keeps them in its report.
 */
/** A guest moved off the node being maintained, and where it is now. */
export interface AwayGuest {
  vmid: number;
  name: string;
  type: 'qemu' | 'lxc';
  home: string;
  at: string;
  priorStatus: 'running' | 'stopped';
  withLocalDisks: boolean;
  haManaged: boolean;
  memoryBytes: number;
  localDiskBytes: number;
}

export interface UpgradeOutcome {
  upgraded: string[];
  installed: string[];
  /** Why the node must reboot; empty when it need not. */
  rebootReasons: string[];
  versionBefore?: string;
  versionAfter?: string;
  /** The whole output, on the worker that ran it. */
  logFile: string;
  /** Its last lines. */
  tail: string[];
  /** The worker running the upgrade was lost; apt was asked afterwards whether it had finished. */
  resumed: boolean;
}

export interface RebootOutcome {
  rebooted: boolean;
  why: string;
  kernelBefore?: string;
  kernelAfter?: string;
  versionAfter?: string;
}
