/**
 * A unified diff of two texts (what `diff -u` prints), so a reviewer sees exactly which
 * lines ingestion changed. Runbooks are small, so a plain longest-common-subsequence table
 * is fast enough and easy to trust.
 */

type Edit = { op: ' ' | '-' | '+'; line: string };

function edits(a: string[], b: string[]): Edit[] {
  const n = a.length;
  const m = b.length;
  // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      lcs[i]![j] = a[i] === b[j] ? lcs[i + 1]![j + 1]! + 1 : Math.max(lcs[i + 1]![j]!, lcs[i]![j + 1]!);
    }
  }
  const out: Edit[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ op: ' ', line: a[i]! });
      i++;
      j++;
    } else if (lcs[i + 1]![j]! >= lcs[i]![j + 1]!) out.push({ op: '-', line: a[i++]! });
    else out.push({ op: '+', line: b[j++]! });
  }
  while (i < n) out.push({ op: '-', line: a[i++]! });
  while (j < m) out.push({ op: '+', line: b[j++]! });
  return out;
}

/** `--- a` / `+++ b` headers and `@@` hunks with `context` lines around each change; empty when equal. */
export function unifiedDiff(before: string, after: string, names: { from: string; to: string }, context = 3): string {
  if (before === after) return '';
  const a = before.split('\n');
  const b = after.split('\n');
  const all = edits(a, b);
  const changed = all.map((e, k) => (e.op === ' ' ? -1 : k)).filter((k) => k >= 0);
  const lines = [`--- ${names.from}`, `+++ ${names.to}`];

  let k = 0;
  while (k < changed.length) {
    const start = Math.max(0, changed[k]! - context);
    let end = Math.min(all.length, changed[k]! + context + 1);
    while (k + 1 < changed.length && changed[k + 1]! - context <= end) {
      k++;
      end = Math.min(all.length, changed[k]! + context + 1);
    }
    k++;
    let oldStart = 1;
    let newStart = 1;
    for (const e of all.slice(0, start)) {
      if (e.op !== '+') oldStart++;
      if (e.op !== '-') newStart++;
    }
    const hunk = all.slice(start, end);
    const oldCount = hunk.filter((e) => e.op !== '+').length;
    const newCount = hunk.filter((e) => e.op !== '-').length;
    lines.push(`@@ -${oldStart},${oldCount} +${newStart},${newCount} @@`);
    for (const e of hunk) lines.push(`${e.op}${e.line}`);
  }
  return `${lines.join('\n')}\n`;
}
