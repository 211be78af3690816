import { describe, expect, it } from 'vitest';
import { parseUpid } from '../../lib/pve/upid.js';
import { API_CALLER, manualCluster } from './sim-fixtures.js';

describe('simulated tasks', () => {
  it('mint real-format UPIDs naming node, type, guest and token', () => {
    const cluster = manualCluster();
    const task = cluster.tasks.start({
      node: 'pve2',
      type: 'qmstart',
      id: '105',
      authid: API_CALLER.authid,
      run: async () => {},
    });
    expect(task.upid).toMatch(/^UPID:pve2:[0-9A-F]{8}:[0-9A-F]{8}:[0-9A-F]{8}:qmstart:105:automation@pve!pm:$/);
    expect(parseUpid(task.upid)).toMatchObject({ node: 'pve2', type: 'qmstart', id: '105', user: 'automation@pve!pm' });
    expect(task).toMatchObject({ user: 'automation@pve', tokenid: 'pm' });
    const other = cluster.tasks.start({
      node: 'pve2',
      type: 'qmstop',
      id: '105',
      authid: API_CALLER.authid,
      run: async () => {},
    });
    expect(other.upid).not.toBe(task.upid);
  });

  it('run on the simulated clock, then stop with OK', async () => {
    const cluster = manualCluster();
    const task = cluster.tasks.start({
      node: 'pve1',
      type: 'test',
      id: '',
      authid: API_CALLER.authid,
      run: async (ctx) => {
        ctx.log('working');
        await ctx.sleep(10_000);
      },
    });
    await cluster.clock.advance(9_000);
    expect(task.status).toBe('running');
    expect(task.exitstatus).toBeUndefined();
    await cluster.clock.advance(1_000);
    expect(task).toMatchObject({ status: 'stopped', exitstatus: 'OK', lines: ['working', 'TASK OK'] });
    expect(task.endtime! - task.starttime).toBe(10);
  });

  it('count only WARN: lines into WARNINGS: N', async () => {
    const cluster = manualCluster();
    const task = cluster.tasks.start({
      node: 'pve1',
      type: 'test',
      id: '',
      authid: API_CALLER.authid,
      run: async (ctx) => {
        ctx.log('warning: not counted');
        ctx.warn('one');
        ctx.warn('two');
      },
    });
    await cluster.clock.advance(0);
    expect(task.exitstatus).toBe('WARNINGS: 2');
    expect(task.lines.at(-1)).toBe('TASK WARNINGS: 2');
  });

  it('end with the error message as exit status and a TASK ERROR line', async () => {
    const cluster = manualCluster();
    const task = cluster.tasks.start({
      node: 'pve1',
      type: 'test',
      id: '',
      authid: API_CALLER.authid,
      run: async () => {
        throw new Error('something\nbroke');
      },
    });
    await cluster.clock.advance(0);
    expect(task.exitstatus).toBe('something broke');
    expect(task.lines.at(-1)).toBe('TASK ERROR: something broke');
  });

  it('stop when asked, as interrupted by signal', async () => {
    const cluster = manualCluster();
    const task = cluster.tasks.start({
      node: 'pve1',
      type: 'test',
      id: '',
      authid: API_CALLER.authid,
      run: (ctx) => ctx.sleep(60_000),
    });
    await cluster.clock.advance(1_000);
    cluster.tasks.stop(task.upid);
    await cluster.clock.advance(0);
    expect(task.exitstatus).toBe('interrupted by signal');
  });

  it('fail as injected, once, with or without doing their work', async () => {
    const cluster = manualCluster();
    cluster.faults.failTask({ type: 'qmstart', vmid: 104, times: 1 });
    cluster.faults.failTask({ type: 'test', message: 'late failure', when: 'after', times: 1 });
    let worked = false;
    const before = cluster.tasks.start({
      node: 'pve1',
      type: 'qmstart',
      id: '104',
      authid: API_CALLER.authid,
      run: async () => void (worked = true),
    });
    const after = cluster.tasks.start({
      node: 'pve1',
      type: 'test',
      id: '',
      authid: API_CALLER.authid,
      run: async () => void (worked = true),
    });
    const again = cluster.tasks.start({
      node: 'pve1',
      type: 'qmstart',
      id: '104',
      authid: API_CALLER.authid,
      run: async () => {},
    });
    await cluster.clock.advance(1_000);
    expect(before.exitstatus).toBe('start failed: QEMU exited with code 1');
    expect(after.exitstatus).toBe('late failure');
    expect(worked).toBe(true);
    expect(again.exitstatus).toBe('OK');
    expect(cluster.counters.tasks('qmstart', 104)).toBe(2);
  });
});
