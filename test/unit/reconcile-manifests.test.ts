/**
 * What a reconcile request may make the worker read: only folders inside the configured
 * manifests root, and YAML that cannot blow up — a refused manifest is a final answer, never
 * parsed again by a retry.
 */
import { mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { beforeAll, describe, expect, it } from 'vitest';
import { createReconcileActivities } from '../../activities/reconcile.js';
import type { WorkerDeps } from '../../worker/deps.js';
import { testConfig } from './api-fakes.js';

let root: string;
let outside: string;
let plan: ReturnType<typeof createReconcileActivities>['planReconcile'];

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'pm-manifests-'));
  root = join(dir, 'manifests');
  outside = join(dir, 'elsewhere');
  await mkdir(join(root, 'lab'), { recursive: true });
  await mkdir(outside);
  await symlink(outside, join(root, 'escape'));
  const deps = {
    config: testConfig(),
    pve: () => Promise.reject(new Error('the cluster is not read when the manifest is refused')),
  } as unknown as Pick<WorkerDeps, 'pve' | 'config'>;
  plan = createReconcileActivities(deps, { path: root, driftDir: join(dir, 'drift') }).planReconcile;
});

async function refusal(manifests: string): Promise<ApplicationFailure> {
  const error = await plan({ environment: 'home', manifests, maxParallel: 4 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApplicationFailure);
  return error as ApplicationFailure;
}

describe('the manifests folder of a reconcile request', () => {
  it.each([
    ['a sibling of the root', () => outside],
    ['a way out with ..', () => join(root, '..', 'elsewhere')],
    ['a symlink inside the root pointing out of it', () => join(root, 'escape')],
    ['the worker’s own folder', () => '.'],
  ])('is refused when it is %s, naming the field, not retried', async (_, folder) => {
    const failure = await refusal(folder());
    expect(failure).toMatchObject({ type: 'PlanRefused', nonRetryable: true });
    expect(failure.message).toMatch(/^manifests: .* is outside the manifests root/);
  });

  it('may be a folder inside the root (the cluster is read next)', async () => {
    await expect(plan({ environment: 'home', manifests: join(root, 'lab'), maxParallel: 4 })).rejects.toThrow(
      'the cluster is not read',
    );
  });
});

describe('a manifest that is not YAML a person wrote', () => {
  it('an alias bomb is refused as an invalid manifest, not retried', async () => {
    const bomb = join(root, 'bomb');
    await mkdir(bomb);
    const levels = ['a: &a ["x","x","x","x","x","x","x","x","x","x"]'];
    for (let i = 1; i < 9; i++)
      levels.push(
        `${'abcdefghi'[i]}: &${'abcdefghi'[i]} [${Array(10)
          .fill(`*${'abcdefghi'[i - 1]}`)
          .join(',')}]`,
      );
    await writeFile(join(bomb, 'fleet.yaml'), `${levels.join('\n')}\nenvironment: home\nguests: []\n`);
    const failure = await refusal(bomb);
    expect(failure).toMatchObject({ type: 'ManifestInvalid', nonRetryable: true });
    expect(failure.message).toMatch(/fleet\.yaml:\(yaml\): .*alias/i);
  });
});
