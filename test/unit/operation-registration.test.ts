/**
 * A kind is registered completely or this fails: the checklist of docs/architecture.md
 * ("Adding an operation kind"), one assertion per item, and the layering it relies on
 * (docs/architecture.md, "Folders").
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { loadConfig } from '../../lib/config/load.js';
import { operations, type OperationKind } from '../../lib/operations/catalog.js';
import { requestExamples } from '../../lib/operations/request-docs.js';
import { buildWorkerDeps } from '../../worker/deps.js';
import * as workflows from '../../workflows/index.js';

const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const camel = (kind: string) => kind.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** Workflows that run no kind of their own, and who starts them. */
const notKinds: Record<string, string> = {
  migrateGuests: 'a child of evacuation and maintainNode',
  maintainNode: 'a child of rollingMaintenance',
  detectDrift: 'the drift schedule (lib/manifest/schedule.ts)',
};

const byKind = operations.map((op) => [op.kind, op as OperationKind] as const);
const registered = workflows as unknown as Record<string, unknown>;

describe.each(byKind)('kind %s', (kind, op) => {
  it('is run by a workflow named after its kind, or after the kind whose workflow it shares', () => {
    const owner = operations.find((o) => camel(o.kind) === op.workflowType);
    expect(owner, `${op.workflowType} is not the camelCase of any kind`).toBeDefined();
    expect(owner!.workflowType).toBe(op.workflowType);
  });

  it('has its workflow in workflows/<kind>.ts, exported to the worker', () => {
    const file = kebab(op.workflowType);
    expect(read(`workflows/${file}.ts`)).toContain(`export async function ${op.workflowType}(`);
    expect(read('workflows/index.ts')).toContain(`export { ${op.workflowType} } from './${file}.js';`);
    expect(typeof registered[op.workflowType]).toBe('function');
  });

  it('is named by its workflow, which lists, audits and reports it under that kind', () => {
    expect(read(`workflows/${kebab(op.workflowType)}.ts`)).toContain(`'${kind}'`);
  });

  it('refuses a request with a field it does not know (zod at the edge)', () => {
    expect(op.body.safeParse(requestExamples[kind as keyof typeof requestExamples]).success).toBe(true);
    expect(
      op.body.safeParse({ ...(requestExamples[kind as keyof typeof requestExamples] as object), notAField: 1 }).success,
    ).toBe(false);
  });

  it('is explained on its docs page and in docs/requests.md', () => {
    const page = `docs/${op.docs}`;
    expect(existsSync(new URL(page, root)), `${page} is missing`).toBe(true);
    expect(read(page), `${page} does not name ${kind}`).toMatch(new RegExp(`(\`|/operations/)${kind}\\b`));
    expect(read('docs/requests.md')).toContain(`## \`${kind}\``);
  });
});

describe('the worker', () => {
  it('registers no workflow beyond the kinds, the children and schedules named here, and aliases of them', () => {
    const runs = new Set(operations.map((op) => registered[op.workflowType]));
    for (const name of Object.keys(notKinds)) runs.add(registered[name]);
    const strays = Object.entries(registered)
      .filter(([, fn]) => !runs.has(fn))
      .map(([name]) => name);
    expect(strays).toEqual([]);
  });

  it('wires every activity factory of activities/ into createActivities, each activity name once', async () => {
    const deps = buildWorkerDeps(loadConfig(new URL('config/proxmox-manager.example.yaml', root).pathname));
    const wired = Object.keys(createActivities(deps));
    const made: string[] = [];
    for (const file of readdirSync(new URL('activities/', root)).filter((f) => f.endsWith('.ts'))) {
      const module = (await import(`../../activities/${file}`)) as Record<string, unknown>;
      for (const [name, factory] of Object.entries(module)) {
        if (/^create\w+Activities$/.test(name) && name !== 'createActivities') {
          made.push(...Object.keys((factory as (d: typeof deps) => object)(deps)));
        }
      }
    }
    expect(made.filter((name) => !wired.includes(name))).toEqual([]);
    expect(made.filter((name, i) => made.indexOf(name) !== i)).toEqual([]);
  });
});

describe('layers', () => {
  const sources = (dir: string): string[] =>
    readdirSync(new URL(dir, root), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => `${dir}${f}`);

  const importing = (dir: string, from: string) =>
    sources(dir).filter((f) => new RegExp(`from '(\\.\\./)+${from}/`).test(read(f)));

  it.each(['lib/', 'activities/'])('%s imports nothing from workflows/', (dir) => {
    expect(importing(dir, 'workflows')).toEqual([]);
  });

  /** What a workflow may load into its sandbox besides types: small, pure, deterministic. */
  const workflowModules = [
    'lib/backup/limits.ts',
    'lib/lifecycle/bounded.ts',
    'lib/lifecycle/guest-steps.ts',
    'lib/operations/failures.ts',
    'lib/operations/step-ids.ts',
    'lib/planning/evacuation-outcome.ts',
    'lib/pve/upid.ts',
  ];

  it.each(sources('workflows/'))('%s loads only workflows/ and small pure modules of lib/', (file) => {
    const valueImports = [...read(file).matchAll(/^import (?!type )([^;]*?) from '(\.\.?\/[^']+)\.js';/gm)]
      .filter(
        ([, what]) =>
          !what!.startsWith('{') ||
          what!
            .slice(1, -1)
            .split(',')
            .some((n) => n.trim() !== '' && !n.trim().startsWith('type ')),
      )
      .map(([, , path]) => posix.join(posix.dirname(file), `${path}.ts`))
      .filter((m) => !m.startsWith('workflows/'));
    expect(valueImports.filter((m) => !workflowModules.includes(m))).toEqual([]);
  });

  it('tests and benchmarks share testkit/, not each other', () => {
    expect(importing('test/', 'bench')).toEqual([]);
    expect(importing('bench/', 'test')).toEqual([]);
    expect([...importing('testkit/', 'test'), ...importing('testkit/', 'bench')]).toEqual([]);
  });
});
