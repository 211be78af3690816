/**
 * Watches a simulated cluster while a strategy runs: the peak memory of every node (guests,
 * host, and memory reserved for incoming migrations) and when each migration task started and
 * ended, in simulated milliseconds. Samples every few wall milliseconds, so at clock speed S
 * the timings are accurate to about S times that.
 */
import type { SimulatedCluster } from '../sim/index.js';

const MIGRATION_TASKS = new Set(['qmigrate', 'vzmigrate', 'hamigrate']);
const SAMPLE_MS = 5;

export interface TaskTiming {
  type: string;
  vmid: number;
  node: string;
  start: number;
  end?: number;
  exitstatus?: string;
}

export interface Samples {
  /** Node -> the most memory it held at once (bytes). */
  peakMemory: Map<string, number>;
  /** By UPID. */
  tasks: Map<string, TaskTiming>;
}

export function sampleCluster(sim: SimulatedCluster): { stop(): Samples } {
  const samples: Samples = { peakMemory: new Map(), tasks: new Map() };
  const tick = () => {
    const now = sim.clock.now();
    for (const node of sim.state.nodes.keys()) {
      const used = sim.cluster.usedMemory(node) + sim.state.node(node).reservedMemory;
      samples.peakMemory.set(node, Math.max(samples.peakMemory.get(node) ?? 0, used));
    }
    for (const task of sim.cluster.tasks.all()) {
      if (!MIGRATION_TASKS.has(task.type)) continue;
      let timing = samples.tasks.get(task.upid);
      if (!timing) {
        timing = { type: task.type, vmid: Number(task.id), node: task.node, start: now };
        samples.tasks.set(task.upid, timing);
      }
      if (task.status === 'stopped' && timing.end === undefined) {
        timing.end = now;
        if (task.exitstatus) timing.exitstatus = task.exitstatus;
      }
    }
  };
  tick();
  const timer = setInterval(tick, SAMPLE_MS);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return samples;
    },
  };
}
