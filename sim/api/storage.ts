/** /nodes/{node}/storage/* */
import { fail } from '../errors.js';
import { deleteVolume, downloadUrl, storageContent, storageList } from '../ops/storage.js';
import type { Handlers } from './context.js';

export const storageHandlers: Handlers = {
  storageList: ({ cluster, params, can }) =>
    storageList(
      cluster,
      params.node,
      {
        ...(params.content !== undefined ? { content: params.content } : {}),
        ...(params.storage !== undefined ? { storage: params.storage } : {}),
      },
      (sid) => can(`/storage/${sid}`, ['Datastore.Audit', 'Datastore.AllocateSpace']),
    ),
  storageStatus: ({ cluster, params }) => {
    const [entry] = storageList(cluster, params.node, { storage: params.storage }, () => true);
    if (!entry) {
      if (!cluster.state.storages.has(params.storage)) throw fail(`storage '${params.storage}' does not exist`);
      throw fail(`storage '${params.storage}' is not available on node '${params.node}'`);
    }
    const { storage: _id, used_fraction: _fraction, ...status } = entry;
    return status;
  },
  storageContent: ({ cluster, params }) =>
    storageContent(cluster, params.node, params.storage, {
      ...(params.content !== undefined ? { content: params.content } : {}),
      ...(params.vmid !== undefined ? { vmid: params.vmid } : {}),
    }),
  storageDownloadUrl: ({ cluster, caller, params }) =>
    downloadUrl(cluster, caller, params.node, {
      storage: params.storage,
      url: params.url,
      content: params.content,
      filename: params.filename,
      ...(params.checksum !== undefined ? { checksum: params.checksum } : {}),
      ...(params['checksum-algorithm'] !== undefined ? { checksumAlgorithm: params['checksum-algorithm'] } : {}),
    }).upid,
  storageDeleteVolume: async ({ cluster, caller, params }) => {
    const sid = params.storage ?? params.volume.split(':')[0]!;
    const task = deleteVolume(cluster, caller, params.node, sid, params.volume);
    if (params.delay === undefined) return task.upid;
    await Promise.race([task.done, cluster.clock.sleep(params.delay * 1000)]);
    if (task.status === 'running') return task.upid;
    if (task.exitstatus !== 'OK') throw fail(task.exitstatus ?? 'delete failed');
    return null;
  },
};
