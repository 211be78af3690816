/**
 * The checks PVE makes inside the config handlers, beyond each endpoint's declared check: per
 * property written or deleted (qemu-server's check_vm_modify_config_perm, pve-container's
 * check_ct_modify_config_perm), `Datastore.AllocateSpace` on a storage a disk is allocated on,
 * `SDN.Use` on the bridge a NIC joins, and properties only root@pam may write. The
 * privileges come from lib/rbac.ts, the same table the orchestrator's least-privilege role is
 * derived from.
 */
import { configWritePrivileges, rootOnlyReason } from '../../lib/rbac.js';
import { fail, PveError } from '../errors.js';
import type { GuestType } from '../guest-config.js';
import type { Can } from './views.js';

/** Where PVE checks a privilege a property needs; undefined when the value names no such object. */
function pathOf(privilege: string, vmid: number, value: string): string | undefined {
  if (privilege.startsWith('VM.')) return `/vms/${vmid}`;
  if (privilege.startsWith('Datastore.')) {
    const sid = /^([a-z][a-z0-9\-_.]*[a-z0-9]):/i.exec(value)?.[1];
    return sid && `/storage/${sid}`;
  }
  if (privilege === 'SDN.Use') {
    const bridge = /(?:^|,)bridge=([^,]+)/.exec(value)?.[1];
    return bridge && `/sdn/zones/localnetwork/${bridge}`;
  }
  return undefined;
}

/**
 * Refuses a request writing `sets` and deleting `deletes` on guest `vmid` as PVE would: 500
 * `only root can set '<key>' config` for root-only properties, else 403
 * `Permission check failed (<path>, <privilege>)` for the first privilege missing.
 */
export function checkConfigWrites(
  can: Can,
  type: GuestType,
  vmid: number,
  sets: readonly [string, string][],
  deletes: readonly string[],
): void {
  const writes = [...sets.map(([key, value]) => ({ key, value })), ...deletes.map((key) => ({ key, value: '' }))];
  for (const { key, value } of writes) {
    const rootOnly = rootOnlyReason({ type, key, value });
    if (rootOnly) throw fail(rootOnly);
    for (const alternatives of configWritePrivileges({ type, key, value })) {
      const path = pathOf(alternatives[0]!, vmid, value);
      if (path && !can(path, alternatives))
        throw new PveError(403, `Permission check failed (${path}, ${alternatives.join('|')})`);
    }
  }
}
