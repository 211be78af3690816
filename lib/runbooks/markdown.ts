/**
 * A runbook file: YAML front matter between `---` lines, then the markdown a person reads.
 * Parsing validates the front matter with the one runbook schema and reports every problem
 * as `path: reason`.
 */
import { isMap, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { RunbookSchema, type Runbook } from './schema.js';

export class RunbookError extends Error {
  constructor(
    readonly source: string,
    readonly issues: readonly string[],
  ) {
    super(`invalid runbook ${source}:\n${issues.map((i) => `  ${i}`).join('\n')}`);
    this.name = 'RunbookError';
  }
}

export interface RunbookFile {
  runbook: Runbook;
  /** The front matter as a YAML document (comments kept), for adapting it in place. */
  document: Document;
  /** The markdown after the front matter. */
  body: string;
}

const FRONT_MATTER = /^---[ \t]*\r?\n([\s\S]*?)\r?\n---[ \t]*(?:\r?\n|$)/;

function describe(issue: z.core.$ZodIssue): string {
  const path = issue.path.map(String).join('.') || '(front matter)';
  return `${path}: ${issue.message}`;
}

function splitFrontMatter(text: string, source: string): { yaml: string; body: string } {
  const m = FRONT_MATTER.exec(text.replace(/^\uFEFF/, ''));
  if (!m) throw new RunbookError(source, ['(file): must start with YAML front matter between --- lines']);
  return { yaml: m[1]!, body: text.slice(m[0].length + (text.startsWith('\uFEFF') ? 1 : 0)) };
}

/** Validates a runbook's front matter object. */
function validateRunbook(data: unknown, source: string): Runbook {
  const result = RunbookSchema.safeParse(data);
  if (!result.success) throw new RunbookError(source, result.error.issues.map(describe));
  return result.data;
}

export function parseRunbookMarkdown(text: string, source = '(inline)'): RunbookFile {
  const { yaml, body } = splitFrontMatter(text, source);
  const lineCounter = new LineCounter();
  const document = parseDocument(yaml, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (document.errors.length > 0) {
    throw new RunbookError(
      source,
      document.errors.map((e) => {
        const pos = lineCounter.linePos(e.pos[0]);
        // The front matter starts on line 2 of the file.
        return `(front matter line ${pos.line + 1}): ${e.message.split('\n')[0]}`;
      }),
    );
  }
  if (!isMap(document.contents)) throw new RunbookError(source, ['(front matter): must be a YAML mapping']);
  return { runbook: validateRunbook(document.toJS(), source), document, body };
}

/** Flow collections read the same whatever the spacing inside their brackets. */
function bracketSpacing(line: string): string {
  return line.replace(/([[{])\s+/g, '$1').replace(/\s+([\]}])/g, '$1');
}

/**
 * The runbook file for an edited front matter. The YAML library re-renders flow collections
 * with its own bracket spacing (`[api]` becomes `[ api ]`); lines that differ from the
 * original only in that spacing are given back as they were, so a diff shows real changes.
 */
export function formatRunbookMarkdown(document: Document, body: string, original?: string): string {
  const originalLines = new Map((original ?? '').split('\n').map((line) => [bracketSpacing(line), line]));
  const yaml = document
    .toString({ lineWidth: 0, singleQuote: true })
    .trimEnd()
    .split('\n')
    .map((line) => originalLines.get(bracketSpacing(line)) ?? line)
    .join('\n');
  return `---\n${yaml}\n---\n${body}`;
}
