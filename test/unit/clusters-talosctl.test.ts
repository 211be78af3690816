/**
 * The talosctl adapter against the stand-in (sim/bin/talosctl), which answers as talosctl does:
 * the arguments the adapter builds are the ones the stand-in (and real talosctl) accept. The
 * adapter calls the stand-in bundled once for the run (test/talosctl-setup.ts); the binary itself
 * answers the version test.
 */
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { createTalosctl, TalosctlError, type Talosctl } from '../../lib/talos/talosctl.js';

const binary = fileURLToPath(new URL('../../sim/bin/talosctl', import.meta.url));

let dir: string;
let talosctl: Talosctl;
let configs: string;
const talosconfig = () => join(configs, 'talosconfig');

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pm-talosctl-'));
  configs = join(dir, 'configs');
  talosctl = createTalosctl({ binary: inject('talosctlStandin'), env: { TALOSCTL_STANDIN_STATE: join(dir, 'state') } });
  const patch = join(dir, 'patch.yaml');
  await writeFile(patch, 'cluster:\n  allowSchedulingOnControlPlanes: true\n');
  await talosctl.genConfig({
    clusterName: 'lab',
    endpoint: 'https://10.9.0.1:6443',
    outputDir: configs,
    talosVersion: 'v1.11.3',
    patches: { all: [], controlPlane: [patch], worker: [] },
  });
}, 30_000);
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('generating machine configs', () => {
  it('writes controlplane.yaml, worker.yaml and talosconfig readable by the owner only, with the patches applied', async () => {
    for (const file of ['controlplane.yaml', 'worker.yaml', 'talosconfig']) {
      expect((await stat(join(configs, file))).mode & 0o777).toBe(0o600);
    }
    const cp = parse(await readFile(join(configs, 'controlplane.yaml'), 'utf8'));
    const worker = parse(await readFile(join(configs, 'worker.yaml'), 'utf8'));
    expect(cp.machine.type).toBe('controlplane');
    expect(cp.cluster.allowSchedulingOnControlPlanes).toBe(true);
    expect(worker.cluster.allowSchedulingOnControlPlanes).toBeUndefined();
    expect(cp.cluster.controlPlane.endpoint).toBe('https://10.9.0.1:6443');
  });

  it('fails on a patch that is not a machine config, naming the problem', async () => {
    const bad = join(dir, 'bad.yaml');
    await writeFile(bad, 'machin:\n  typo: true\n');
    const err = await talosctl
      .genConfig({
        clusterName: 'x',
        endpoint: 'https://10.9.0.1:6443',
        outputDir: join(dir, 'x'),
        talosVersion: 'v1.11.3',
        patches: { all: [bad], controlPlane: [], worker: [] },
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TalosctlError);
    expect(err).toMatchObject({ kind: 'failed' });
    expect((err as Error).message).toMatch(/unknown keys found during decoding:\nmachin/);
  });
});

describe('a node, from maintenance mode to a bootstrapped cluster', () => {
  const cp = '10.9.0.11';
  const worker = '10.9.0.21';

  it('answers our talosconfig only once it has its config, and takes an insecure config only once', async () => {
    expect(await talosctl.answers(talosconfig(), cp)).toBe(false);
    await talosctl.applyConfigInsecure(cp, join(configs, 'controlplane.yaml'));
    await talosctl.applyConfigInsecure(worker, join(configs, 'worker.yaml'));
    expect(await talosctl.answers(talosconfig(), cp)).toBe(true);
    const again = await talosctl.applyConfigInsecure(cp, join(configs, 'controlplane.yaml')).catch((e: unknown) => e);
    expect(again).toMatchObject({ kind: 'unavailable' });
    expect((again as Error).message).toMatch(/tls: certificate required/);
  });

  it('is not healthy, and serves no kubeconfig, before etcd is bootstrapped', async () => {
    expect(await talosctl.etcdState(talosconfig(), cp)).toBe('Preparing');
    const health = talosctl.health({
      talosconfig: talosconfig(),
      node: cp,
      controlPlanes: [cp],
      workers: [worker],
      waitTimeoutSeconds: 5,
    });
    await expect(health).rejects.toThrow(/waiting for etcd to be healthy/);
    await expect(talosctl.kubeconfig(talosconfig(), cp, join(dir, 'early-kubeconfig'))).rejects.toThrow(
      /etcd is not bootstrapped/,
    );
  });

  it('bootstraps etcd once; a second bootstrap is refused by Talos (AlreadyExists) and reported as done', async () => {
    expect(await talosctl.bootstrap(talosconfig(), cp)).toBe('bootstrapped');
    expect(await talosctl.etcdState(talosconfig(), cp)).toBe('Running');
    expect(await talosctl.bootstrap(talosconfig(), cp)).toBe('already-bootstrapped');
    const log = (await readFile(join(dir, 'state', 'log.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const bootstraps = log.filter((e) => e.argv.includes('bootstrap'));
    expect(bootstraps.map((e) => e.outcome)).toEqual([
      'ok',
      expect.stringMatching(/code = AlreadyExists desc = etcd data directory is not empty/),
    ]);
  });

  it('reports health, streaming its progress, and writes a kubeconfig where it is asked to', async () => {
    const lines: string[] = [];
    await talosctl.health(
      { talosconfig: talosconfig(), node: cp, controlPlanes: [cp], workers: [worker], waitTimeoutSeconds: 5 },
      { onLine: (l) => lines.push(l) },
    );
    expect(lines).toContain('waiting for all k8s nodes to report ready: OK');
    const kubeconfig = join(dir, 'kubeconfig');
    await talosctl.kubeconfig(talosconfig(), cp, kubeconfig);
    expect(parse(await readFile(kubeconfig, 'utf8'))).toMatchObject({
      kind: 'Config',
      clusters: [{ name: 'lab', cluster: { server: `https://${cp}:6443` } }],
    });
    await talosctl.setEndpoints(talosconfig(), [cp]);
    expect(parse(await readFile(talosconfig(), 'utf8')).contexts.lab).toMatchObject({ endpoints: [cp], nodes: [cp] });
  });
});

describe('the binary', () => {
  it('reports its version', async () => {
    const real = createTalosctl({ binary, env: { TALOSCTL_STANDIN_STATE: join(dir, 'state') } });
    expect(await real.clientVersion()).toBe('v1.11.3');
  });

  it('says so when it is missing', async () => {
    const missing = createTalosctl({ binary: join(dir, 'no-such-talosctl') });
    await expect(missing.clientVersion()).rejects.toMatchObject({ kind: 'not-found' });
  });

  it('runs without the worker’s environment, which may hold credentials', async () => {
    process.env.PM_TEST_SECRET = 'do-not-pass-me-on';
    try {
      const env = createTalosctl({ binary: '/usr/bin/env', env: { ONLY_THIS: '1' } });
      const out = await env.run([]);
      expect(out).toContain('ONLY_THIS=1');
      expect(out).not.toContain('do-not-pass-me-on');
    } finally {
      delete process.env.PM_TEST_SECRET;
    }
  });
});
