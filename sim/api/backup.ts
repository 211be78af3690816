/**
 * /nodes/{node}/vzdump and /nodes/{node}/vzdump/extractconfig, and the create calls that are
 * restores: POST /nodes/{node}/qemu with `archive`, POST /nodes/{node}/lxc with `restore=1`.
 */
import { extractConfig, restoreGuest, restoreRequest, vzdump } from '../ops/backup.js';
import type { Handler, Handlers } from './context.js';

export const backupHandlers: Handlers = {
  vzdump: ({ cluster, caller, params, local, can }) =>
    vzdump(
      cluster,
      caller,
      params.node ?? local,
      {
        vmids: (params.vmid ?? '')
          .split(/[\s,;]+/)
          .filter(Boolean)
          .map(Number),
        storage: params.storage ?? 'local',
        mode: params.mode ?? 'snapshot',
        compress: params.compress ?? '0',
        lockwait: params.lockwait ?? 180,
        ...(params['notes-template'] !== undefined ? { notesTemplate: params['notes-template'] } : {}),
        ...(params.protected !== undefined ? { protected: params.protected } : {}),
        ...(params.bwlimit !== undefined ? { bwlimit: params.bwlimit } : {}),
      },
      can,
    ).upid,
  vzdumpExtractConfig: ({ cluster, params, can }) => extractConfig(cluster, params.node, params.volume, can),
};

/** The guest create handlers, with the calls that carry a backup archive answered as restores. */
export function withRestores(create: { qemuCreate: Handler<'qemuCreate'>; lxcCreate: Handler<'lxcCreate'> }): Handlers {
  return {
    qemuCreate: (ctx) => {
      const { cluster, caller, params, can } = ctx;
      if (params.archive === undefined) return create.qemuCreate(ctx);
      return restoreGuest(cluster, caller, params.node, 'qemu', restoreRequest(params, params.archive), can).upid;
    },
    lxcCreate: (ctx) => {
      const { cluster, caller, params, can } = ctx;
      if (!params.restore) return create.lxcCreate(ctx);
      return restoreGuest(cluster, caller, params.node, 'lxc', restoreRequest(params, params.ostemplate), can).upid;
    },
  };
}
