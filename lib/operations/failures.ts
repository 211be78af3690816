/**
 * The failure vocabulary: every failure type an activity or workflow reports, by one name.
 *
 * Nearly all are facts about the world or the request ("the plan no longer holds", "PVE did
 * not answer a write"), so they are never retried: repeating the call would fail the same way
 * or, worse, act twice. Activities throw them non-retryable (`fail` in activities/failures.ts)
 * and the workflows' activity presets list them as non-retryable too, so a type raised by a
 * library (PveTaskFailedError) stops the retries as well. The few that ask for another
 * attempt are in `RETRIED`. Pure data: workflows import it.
 */
export const Failure = {
  // The plan and the request
  PlanRefused: 'PlanRefused',
  InvalidRequest: 'InvalidRequest',
  DecisionRefused: 'DecisionRefused',
  NotAsPlanned: 'NotAsPlanned',
  ManifestInvalid: 'ManifestInvalid',
  ConcurrentChange: 'ConcurrentChange',
  OperationFailed: 'OperationFailed',
  // Guests
  VmIdentityMismatch: 'VmIdentityMismatch',
  VmLocked: 'VmLocked',
  GuestMoved: 'GuestMoved',
  GuestLocked: 'GuestLocked',
  GuestVanished: 'GuestVanished',
  StateChanged: 'StateChanged',
  NotSettled: 'NotSettled',
  NoFreeVmid: 'NoFreeVmid',
  // Writes whose outcome is not known: resolved by a person from the node's task list
  OutcomeUnknown: 'OutcomeUnknown',
  CreateUnanswered: 'CreateUnanswered',
  TaskUnanswered: 'TaskUnanswered',
  PveTaskFailed: 'PveTaskFailedError',
  // Migrations and evacuations
  MigrationFailed: 'MigrationFailed',
  MigrationRefused: 'MigrationRefused',
  TargetHeadroom: 'TargetHeadroom',
  EvacuationIncomplete: 'EvacuationIncomplete',
  ReturnIncomplete: 'ReturnIncomplete',
  // Maintenance
  NodeNotReady: 'NodeNotReady',
  NodeNotDrainable: 'NodeNotDrainable',
  NodeNotBack: 'NodeNotBack',
  NodeTimeBudget: 'NodeTimeBudget',
  UpgradeFailed: 'UpgradeFailed',
  UpgradeInterrupted: 'UpgradeInterrupted',
  VerificationFailed: 'VerificationFailed',
  // Backups and restores
  BackupFailed: 'BackupFailed',
  BackupRefused: 'BackupRefused',
  BackupMissing: 'BackupMissing',
  BackupProtected: 'BackupProtected',
  BackupIncomplete: 'BackupIncomplete',
  RestoreFailed: 'RestoreFailed',
  RestoreRefused: 'RestoreRefused',
  DrillFailed: 'DrillFailed',
  ContainerSilent: 'ContainerSilent',
  // Provisioning, templates, storage
  CloneLockTimeout: 'CloneLockTimeout',
  CloneLeftBehind: 'CloneLeftBehind',
  AddressTimeout: 'AddressTimeout',
  NoGuestAddress: 'NoGuestAddress',
  GuestAddressUnknown: 'GuestAddressUnknown',
  AgentSilent: 'AgentSilent',
  NotBootedFromDisk: 'NotBootedFromDisk',
  InstallFailed: 'InstallFailed',
  TemplateVerificationFailed: 'TemplateVerificationFailed',
  VolumeInUse: 'VolumeInUse',
  CleanupIncomplete: 'CleanupIncomplete',
  // Containers, bulk actions, runbooks
  PatchFailed: 'PatchFailed',
  PatchIncomplete: 'PatchIncomplete',
  BulkActionIncomplete: 'BulkActionIncomplete',
  RunbookConflict: 'RunbookConflict',
  RunbookStepFailed: 'RunbookStepFailed',
  StepExpectationFailed: 'StepExpectationFailed',
  PlaybookFailed: 'PlaybookFailed',
  SshNotConfigured: 'SshNotConfigured',
  // Talos clusters
  ProfileChanged: 'ProfileChanged',
  MachineConfigsMismatch: 'MachineConfigsMismatch',
  ClusterIncomplete: 'ClusterIncomplete',
  ClusterNotGone: 'ClusterNotGone',
  TalosctlError: 'TalosctlError',
} as const;

export type FailureType = (typeof Failure)[keyof typeof Failure];

/**
 * The types whose next attempt looks again: talosctl while the Talos API comes up, a lock
 * that should clear, and a create or task request whose answer was lost (the next attempt
 * finds what it did in the node's task list before sending anything).
 */
export const RETRIED: readonly FailureType[] = [
  Failure.TalosctlError,
  Failure.VmLocked,
  Failure.CreateUnanswered,
  Failure.TaskUnanswered,
];

/** What the workflows' activity presets never retry. */
export const NEVER_RETRIED: readonly FailureType[] = Object.values(Failure).filter((t) => !RETRIED.includes(t));
