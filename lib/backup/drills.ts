/**
 * The restore-drill history: each drill operation records its guests' results (one JSON file
 * per operation, written by the drill's activity and read by the API), and the history folds
 * them into what an operator asks — when was each guest's backup last proven restorable, and
 * which drills failed and have not been made good since (findings). A finding stays open until
 * a later drill of the same guest proves a backup of it.
 *
 * One file per operation keeps writers apart (a scheduled drill and one asked for by hand may
 * end together) and makes a repeated write — a retried activity — the same write.
 */
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One guest's drill, as the drill operation reports it. */
export interface DrillResult {
  /** The guest whose backup was drilled. */
  vmid: number;
  name: string;
  type: 'qemu' | 'lxc';
  volid: string;
  /** When the backup was taken (epoch seconds). */
  backupCtime: number;
  outcome: 'proven' | 'failed';
  /** From the restore request to the check passing (or the failure), workflow time. */
  seconds: number;
  error?: string;
}

/** What one drill operation recorded. */
export interface DrillRecord {
  environment: string;
  operationId: string;
  /** When the drill ended (ISO 8601). */
  at: string;
  results: DrillResult[];
}

export interface ProvenGuest {
  vmid: number;
  name: string;
  type: 'qemu' | 'lxc';
  /** The newest drill that proved a backup of the guest restorable; absent when none ever did. */
  lastProven?: { at: string; volid: string; backupCtime: number; seconds: number; operationId: string };
  lastDrill: { at: string; outcome: 'proven' | 'failed'; volid: string; operationId: string };
}

export interface DrillFinding {
  /** `<operation that first failed>#<vmid>`. */
  id: string;
  vmid: number;
  name: string;
  /** The backup the latest failed drill tried. */
  volid: string;
  reason: string;
  /** The first failed drill since the guest was last proven, and the latest. */
  since: string;
  lastFailedAt: string;
  failures: number;
  operationId: string;
  state: 'open' | 'resolved';
  /** The drill that proved the guest restorable again. */
  resolvedAt?: string;
  resolvedBy?: string;
}

export interface DrillHistory {
  guests: ProvenGuest[];
  findings: DrillFinding[];
}

/** Folds drill records, oldest first, into each guest's last proof and the findings. */
export function drillHistory(records: readonly DrillRecord[]): DrillHistory {
  const guests = new Map<number, ProvenGuest>();
  const findings: DrillFinding[] = [];
  // One record per operation: the same drill read twice counts once.
  const ordered = [...new Map(records.map((r) => [r.operationId, r])).values()].sort(
    (a, b) => a.at.localeCompare(b.at) || a.operationId.localeCompare(b.operationId),
  );
  for (const { at, operationId, results } of ordered) {
    for (const r of results) {
      const previous = guests.get(r.vmid);
      const lastDrill = { at, outcome: r.outcome, volid: r.volid, operationId };
      const open = findings.find((f) => f.vmid === r.vmid && f.state === 'open');
      if (r.outcome === 'proven') {
        guests.set(r.vmid, {
          vmid: r.vmid,
          name: r.name,
          type: r.type,
          lastDrill,
          lastProven: { at, volid: r.volid, backupCtime: r.backupCtime, seconds: r.seconds, operationId },
        });
        if (open) Object.assign(open, { state: 'resolved', resolvedAt: at, resolvedBy: operationId });
        continue;
      }
      guests.set(r.vmid, { ...previous, vmid: r.vmid, name: r.name, type: r.type, lastDrill });
      const reason = r.error ?? 'failed';
      if (open)
        Object.assign(open, { volid: r.volid, reason, lastFailedAt: at, failures: open.failures + 1, operationId });
      else
        findings.push({
          id: `${operationId}#${r.vmid}`,
          vmid: r.vmid,
          name: r.name,
          volid: r.volid,
          reason,
          since: at,
          lastFailedAt: at,
          failures: 1,
          operationId,
          state: 'open',
        });
    }
  }
  return {
    guests: [...guests.values()].sort((a, b) => a.vmid - b.vmid),
    findings: findings.sort((a, b) => b.lastFailedAt.localeCompare(a.lastFailedAt)),
  };
}

export interface DrillStore {
  write(record: DrillRecord): Promise<void>;
  /** Every record of the environment, in no particular order. */
  list(environment: string): Promise<DrillRecord[]>;
}

const ENVIRONMENT = /^[a-z0-9][a-z0-9_-]*$/;

/** Records under `<dir>/<environment>/<operation id, URI-encoded>.json`, each replaced atomically. */
export function createDrillStore(dir: string): DrillStore {
  const folder = (environment: string) => {
    if (!ENVIRONMENT.test(environment)) throw new Error(`'${environment}' is not an environment name`);
    return join(dir, environment);
  };
  return {
    async write(record) {
      await mkdir(folder(record.environment), { recursive: true });
      const target = join(folder(record.environment), `${encodeURIComponent(record.operationId)}.json`);
      const temporary = `${target}.${process.pid}.tmp`;
      await writeFile(temporary, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o640 });
      await rename(temporary, target);
    },
    async list(environment) {
      let names: string[];
      try {
        names = await readdir(folder(environment));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      }
      const files = names.filter((n) => n.endsWith('.json'));
      return Promise.all(
        files.map(async (n) => JSON.parse(await readFile(join(folder(environment), n), 'utf8')) as DrillRecord),
      );
    },
  };
}
