/**
 * Reading a manifest folder: every `*.yaml` / `*.yml` file in it, each validated by the
 * manifest schema, then checked as a whole (names, VMIDs and services unique per environment,
 * `depends_on` naming guests that exist, no cycles). A folder with any problem is refused as a
 * whole, listing every problem as `file:path: reason (line n)`.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LineCounter, parseDocument, type Document } from 'yaml';
import { ManifestFile, type ManifestGuest } from './schema.js';

export interface ManifestProblem {
  file: string;
  /** `guests.3.memory`, or `(root)` / `(yaml)` / `(file)`. */
  path: string;
  message: string;
  line?: number;
}

export function formatProblem(p: ManifestProblem): string {
  return `${p.file}:${p.path}: ${p.message}${p.line ? ` (line ${p.line})` : ''}`;
}

export class ManifestError extends Error {
  constructor(readonly problems: ManifestProblem[]) {
    super(
      `the manifest is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${problems.map((p) => `  - ${formatProblem(p)}`).join('\n')}`,
    );
    this.name = 'ManifestError';
  }
}

export interface ManifestSource {
  /** File name within the folder. */
  name: string;
  text: string;
}

export interface VmidRange {
  min: number;
  max: number;
}

/** A manifest guest, with where it came from and the VMID range new guests of its file take. */
export interface FleetGuest extends ManifestGuest {
  file: string;
  /** The file's claimed VMID range: a new guest's VMID comes from it. */
  vmidRange?: VmidRange;
}

/** Everything the manifest says about one environment. */
export interface Fleet {
  environment: string;
  claims: { tags: string[]; vmids: VmidRange[] };
  guests: FleetGuest[];
  files: { name: string; sha256: string }[];
  /** SHA-256 over the environment's files: which manifest a plan was made from. */
  digest: string;
}

/** Aliases one file may expand: plenty for anchors reused across guests, far too few for an alias bomb. */
const MAX_ALIAS_COUNT = 100;

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Where a path points in a YAML document: the line of the deepest node that exists. */
function lineOf(doc: Document, lines: LineCounter, path: readonly PropertyKey[]): number | undefined {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth) as (string | number)[], true);
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    if (range) return lines.linePos(range[0]).line;
  }
  return undefined;
}

interface ParsedFile {
  name: string;
  text: string;
  doc: Document;
  lines: LineCounter;
}

/**
 * The fleets (one per environment) a set of manifest files describes; throws ManifestError
 * with every problem when any file or the set as a whole is invalid.
 */
export function parseManifests(sources: readonly ManifestSource[]): Map<string, Fleet> {
  const problems: ManifestProblem[] = [];
  const parsed: { file: ParsedFile; content: ReturnType<typeof ManifestFile.parse> }[] = [];

  for (const source of [...sources].sort((a, b) => a.name.localeCompare(b.name))) {
    const lines = new LineCounter();
    const doc = parseDocument(source.text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    if (doc.errors.length > 0) {
      for (const err of doc.errors) {
        problems.push({
          file: source.name,
          path: '(yaml)',
          message: err.message.split('\n')[0]!,
          line: lines.linePos(err.pos[0]).line,
        });
      }
      continue;
    }
    let raw: unknown;
    try {
      raw = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
    } catch (err) {
      // yaml refuses an alias expansion past the bound ("resource exhaustion"): a bad file, not a transient error.
      problems.push({ file: source.name, path: '(yaml)', message: (err as Error).message });
      continue;
    }
    if (raw === null || raw === undefined) {
      problems.push({
        file: source.name,
        path: '(root)',
        message: 'the file is empty; a manifest names its environment and guests',
      });
      continue;
    }
    const result = ManifestFile.safeParse(raw);
    const file = { name: source.name, text: source.text, doc, lines };
    if (!result.success) {
      for (const issue of result.error.issues) {
        const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k]) : [issue.path];
        for (const path of keys) {
          problems.push({
            file: source.name,
            path: path.map(String).join('.') || '(root)',
            message: issue.code === 'unrecognized_keys' ? 'unknown field' : issue.message,
            ...withLine(lineOf(doc, lines, path)),
          });
        }
      }
      continue;
    }
    parsed.push({ file, content: result.data });
  }

  const fleets = new Map<string, Fleet>();
  const texts = new Map<string, string[]>();
  for (const { file, content } of parsed) {
    const fleet = fleets.get(content.environment) ?? {
      environment: content.environment,
      claims: { tags: [], vmids: [] },
      guests: [],
      files: [],
      digest: '',
    };
    fleets.set(content.environment, fleet);
    for (const tag of content.claims.tags)
      if (!fleet.claims.tags.includes(tag.toLowerCase())) fleet.claims.tags.push(tag.toLowerCase());
    if (content.claims.vmids) fleet.claims.vmids.push(content.claims.vmids);
    fleet.guests.push(
      ...content.guests.map((g) => ({
        ...g,
        file: file.name,
        ...(content.claims.vmids ? { vmidRange: content.claims.vmids } : {}),
      })),
    );
    fleet.files.push({ name: file.name, sha256: sha256(file.text) });
    texts.set(content.environment, [...(texts.get(content.environment) ?? []), `${file.name}\0${file.text}`]);
  }
  const files = new Map(parsed.map((p) => [p.file.name, p.file]));
  const at = (g: FleetGuest, ...rest: (string | number)[]): Pick<ManifestProblem, 'file' | 'path' | 'line'> => {
    const path = ['guests', g.index, ...rest];
    const file = files.get(g.file)!;
    return { file: g.file, path: path.join('.'), ...withLine(lineOf(file.doc, file.lines, path)) };
  };
  for (const fleet of fleets.values()) {
    problems.push(...checkFleet(fleet, at));
    fleet.digest = sha256(texts.get(fleet.environment)!.join('\0'));
  }
  if (problems.length > 0) {
    // In reading order: by file, then line.
    const order = (p: ManifestProblem) => [p.file, p.line ?? Number.MAX_SAFE_INTEGER] as const;
    problems.sort((a, b) => order(a)[0].localeCompare(order(b)[0]) || order(a)[1] - order(b)[1]);
    throw new ManifestError(problems);
  }
  return fleets;
}

