/**
 * The Talos side of cluster-up, through the one talosctl adapter. Everything secret — machine
 * configs with the cluster's PKI and tokens, the talosconfig, the kubeconfig — stays in the
 * cluster's directory under `secrets_dir` (directory 0700, files 0600); activities return
 * paths and facts, never content, so nothing secret reaches workflow history.
 *
 * Each activity checks Talos's state before acting, so a repeated attempt (after a lost
 * answer or a worker restart) finds the work done instead of doing it twice: a node that
 * answers our talosconfig has its config, and etcd running on a control plane means the
 * cluster is bootstrapped.
 */
import { ApplicationFailure, Context } from '@temporalio/activity';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { clusterSecretsDir } from '../lib/clusters/identity.js';
import { defaultClustersDir, loadClusterProfile } from '../lib/clusters/profile.js';
import { configuredTalosctl, createTalosctl, TalosctlError, type TalosctlOptions } from '../lib/talos/talosctl.js';
import type { WorkerDeps } from '../worker/deps.js';
import { Failure } from '../lib/operations/failures.js';

export interface TalosActivityOptions {
  /** Where profiles live; `PM_CLUSTERS_DIR` or the repository's clusters/ when absent. */
  clustersDir?: string;
  talosctl?: TalosctlOptions;
}

export interface TalosNode {
  name: string;
  address: string;
  role: 'control-plane' | 'worker';
}

/** What the configs in a cluster's directory were made for (not secret): a re-run must not mix clusters. */
interface GeneratedFor {
  cluster: string;
  endpoint: string;
  profileSha256: string;
}

const MACHINE_CONFIGS = ['controlplane.yaml', 'worker.yaml', 'talosconfig'] as const;

/** talosctl's failures as Temporal sees them: an unreachable node is worth retrying, a refusal is not. */
async function talos<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof TalosctlError)) throw err;
    throw ApplicationFailure.create({
      type: Failure.TalosctlError,
      message: err.message,
      nonRetryable: err.kind !== 'unavailable',
    });
  }
}

const exists = (path: string) =>
  stat(path).then(
    () => true,
    () => false,
  );

