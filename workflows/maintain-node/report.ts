/** A node's report: its one-line description, and how it reaches the rollout. */
import { getExternalWorkflowHandle } from '@temporalio/workflow';
import { nodeReportSignal, type NodeReport } from '../maintenance-definitions.js';

export function describeNode(r: NodeReport): string {
  const where = r.halted ? `HALTED at ${r.halted.step}: ${r.halted.error}` : r.step ? r.step : r.state;
  return `${r.node}: ${where} — ${r.moved} guest(s) moved off, ${r.returned} back`;
}

/**
 * Sends the node's report to the rolling maintenance, one signal at a time and in order;
 * reports are whole, so only the newest waiting one is sent.
 */
export function reportTo(workflowId: string) {
  let waiting: NodeReport | undefined;
  let sending = false;
  let chain: Promise<void> = Promise.resolve();
  const drain = async (): Promise<void> => {
    sending = true;
    try {
      while (waiting) {
        const next = waiting;
        waiting = undefined;
        await getExternalWorkflowHandle(workflowId).signal(nodeReportSignal, next);
      }
    } finally {
      sending = false;
    }
  };
  return {
    send(report: NodeReport) {
      waiting = JSON.parse(JSON.stringify(report)) as NodeReport;
      if (!sending) chain = drain();
    },
    async flushed() {
      await chain;
      if (waiting) await drain();
    },
  };
}
