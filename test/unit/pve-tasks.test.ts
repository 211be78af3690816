import { describe, expect, it } from 'vitest';
import { createPveClient } from '../../lib/pve/client.js';
import { decodeFormParams, type WireRequest } from '../../lib/pve/endpoint.js';
import { matchEndpoint } from '../../lib/pve/registry.js';
import { PveApiError, PveTaskFailedError, PveTaskWaitError, PveUnavailableError } from '../../lib/pve/errors.js';
import { waitForTask } from '../../lib/pve/tasks/wait.js';
import type { PveEnvelope, PveTransport } from '../../lib/pve/transport.js';

const upid = 'UPID:pve2:000934AF:0D015579:68BF3A41:qmigrate:101:automation@pve!orchestrator:';

interface FakeTask {
  /** Exit status once stopped; the task stops after `runningPolls` status reads. */
  exitstatus: string;
  runningPolls: number;
  log: string[];
}

/** A node's task API over a scripted task, answering through the real endpoint definitions. */
function taskApi(task: FakeTask, opts: { failFirstPolls?: number; failFirstLogReads?: number } = {}) {
  const sent: WireRequest[] = [];
  let polls = 0;
  let failures = opts.failFirstPolls ?? 0;
  let logFailures = opts.failFirstLogReads ?? 0;
  const transport: PveTransport = {
    async send(req): Promise<PveEnvelope> {
      sent.push(req);
      const { endpoint, pathParams } = matchEndpoint(req.method, req.path)!;
      const decoded = decodeFormParams(endpoint, { ...pathParams, ...Object.fromEntries(req.form) });
      if (!decoded.ok) throw new Error(JSON.stringify(decoded.errors));
      const p = decoded.value as { node: string; upid: string; start?: number; limit?: number };
      if (endpoint.name === 'taskStatus') {
        if (failures-- > 0)
          throw new PveUnavailableError({ method: 'GET', path: req.path }, 'ECONNRESET', {
            requestMayHaveBeenSent: true,
          });
        const stopped = ++polls > task.runningPolls;
        return {
          data: {
            upid: p.upid,
            node: p.node,
            pid: 0x934af,
            pstart: 0xd015579,
            starttime: 0x68bf3a41,
            type: 'qmigrate',
            id: '101',
            user: 'automation@pve!orchestrator',
            status: stopped ? 'stopped' : 'running',
            ...(stopped ? { exitstatus: task.exitstatus } : {}),
          },
        };
      }
      if (endpoint.name === 'taskLog') {
        // pveproxy's answer when the node's daemon hiccups: a bare 500 that says nothing about the request.
        if (logFailures-- > 0) throw new PveApiError({ method: 'GET', path: req.path }, 500, 'Internal Server Error');
        const lines = task.log.map((t, i) => ({ n: i + 1, t }));
        const window = lines.slice(p.start ?? 0, (p.start ?? 0) + (p.limit ?? 50));
        return lines.length === 0
          ? { data: [{ n: 1, t: 'no content' }], total: 1 }
          : { data: window, total: lines.length };
      }
      throw new Error(`unexpected ${endpoint.name}`);
    },
    async close() {},
  };
  const client = createPveClient({ nodes: [], tls: {}, credential: { tokenId: '', secret: '' }, transport });
  return { client, sent };
}

describe('waitForTask', () => {
  it('polls the node named in the UPID until the task stops OK', async () => {
    const { client, sent } = taskApi({
      exitstatus: 'OK',
      runningPolls: 2,
      log: ['start migrate', 'migration finished successfully'],
    });
    const status = await waitForTask(client, upid, { pollMs: 1 });

    expect(status).toMatchObject({ status: 'stopped', exitstatus: 'OK' });
    expect(sent.filter((r) => r.path.endsWith('/status'))).toHaveLength(3);
    expect(sent.every((r) => r.path.startsWith('/nodes/pve2/tasks/'))).toBe(true);
  });

  it('counts WARNINGS: n as success', async () => {
    const { client } = taskApi({ exitstatus: 'WARNINGS: 2', runningPolls: 0, log: ['WARN: x', 'WARN: y'] });
    await expect(waitForTask(client, upid, { pollMs: 1 })).resolves.toMatchObject({ exitstatus: 'WARNINGS: 2' });
  });

  it('throws the exit status with the last log lines when the task failed', async () => {
    const log = Array.from({ length: 1200 }, (_, i) => `line ${i + 1}`).concat([
      "can't migrate local disk 'local-lvm:vm-101-disk-0': can't live migrate attached local disks without with-local-disks option",
      'TASK ERROR: migration aborted',
    ]);
    const { client } = taskApi({ exitstatus: 'migration aborted', runningPolls: 1, log });
    const err = (await waitForTask(client, upid, { pollMs: 1, tailLines: 3 }).catch(
      (e: unknown) => e,
    )) as PveTaskFailedError;

    expect(err).toBeInstanceOf(PveTaskFailedError);
    expect(err.exitstatus).toBe('migration aborted');
    expect(err.upid).toBe(upid);
    expect(err.logTail).toEqual([
      'line 1200',
      "can't migrate local disk 'local-lvm:vm-101-disk-0': can't live migrate attached local disks without with-local-disks option",
      'TASK ERROR: migration aborted',
    ]);
    expect(err.message).toMatch(/^task qmigrate 101 on pve2 .* failed: migration aborted\n/);
  });

  it("keeps the failed task's log when reading it first meets a bare server error", async () => {
    const { client } = taskApi(
      { exitstatus: 'migration aborted', runningPolls: 0, log: ['TASK ERROR: migration aborted'] },
      { failFirstLogReads: 2 },
    );
    const err = (await waitForTask(client, upid, { pollMs: 1 }).catch((e: unknown) => e)) as PveTaskFailedError;

    expect(err).toBeInstanceOf(PveTaskFailedError);
    expect(err.logTail).toEqual(['TASK ERROR: migration aborted']);
  });

  it('reports progress with the log so far while the task runs', async () => {
    const task = { exitstatus: 'OK', runningPolls: 2, log: [] as string[] };
    const { client } = taskApi(task);
    const seen: string[][] = [];
    await waitForTask(client, upid, {
      pollMs: 1,
      onProgress: (status, tail) => {
        expect(status.status).toBe('running');
        seen.push(tail);
        task.log.push(`progress ${task.log.length + 1}`);
      },
    });
    // The first read found an empty log ('no content' is not a line); the second found one line.
    expect(seen).toEqual([[], ['progress 1']]);
  });

  it('rides out transient errors while polling', async () => {
    const { client } = taskApi({ exitstatus: 'OK', runningPolls: 0, log: [] }, { failFirstPolls: 2 });
    await expect(waitForTask(client, upid, { pollMs: 1 })).resolves.toMatchObject({ exitstatus: 'OK' });
  });

  it('stops waiting (the task keeps running) on timeout or abort', async () => {
    const { client } = taskApi({ exitstatus: 'OK', runningPolls: Infinity, log: [] });
    await expect(waitForTask(client, upid, { pollMs: 5, timeoutMs: 30 })).rejects.toThrow(PveTaskWaitError);

    const controller = new AbortController();
    setTimeout(() => controller.abort(), 20);
    await expect(waitForTask(client, upid, { pollMs: 5, signal: controller.signal })).rejects.toThrow(/cancelled/);
  });

  it('refuses something that is not a UPID', async () => {
    const { client } = taskApi({ exitstatus: 'OK', runningPolls: 0, log: [] });
    await expect(waitForTask(client, 'UPID:nonsense')).rejects.toThrow(/not a PVE task id/);
  });
});
