/**
 * ISO images fetched into a storage by URL, with their checksum verified by PVE.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { downloadOutsidePolicy, outsidePolicyReason } from '../lib/config/download-policy.js';
import type { IsoImportInput } from '../lib/operations/catalog.js';
import { formatBytes } from '../lib/planning/units.js';
import type { PlanDraft, PlanStep } from '../lib/operations/plan.js';
import type { WorkerDeps } from '../worker/deps.js';
import { classified, fail } from './failures.js';
import { Failure } from '../lib/operations/failures.js';
import type { VmStepOutcome } from './vm.js';

export function createIsoImportActivities(deps: Pick<WorkerDeps, 'pve' | 'config'>) {
  return {
    async planIsoImport(input: IsoImportInput): Promise<PlanDraft<{ volid: string }>> {
      const client = await deps.pve(input.environment);
      return classified('write', async () => {
        const storages = await client.storage.list({ node: input.node });
        const storage = storages.find((s) => s.storage === input.storage);
        if (!storage)
          fail(
            Failure.PlanRefused,
            `storage: '${input.storage}' is not available on ${input.node} (has: ${storages.map((s) => s.storage).join(', ')})`,
          );
        if (!storage.content.split(',').includes('iso')) {
          fail(
            Failure.PlanRefused,
            `storage: '${input.storage}' does not hold ISO images (content: ${storage.content})`,
          );
        }
        const volid = `${input.storage}:iso/${input.filename}`;
        const existing = await client.storage.content({ node: input.node, storage: input.storage, content: 'iso' });
        if (existing.some((v) => v.volid === volid)) {
          fail(Failure.PlanRefused, `filename: ${volid} already exists; remove it first or choose another name`);
        }
        const outside = downloadOutsidePolicy(input.url, deps.config.environments[input.environment]!.downloads);
        const steps: PlanStep[] = [
          {
            id: 'download',
            action: 'download',
            node: input.node,
            params: { url: input.url, filename: input.filename, [input.checksumAlgorithm]: input.checksum },
            description: `download ${input.url} to ${volid} on ${input.node}; PVE verifies its ${input.checksumAlgorithm} checksum`,
          },
          {
            id: 'verify',
            action: 'verify',
            node: input.node,
            description: `check ${volid} is listed in ${input.storage}`,
          },
        ];
        return {
          summary: `import ISO ${input.filename} into ${input.storage} on ${input.node}`,
          risk: outside ? 'high' : 'low',
          reasons: [
            'adds a file to a storage; the checksum is verified before it is kept',
            ...(outside ? [outsidePolicyReason(outside)] : []),
          ],
          steps,
          warnings: storage.avail !== undefined ? [`${input.storage} has ${formatBytes(storage.avail)} free`] : [],
          nodes: [input.node],
          vmids: [],
          estimatedDurationMs: 60_000,
          details: { volid },
        };
      });
    },

    /** Starts the download unless the file is already there (an earlier attempt finished it). */
    async startIsoDownload(input: IsoImportInput): Promise<VmStepOutcome> {
      const client = await deps.pve(input.environment);
      return classified('write', async () => {
        const volid = `${input.storage}:iso/${input.filename}`;
        const existing = await client.storage.content({ node: input.node, storage: input.storage, content: 'iso' });
        if (existing.some((v) => v.volid === volid)) return { kind: 'already-done', detail: `${volid} exists` };
        const active = await client.tasks.list({ node: input.node, source: 'active', typefilter: 'download' });
        const running = active.find((t) => t.id === input.filename);
        if (running) return { kind: 'dispatched', upid: running.upid };
        const upid = await client.storage.downloadUrl({
          node: input.node,
          storage: input.storage,
          url: input.url,
          content: 'iso',
          filename: input.filename,
          checksum: input.checksum.toLowerCase(),
          'checksum-algorithm': input.checksumAlgorithm,
        });
        return { kind: 'dispatched', upid };
      });
    },

    async verifyVolume(args: {
      environment: string;
      node: string;
      storage: string;
      volid: string;
    }): Promise<{ volid: string; size: number }> {
      const client = await deps.pve(args.environment);
      return classified('write', async () => {
        const volumes = await client.storage.content({ node: args.node, storage: args.storage });
        const volume = volumes.find((v) => v.volid === args.volid);
        if (!volume) {
          throw ApplicationFailure.create({
            type: Failure.NotAsPlanned,
            message: `${args.volid} is not in ${args.storage} on ${args.node}`,
            nonRetryable: true,
          });
        }
        return { volid: volume.volid, size: volume.size };
      });
    },
  };
}

export type IsoImportActivities = ReturnType<typeof createIsoImportActivities>;