function withLine(line: number | undefined): { line?: number } {
  return line === undefined ? {} : { line };
}

/** The name (or service) a guest is known by in the manifest, for `depends_on` and messages. */
export function guestLabel(g: Pick<ManifestGuest, 'name' | 'service' | 'vmid'>): string {
  if (g.name !== undefined) return g.name;
  return g.vmid !== undefined ? `${g.service}#${g.vmid}` : g.service!;
}

/** The guest `depends_on` means by `label`: its name or `service#vmid`, else the first guest of that service. */
export function findGuest<G extends Pick<ManifestGuest, 'name' | 'service' | 'vmid'>>(
  guests: readonly G[],
  label: string,
): G | undefined {
  return guests.find((g) => guestLabel(g) === label) ?? guests.find((g) => g.service === label);
}

type Locate = (g: FleetGuest, ...rest: (string | number)[]) => Pick<ManifestProblem, 'file' | 'path' | 'line'>;

/** Problems only visible across an environment's files. */
function checkFleet(fleet: Fleet, at: Locate): ManifestProblem[] {
  const problems: ManifestProblem[] = [];
  const firstBy = (key: string, g: FleetGuest, field: string, what: string, seen: Map<string, FleetGuest>) => {
    const earlier = seen.get(key);
    if (earlier)
      problems.push({ ...at(g, field), message: `${what} is also used by ${earlier.file}:guests.${earlier.index}` });
    else seen.set(key, g);
  };
  const names = new Map<string, FleetGuest>();
  const vmids = new Map<string, FleetGuest>();
  const services = new Map<string, FleetGuest>();
  for (const g of fleet.guests) {
    if (g.name !== undefined) firstBy(g.name.toLowerCase(), g, 'name', `name '${g.name}'`, names);
    if (g.vmid !== undefined) firstBy(String(g.vmid), g, 'vmid', `vmid ${g.vmid}`, vmids);
    if (g.service !== undefined && g.vmid === undefined) {
      firstBy(
        g.service,
        g,
        'service',
        `service '${g.service}' without a vmid (give each a vmid to have several)`,
        services,
      );
    }
  }

  const edges = new Map<FleetGuest, FleetGuest[]>();
  for (const g of fleet.guests) {
    const deps: FleetGuest[] = [];
    g.depends_on.forEach((label, i) => {
      const target = findGuest(fleet.guests, label);
      if (!target)
        problems.push({ ...at(g, 'depends_on', i), message: `no guest '${label}' in this environment's manifest` });
      else if (target === g) problems.push({ ...at(g, 'depends_on', i), message: 'a guest cannot depend on itself' });
      else deps.push(target);
    });
    edges.set(g, deps);
  }
  const cycle = findCycle(fleet.guests, edges);
  if (cycle) {
    problems.push({
      ...at(cycle[0]!, 'depends_on'),
      message: `dependency cycle: ${[...cycle, cycle[0]!].map(guestLabel).join(' -> ')}`,
    });
  }
  return problems;
}

function findCycle<T>(nodes: readonly T[], edges: Map<T, T[]>): T[] | undefined {
  const state = new Map<T, 'visiting' | 'done'>();
  const stack: T[] = [];
  const visit = (n: T): T[] | undefined => {
    if (state.get(n) === 'done') return undefined;
    if (state.get(n) === 'visiting') return stack.slice(stack.indexOf(n));
    state.set(n, 'visiting');
    stack.push(n);
    for (const next of edges.get(n) ?? []) {
      const found = visit(next);
      if (found) return found;
    }
    stack.pop();
    state.set(n, 'done');
    return undefined;
  };
  for (const n of nodes) {
    const found = visit(n);
    if (found) return found;
  }
  return undefined;
}

/** The YAML files of a manifest folder, in name order. */
export async function readManifestFolder(folder: string): Promise<ManifestSource[]> {
  let names: string[];
  try {
    names = await readdir(folder);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ManifestError([
      {
        file: folder,
        path: '(folder)',
        message: code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? 'error'})`,
      },
    ]);
  }
  const yamlFiles = names.filter((n) => /\.ya?ml$/i.test(n) && !n.startsWith('.')).sort();
  return Promise.all(yamlFiles.map(async (name) => ({ name, text: await readFile(join(folder, name), 'utf8') })));
}

/** The environment's fleet from a manifest folder; an empty fleet when no file names the environment. */
export async function loadFleet(folder: string, environment: string): Promise<Fleet> {
  const fleets = parseManifests(await readManifestFolder(folder));
  return (
    fleets.get(environment) ?? {
      environment,
      claims: { tags: [], vmids: [] },
      guests: [],
      files: [],
      digest: sha256(''),
    }
  );
}
