/**
 * How `pm` shows things to a person: tables, the API's plan text (coloured only on a
 * terminal, never when NO_COLOR is set or output is piped), and a progress line.
 */
import type { OperationDetail, OperationSummary } from '../lib/api-client.js';

export interface Output {
  write(text: string): void;
  /** Colour and in-place redraws only on a terminal. */
  isTTY: boolean;
}

const codes = { bold: 1, dim: 2, red: 31, green: 32, yellow: 33, cyan: 36 } as const;
export type Style = keyof typeof codes;

export function painter(out: Output, env: NodeJS.ProcessEnv): (style: Style, text: string) => string {
  const colour = out.isTTY && env.NO_COLOR === undefined;
  return (style, text) => (colour ? `\x1b[${codes[style]}m${text}\x1b[0m` : text);
}

const riskStyle: Record<string, Style> = { low: 'green', medium: 'yellow', high: 'red' };

/** The API's plan text, unchanged but for colour: the headline, risk, headings and warnings. */
export function paintPlan(text: string, paint: ReturnType<typeof painter>): string {
  return text
    .split('\n')
    .map((line, i) => {
      if (i === 0)
        return paint(
          'bold',
          line.replace(/risk (\w+)/, (m, risk: string) => paint(riskStyle[risk] ?? 'bold', m)),
        );
      if (/^(Why this risk|Steps|Warnings):?/.test(line)) return paint('bold', line);
      if (line.startsWith('  ! ')) return paint('yellow', line);
      if (/^ {5}\S/.test(line)) return paint('dim', line);
      return line;
    })
    .join('\n');
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length)));
  return rows
    .map((r) => r.map((cell, col) => (col === r.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  '))
    .join('\n');
}

export function operationsTable(ops: OperationSummary[]): string {
  if (ops.length === 0) return 'no operations';
  return table([
    ['ID', 'STATE', 'APPROVAL', 'RISK', 'REQUESTER', 'STARTED'],
    ...ops.map((o) => [o.id, o.state, o.approvalState ?? '-', o.risk ?? '-', o.requester ?? '-', o.startedAt]),
  ]);
}

/** `[########------------] 2/5 steps · applying · 1001 1.2 GiB of 4 GiB` */
export function progressLine(op: OperationDetail, width = 20): string {
  const progress = op.status?.progress ?? { pending: 0, running: 0, succeeded: 0, failed: 0, skipped: 0 };
  const done = progress.succeeded + progress.skipped + progress.failed;
  const total = Math.max(done + progress.running + progress.pending, op.status?.plan?.stepCount ?? 0);
  const filled = total > 0 ? Math.round((done / total) * width) : 0;
  const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
  const phase = op.status?.phase ?? op.state;
  const transfers = (op.transfers ?? []).map((t) => `${t.vmid ?? 'migration'} ${t.transferred} of ${t.of}`);
  return [`${bar} ${done}/${total} steps`, phase, ...transfers].join(' · ');
}
