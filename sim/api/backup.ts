/** /nodes/{node}/vzdump and /nodes/{node}/vzdump/extractconfig */
import { extractConfig, vzdump } from '../ops/backup.js';
import type { Handlers } from './context.js';

export const backupHandlers: Handlers = {
  vzdump: ({ cluster, caller, params, local, can }) =>
    vzdump(
      cluster,
      caller,
      params.node ?? local,
      {
        vmids: (params.vmid ?? '').split(/[\s,;]+/).filter(Boolean).map(Number),
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