export function createTalosActivities(deps: Pick<WorkerDeps, 'config'>, options: TalosActivityOptions = {}) {
  const talosctl = createTalosctl(options.talosctl ?? configuredTalosctl(deps.config));
  const dirOf = (environment: string, cluster: string) =>
    clusterSecretsDir(deps.config.secrets_dir, environment, cluster);
  const talosconfigOf = (environment: string, cluster: string) => join(dirOf(environment, cluster), 'talosconfig');
  const cancellation = () => ({ signal: Context.current().cancellationSignal });

  return {
    /**
     * Generates the cluster's machine configs (new PKI and tokens) with the profile's patches —
     * once: a re-run reuses them, provided they were made for the same endpoint.
     */
    async generateMachineConfigs(args: {
      environment: string;
      cluster: string;
      endpoint: string;
      profileSha256: string;
    }): Promise<{ dir: string; reused: boolean }> {
      const dir = dirOf(args.environment, args.cluster);
      const madeFor = join(dir, 'generated-for.json');
      if (await exists(madeFor)) {
        const earlier = JSON.parse(await readFile(madeFor, 'utf8')) as GeneratedFor;
        const complete = (await Promise.all(MACHINE_CONFIGS.map((f) => exists(join(dir, f))))).every(Boolean);
        if (complete && earlier.endpoint === args.endpoint) return { dir, reused: true };
        if (complete) {
          throw ApplicationFailure.create({
            type: Failure.MachineConfigsMismatch,
            message: `${dir} holds machine configs for endpoint ${earlier.endpoint}, not ${args.endpoint}: tear the cluster down (cluster-down) before building it anew`,
            nonRetryable: true,
          });
        }
      }

      const loaded = await loadClusterProfile(options.clustersDir ?? defaultClustersDir(), args.cluster);
      if (loaded.sha256 !== args.profileSha256) {
        throw ApplicationFailure.create({
          type: Failure.ProfileChanged,
          message: `${loaded.path} changed since the plan was approved: run cluster-up again to plan with it`,
          nonRetryable: true,
        });
      }
      await mkdir(dir, { recursive: true, mode: 0o700 });
      await chmod(dir, 0o700);
      // Made in a scratch directory and moved into place, so a failed run leaves no half set.
      const scratch = join(dir, `.gen-${randomBytes(4).toString('hex')}`);
      await mkdir(scratch, { mode: 0o700 });
      try {
        const { talos: spec } = loaded.profile;
        const writePatches = async (group: string, patches: Record<string, unknown>[]) =>
          Promise.all(
            patches.map(async (patch, i) => {
              const file = join(scratch, `patch-${group}-${i + 1}.yaml`);
              await writeFile(file, toYaml(patch), { mode: 0o600 });
              return file;
            }),
          );
        const patches = {
          all: await writePatches('all', spec.patches.all),
          controlPlane: await writePatches('control-plane', spec.patches.control_plane),
          worker: await writePatches('worker', spec.patches.worker),
        };
        await talos(() =>
          talosctl.genConfig(
            {
              clusterName: args.cluster,
              endpoint: `https://${args.endpoint}:6443`,
              outputDir: scratch,
              talosVersion: spec.version,
              ...(spec.kubernetes_version ? { kubernetesVersion: spec.kubernetes_version } : {}),
              ...(spec.install_image ? { installImage: spec.install_image } : {}),
              patches,
            },
            cancellation(),
          ),
        );
        for (const file of MACHINE_CONFIGS) {
          await chmod(join(scratch, file), 0o600);
          await rename(join(scratch, file), join(dir, file));
        }
        const facts: GeneratedFor = {
          cluster: args.cluster,
          endpoint: args.endpoint,
          profileSha256: args.profileSha256,
        };
        await writeFile(madeFor, `${JSON.stringify(facts, null, 2)}\n`, { mode: 0o600 });
        return { dir, reused: false };
      } finally {
        await rm(scratch, { recursive: true, force: true });
      }
    },

    /** Hands a node in maintenance mode its machine config, unless it already runs one of ours. */
    async applyMachineConfig(args: {
      environment: string;
      cluster: string;
      node: TalosNode;
    }): Promise<'applied' | 'already-configured'> {
      const dir = dirOf(args.environment, args.cluster);
      const { address, role } = args.node;
      return talos(async () => {
        if (await talosctl.answers(talosconfigOf(args.environment, args.cluster), address, cancellation()))
          return 'already-configured';
        await talosctl.applyConfigInsecure(
          address,
          join(dir, role === 'control-plane' ? 'controlplane.yaml' : 'worker.yaml'),
          cancellation(),
        );
        return 'applied';
      });
    },

    /**
     * Bootstraps etcd on `node` — once per cluster, ever. First every control plane is asked
     * whether etcd runs (then the cluster is bootstrapped already, by this run or an earlier
     * one); only when none does is `bootstrap` sent, and Talos's own refusal (AlreadyExists)
     * counts as done. A control plane that does not answer makes the decision wait: it may
     * be the one running etcd.
     */
    async bootstrapEtcd(args: {
      environment: string;
      cluster: string;
      node: TalosNode;
      controlPlanes: string[];
    }): Promise<'bootstrapped' | 'already-bootstrapped'> {
      const talosconfig = talosconfigOf(args.environment, args.cluster);
      return talos(async () => {
        for (const address of args.controlPlanes) {
          const state = await talosctl.etcdState(talosconfig, address, cancellation());
          if (state === 'Running') return 'already-bootstrapped';
        }
        return talosctl.bootstrap(talosconfig, args.node.address, cancellation());
      });
    },

    /** Waits until etcd, Kubernetes and every node report healthy (talosctl health). */
    async awaitClusterHealthy(args: {
      environment: string;
      cluster: string;
      controlPlanes: string[];
      workers: string[];
      waitTimeoutSeconds: number;
    }): Promise<void> {
      const ctx = Context.current();
      // talosctl may wait minutes on one check without a word: the activity still shows it is alive.
      let last = 'starting talosctl health';
      const beat = setInterval(() => ctx.heartbeat(last), 10_000);
      try {
        await talos(() =>
          talosctl.health(
            {
              talosconfig: talosconfigOf(args.environment, args.cluster),
              node: args.controlPlanes[0]!,
              controlPlanes: args.controlPlanes,
              workers: args.workers,
              waitTimeoutSeconds: args.waitTimeoutSeconds,
            },
            {
              signal: ctx.cancellationSignal,
              onLine: (line) => {
                last = line;
                ctx.heartbeat(line);
              },
            },
          ),
        );
      } finally {
        clearInterval(beat);
      }
    },

    /**
     * Writes the admin kubeconfig and points the talosconfig at the control planes. Only the
     * paths leave the worker.
     */
    async writeClusterAccess(args: {
      environment: string;
      cluster: string;
      controlPlanes: string[];
    }): Promise<{ kubeconfig: string; talosconfig: string }> {
      const talosconfig = talosconfigOf(args.environment, args.cluster);
      const kubeconfig = join(dirOf(args.environment, args.cluster), 'kubeconfig');
      await talos(async () => {
        await talosctl.setEndpoints(talosconfig, args.controlPlanes, cancellation());
        await talosctl.kubeconfig(talosconfig, args.controlPlanes[0]!, kubeconfig, cancellation());
      });
      await chmod(kubeconfig, 0o600);
      await chmod(talosconfig, 0o600);
      return { kubeconfig, talosconfig };
    },
  };
}

export type TalosActivities = ReturnType<typeof createTalosActivities>;
