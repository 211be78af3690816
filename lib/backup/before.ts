/**
 * `policy.backup_before`: the plans that back a guest up before they destroy or overwrite it.
 * The backup is a plan step of its own, at the head of the guest's steps, so the approver sees
 * it; the workflows run a guest's steps in order and stop at the first failure, so the
 * destructive step runs only after the backup task ended OK.
 */
import type { PlanStep } from '../operations/plan.js';

/**
 * The destructive plans a policy can ask a backup before: `delete` (a vm-action or bulk-action
 * delete), `reconcile-replace` and `reconcile-delete` (a manifest replacing a guest, or
 * no longer listing one it claims), `restore-in-place` (a restore over the guest).
 */
export const BACKUP_BEFORE = ['delete', 'reconcile-replace', 'reconcile-delete', 'restore-in-place'] as const;
export type BackupBefore = (typeof BACKUP_BEFORE)[number];

/** What happens to the guest after its backup, as the step and the archive's notes say it. */
const AFTERWARDS: Record<BackupBefore, { done: string; notes: string }> = {
  delete: { done: 'deleted', notes: 'delete' },
  'reconcile-replace': { done: 'replaced (reconcile)', notes: 'replace' },
  'reconcile-delete': { done: 'deleted (reconcile)', notes: 'delete' },
  'restore-in-place': { done: 'overwritten by a restore', notes: 'restore' },
};

export interface BackupBeforePolicy {
  backup_before: readonly BackupBefore[];
  backup_storage?: string | undefined;
}

export interface GuestToBackUp {
  vmid: number;
  name: string;
  node: string;
  type: 'qemu' | 'lxc';
}

/**
 * The backup step the policy puts before `kind` destroys the guest (none when the policy does
 * not ask for one): a protected snapshot-mode vzdump, so the guest's last state outlives it
 * and no prune removes it.
 */
export function backupBefore(
  policy: BackupBeforePolicy,
  kind: BackupBefore,
  guest: GuestToBackUp,
  id = 'backup',
): PlanStep[] {
  if (!policy.backup_before.includes(kind)) return [];
  const storage = policy.backup_storage!;
  const { done, notes } = AFTERWARDS[kind];
  return [
    {
      id,
      action: 'backup',
      vmid: guest.vmid,
      name: guest.name,
      node: guest.node,
      description: `back up ${guest.type === 'qemu' ? 'VM' : 'CT'} ${guest.vmid} '${guest.name}' to ${storage} before it is ${done} (policy backup_before: ${kind})`,
      params: {
        storage,
        mode: 'snapshot',
        compress: 'zstd',
        'notes-template': `{{guestname}} before ${notes}`,
        protected: true,
      },
    },
  ];
}
