/**
 * The drift reports, one JSON file per environment in the drift folder: written by the drift
 * workflow's activity, read by the API. Writes replace the file atomically, so a reader never
 * sees half a report.
 */
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { DriftReport } from './drift.js';

export interface DriftStore {
  read(environment: string): Promise<DriftReport | undefined>;
  write(report: DriftReport): Promise<void>;
  list(): Promise<DriftReport[]>;
}

const FILE = /^([a-z0-9][a-z0-9_-]*)\.json$/;

export function createDriftStore(dir: string): DriftStore {
  const path = (environment: string) => {
    if (!FILE.test(`${environment}.json`)) throw new Error(`'${environment}' is not an environment name`);
    return join(dir, `${environment}.json`);
  };
  const read = async (environment: string): Promise<DriftReport | undefined> => {
    try {
      return JSON.parse(await readFile(path(environment), 'utf8')) as DriftReport;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  };
  return {
    read,
    async write(report) {
      await mkdir(dir, { recursive: true });
      const target = path(report.environment);
      const temporary = `${target}.${process.pid}.tmp`;
      await writeFile(temporary, `${JSON.stringify(report, null, 2)}\n`, { mode: 0o640 });
      await rename(temporary, target);
    },
    async list() {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      }
      const reports = await Promise.all(names.flatMap((n) => (FILE.test(n) ? [read(FILE.exec(n)![1]!)] : [])));
      return reports
        .filter((r): r is DriftReport => r !== undefined)
        .sort((a, b) => a.environment.localeCompare(b.environment));
    },
  };
}
