/**
 * The deployment files, checked without a Docker engine: docker-compose.yml, the Dockerfile,
 * .dockerignore and the compose example config must agree with each other and with the code.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig } from '../../lib/config/load.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

interface Service {
  image?: string;
  build?: unknown;
  container_name?: string;
  command?: string[];
  entrypoint?: string | string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  secrets?: string[];
  healthcheck?: { test: string[] };
  depends_on?: Record<string, { condition: string }>;
  restart?: string;
  deploy?: { replicas?: number };
}
interface Compose {
  services: Record<string, Service>;
  secrets: Record<string, { file?: string; environment?: string }>;
  volumes: Record<string, unknown>;
}

// `merge: true` resolves the `<<: *app` keys as Compose does.
const compose = parse(read('docker-compose.yml'), { merge: true }) as Compose;
const services = compose.services;
const oneShot = (s: Service) => s.restart === undefined || s.restart === 'no' || s.restart.startsWith('on-failure');

describe('docker-compose.yml', () => {
  it('runs PostgreSQL, Temporal (schema, server, UI, registration), the worker and the API', () => {
    expect(Object.keys(services).sort()).toEqual(
      ['api', 'postgresql', 'temporal', 'temporal-register', 'temporal-schema', 'temporal-ui', 'worker'].sort(),
    );
    expect(services.temporal!.environment).toMatchObject({ DB: 'postgres12', POSTGRES_SEEDS: 'postgresql' });
  });

  it('pins every image to a version, never latest', () => {
    for (const [name, service] of Object.entries(services)) {
      expect(service.image, name).toMatch(/^[\w./-]+:(?!latest$)[\w.-]*\d[\w.-]*$/);
    }
  });

  it('builds the worker and API from this repository and runs each role by its entry point', () => {
    for (const [name, entry] of [
      ['worker', 'worker/main.ts'],
      ['api', 'api/main.ts'],
      ['temporal-register', 'scripts/temporal-register.ts'],
    ] as const) {
      expect(services[name]!.build, name).toBe('.');
      expect(services[name]!.command, name).toEqual(['node', '--import', 'tsx', entry]);
    }
    expect(existsSync(join(root, 'scripts/temporal-register.ts'))).toBe(true);
  });

  it('mounts the schema script the admin-tools container runs', () => {
    const [mount] = services['temporal-schema']!.volumes!;
    const [source, target] = mount!.split(':');
    expect(existsSync(join(root, source!))).toBe(true);
    expect(services['temporal-schema']!.entrypoint).toEqual(['/bin/sh', target]);
  });

  it('publishes ports on loopback only', () => {
    const published = Object.values(services).flatMap((s) => s.ports ?? []);
    expect(published.length).toBeGreaterThan(0);
    for (const port of published) expect(port).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
  });

  it('health-checks every service others wait on, and the API on /healthz', () => {
    for (const service of Object.values(services)) {
      for (const [dependency, { condition }] of Object.entries(service.depends_on ?? {})) {
        if (condition === 'service_healthy') expect(services[dependency]!.healthcheck, dependency).toBeDefined();
        if (condition === 'service_completed_successfully')
          expect(oneShot(services[dependency]!), dependency).toBe(true);
      }
    }
    expect(services.api!.healthcheck!.test.join(' ')).toContain('http://127.0.0.1:8080/healthz');
  });

  it('has a complete, acyclic start-up order with explicit conditions', () => {
    const conditions = new Set(['service_started', 'service_healthy', 'service_completed_successfully']);
    for (const [name, service] of Object.entries(services)) {
      for (const [dependency, spec] of Object.entries(service.depends_on ?? {})) {
        expect(Object.keys(services), `${name} depends on ${dependency}`).toContain(dependency);
        expect(conditions.has(spec.condition), `${name} -> ${dependency}: ${spec.condition}`).toBe(true);
      }
    }
    // Kahn's algorithm: every service gets an order only if there is no cycle.
    const remaining = new Map(Object.entries(services).map(([n, s]) => [n, new Set(Object.keys(s.depends_on ?? {}))]));
    const order: string[] = [];
    while (remaining.size > 0) {
      const ready = [...remaining].filter(([, deps]) => deps.size === 0).map(([n]) => n);
      expect(ready, `cycle among ${[...remaining.keys()].join(', ')}`).not.toHaveLength(0);
      for (const n of ready) {
        remaining.delete(n);
        order.push(n);
        for (const deps of remaining.values()) deps.delete(n);
      }
    }
    expect(order.indexOf('postgresql')).toBeLessThan(order.indexOf('temporal'));
    expect(order.indexOf('temporal-register')).toBeLessThan(order.indexOf('worker'));
    expect(order.indexOf('temporal-register')).toBeLessThan(order.indexOf('api'));
  });

  it('lets the worker scale: no fixed name, no host port, more than one replica', () => {
    const worker = services.worker!;
    expect(worker.container_name).toBeUndefined();
    expect(worker.ports).toBeUndefined();
    expect(worker.deploy?.replicas).toBeGreaterThanOrEqual(2);
    for (const service of Object.values(services)) expect(service.container_name).toBeUndefined();
  });

  it('mounts the configuration read-only where PM_CONFIG points', () => {
    for (const name of ['worker', 'api', 'temporal-register']) {
      const service = services[name]!;
      const target = service.environment!.PM_CONFIG!;
      expect(service.volumes, name).toContain(`./config/proxmox-manager.yaml:${target}:ro`);
    }
  });

  it('writes no secret inline: credentials come from files under ./secrets/', () => {
    const secretish = /pass|pwd|secret|token|key/i;
    for (const [name, service] of Object.entries(services)) {
      for (const [variable, value] of Object.entries(service.environment ?? {})) {
        if (!secretish.test(variable)) continue;
        expect(`${name}.${variable}=${value}`).toMatch(/_FILE=\/run\/secrets\/\w+$/);
      }
      for (const secret of service.secrets ?? []) expect(Object.keys(compose.secrets), name).toContain(secret);
    }
    for (const [name, secret] of Object.entries(compose.secrets)) {
      expect(secret, name).toEqual({ file: `./secrets/${name}` });
    }
    expect(read('.dockerignore').split('\n')).toContain('secrets');
  });

  it('gives the PVE token to the worker and the API (read-only inventory), the SSH key to the worker only', () => {
    const expected: Record<string, string[]> = { worker: ['pve_api_token', 'pve_ssh_key'], api: ['pve_api_token'] };
    for (const [name, service] of Object.entries(services)) {
      const pve = (service.secrets ?? []).filter((s) => s.startsWith('pve_'));
      expect(pve, name).toEqual(expected[name] ?? []);
    }
  });
});

describe('config/docker-compose.example.yaml', () => {
  const config = loadConfig(join(root, 'config/docker-compose.example.yaml'));

  it('reaches Temporal as the compose service and listens where the API port and healthcheck expect', () => {
    expect(config.temporal.address).toBe('temporal:7233');
    expect(config.api.host).toBe('0.0.0.0');
    expect(services.api!.ports).toContain(`127.0.0.1:${config.api.port}:${config.api.port}`);
  });

  it('keeps state in the pm-data volume', () => {
    expect(services.worker!.volumes).toContain('pm-data:/var/lib/proxmox-manager');
    expect(config.audit.path.startsWith('/var/lib/proxmox-manager/')).toBe(true);
    expect(config.secrets_dir.startsWith('/var/lib/proxmox-manager/')).toBe(true);
  });

  it('reads credentials from docker secrets mounted where they are used', () => {
    const secretName = (ref: unknown) => {
      expect(ref).toEqual({ file: expect.stringMatching(/^\/run\/secrets\//) });
      return (ref as { file: string }).file.replace('/run/secrets/', '');
    };
    for (const env of Object.values(config.environments)) {
      const token = secretName(env.credentials.token);
      expect(services.worker!.secrets).toContain(token);
      expect(services.api!.secrets).toContain(token);
      expect(services.worker!.secrets).toContain(secretName(env.credentials.ssh_key));
    }
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');
  const stages = dockerfile.split(/^FROM /m).slice(1);
  const finalStage = stages.at(-1)!;

  it('builds from a pinned node:20 image', () => {
    for (const stage of stages) expect(stage).toMatch(/^node:20\.\d+\.\d+-[\w-]+/);
  });

  it('installs exactly the locked dependencies, running no install scripts', () => {
    expect(dockerfile).toMatch(/npm ci --ignore-scripts/);
  });

  it('runs as a non-root user', () => {
    const user = /^USER (\S+)/m.exec(finalStage)?.[1];
    expect(user).toBeDefined();
    expect(['root', '0']).not.toContain(user);
    expect(finalStage.indexOf('USER')).toBeLessThan(finalStage.indexOf('CMD'));
  });
});

describe('.dockerignore', () => {
  const ignored = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#') && !l.startsWith('!') && !l.includes('*'));

  it('leaves out nothing the image runs: the entry points import no ignored file', () => {
    // The worker bundles workflows/index.ts at start-up, so it is an entry point too.
    const entryPoints = ['worker/main.ts', 'api/main.ts', 'workflows/index.ts', 'scripts/temporal-register.ts'].filter(
      (f) => existsSync(join(root, f)),
    );
    const seen = new Set<string>();
    const offenders: string[] = [];
    const visit = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      if (ignored.includes(file.split('/')[0]!)) offenders.push(file);
      if (!existsSync(join(root, file))) return;
      // Runtime imports only: `import type` is erased and never loaded.
      for (const match of read(file).matchAll(/^(?:import|export) (?!type )[^;]*?from '(\.[^']+)'/gms)) {
        visit(join(dirname(file), match[1]!).replace(/\.js$/, '.ts'));
      }
    };
    entryPoints.forEach(visit);
    expect(seen.size).toBeGreaterThan(entryPoints.length);
    expect(offenders).toEqual([]);
  });
});
