/**
 * The production check (scripts/production-check.sh) and the compose file describe one
 * deployment: same Temporal and PostgreSQL versions, same schema script, same databases and
 * plugin, same Node image. The check itself runs the real parts; this keeps them in step.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { AppConfig } from '../../lib/config/schema.js';
import { temporalConnectOptions } from '../../lib/config/temporal.js';
import { composeVersions, serverConfig } from '../../scripts/production/temporal.js';
import type { Postgres } from '../../scripts/production/postgres.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');
const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, { image?: string; environment?: Record<string, string>; volumes?: string[] }>;
};

describe('the production check and docker-compose.yml', () => {
  it('run one Temporal version: the server, its schema tools and the one the check builds', () => {
    const { temporal } = composeVersions();
    expect(compose.services['temporal']!.image).toBe(`temporalio/server:${temporal}`);
    expect(compose.services['temporal-schema']!.image).toBe(`temporalio/admin-tools:${temporal}`);
  });

  it('name one PostgreSQL major version, the one docs/deploy.md names', () => {
    const major = composeVersions().postgres.split('.')[0];
    expect(read('docs/deploy.md')).toContain(`PostgreSQL ${major}`);
  });

  it('set up the schema with the same script, mounted in compose and run by the check', () => {
    const [mount] = compose.services['temporal-schema']!.volumes!;
    expect(mount!.split(':')[0]).toBe('./scripts/compose/temporal-schema.sh');
    expect(read('scripts/production/temporal.ts')).toContain("'scripts/compose/temporal-schema.sh'");
  });

  it('give the server the databases and plugin that script creates', async () => {
    const db = { host: '127.0.0.1', port: 5432, user: 'temporal', password: 'x', major: 15 } as Postgres;
    const config = await serverConfig(db, { frontend: 1, history: 2, matching: 3, worker: 4, http: 5 });
    const stores = Object.values(config.persistence.datastores).map((d) => d.sql);
    expect(stores.map((s) => s.databaseName).sort()).toEqual(['temporal', 'temporal_visibility']);
    for (const store of stores) expect(store.pluginName).toBe(compose.services['temporal']!.environment!['DB']);
    const script = read('scripts/compose/temporal-schema.sh');
    expect(script).toContain('for db in temporal temporal_visibility');
    expect(script).toContain('--plugin postgres12');
  });

  it('build the app image on the Node major version package.json requires', () => {
    const engine = /\d+/.exec((JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node)![0];
    for (const line of read('Dockerfile')
      .split('\n')
      .filter((l) => l.startsWith('FROM node:'))) {
      expect(line).toMatch(new RegExp(`^FROM node:${engine}\\.`));
    }
  });
});

describe('temporal connection options', () => {
  const base = {
    address: 'temporal:7233',
    namespace: 'default',
    task_queue: 'q',
    ui_url: 'http://x',
    max_concurrent_activities: 100,
  };

  it('connect in plain text when no tls is configured', () => {
    expect(temporalConnectOptions(base)).toEqual({ address: 'temporal:7233' });
  });

  it('read the CA and the client pair for mutual TLS', () => {
    const dir = mkdtempSync(join(tmpdir(), 'pm-tls-'));
    for (const name of ['ca.pem', 'crt.pem', 'key.pem']) writeFileSync(join(dir, name), name);
    const tls = {
      ca_file: join(dir, 'ca.pem'),
      cert_file: join(dir, 'crt.pem'),
      key_file: join(dir, 'key.pem'),
      server_name: 'temporal',
    };
    const options = temporalConnectOptions({ ...base, tls });
    expect(String(options.tls?.serverRootCACertificate)).toBe('ca.pem');
    expect(String(options.tls?.clientCertPair?.crt)).toBe('crt.pem');
    expect(String(options.tls?.clientCertPair?.key)).toBe('key.pem');
    expect(options.tls?.serverNameOverride).toBe('temporal');
  });

  it('refuse a client certificate without its key', () => {
    const parsed = AppConfig.safeParse({ temporal: { tls: { cert_file: '/etc/pm/worker.pem' } }, environments: {} });
    expect(parsed.success).toBe(false);
    expect(JSON.stringify(parsed.error?.issues)).toContain('cert_file and key_file go together');
  });
});
