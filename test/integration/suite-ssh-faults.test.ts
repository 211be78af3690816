/**
 * SSH to the nodes, through the worker's real activities and configuration, against the
 * simulator's SSH servers: commands that exit non-zero, a node that refuses the connection,
 * and host keys that are unknown or changed — which must be refused before our key is offered,
 * and never retried. (test/unit/ssh-client.test.ts covers the client alone.)
 */
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createEvacuationActivities } from '../../activities/evacuation.js';
import { createRunbookActivities, type RunStepRequest } from '../../activities/runbook.js';
import type { AppConfig } from '../../lib/config/schema.js';
import { freePort } from '../../scripts/temporal-server.js';
import { buildWorkerDeps } from '../../worker/deps.js';
import { startSuiteCluster, type SuiteCluster } from '../../testkit/stack/cluster.js';
import { record } from '../support/suite/report.js';
import { combine, scanFiles, scanTexts, shareDone, shareSecrets } from '../../testkit/stack/secrets.js';
import { activityEnvironment } from '../support/suite/worker.js';

let cluster: SuiteCluster;
const messages: Record<string, string> = {};

beforeAll(async () => {
  cluster = await startSuiteCluster({
    speed: 100,
    temporal: { address: inject('temporalAddress'), namespace: inject('temporalNamespace'), taskQueue: 'unused' },
  });
  shareSecrets(inject('temporalAddress'), 'ssh-faults', cluster.secrets);
});
afterAll(async () => {
  shareDone(inject('temporalAddress'), 'ssh-faults');
  if (cluster) {
    const scan = combine(scanTexts(messages, cluster.secrets), await scanFiles(cluster.logFiles, cluster.secrets));
    record({
      section: 'secrets',
      name: 'SSH failure messages',
      value: scan.leaks.length,
      unit: 'hits',
      note: `${scan.texts} messages, ${scan.files} files`,
    });
    expect(scan.leaks).toEqual([]);
  }
  await cluster?.stop();
});

/** The cluster's configuration with pve01's SSH settings changed. */
function withNode(change: (node: AppConfig['environments'][string]['cluster']['nodes'][number]) => void): AppConfig {
  const config = structuredClone(cluster.config);
  change(config.environments[cluster.environment]!.cluster.nodes.find((n) => n.name === 'pve01')!);
  return config;
}

function sshStep(command: string): RunStepRequest {
  return {
    environment: cluster.environment,
    vars: {},
    step: {
      kind: 'ssh',
      id: 'probe',
      description: 'probe',
      pending: [],
      captures: [],
      timeoutMs: 10_000,
      node: 'pve01',
      command,
      expectExit: 0,
    },
  };
}

interface Refusal {
  type: string;
  message: string;
  nonRetryable: boolean;
}

/** Runs a runbook's SSH step on pve01 with this configuration; the failure as Temporal will see it. */
async function runStep(config: AppConfig, command: string): Promise<Refusal | 'done'> {
  const activities = createRunbookActivities(buildWorkerDeps(config));
  try {
    await activityEnvironment().run(activities.runRunbookStep, sshStep(command));
    return 'done';
  } catch (err) {
    if (!(err instanceof ApplicationFailure)) throw err;
    messages[`${command}: ${err.message}`] = err.message;
    return { type: err.type ?? 'Error', message: err.message, nonRetryable: err.nonRetryable ?? false };
  }
}

const sshCommands = () => cluster.sim.counters.sshCommands('pve01');
const pve01 = () => cluster.sim.nodes.find((n) => n.name === 'pve01')!;
const pve02 = () => cluster.sim.nodes.find((n) => n.name === 'pve02')!;

describe('commands that fail', () => {
  it('runs on a pinned node, and reports a non-zero exit with its stderr, without retrying', async () => {
    expect(await runStep(cluster.config, 'pveversion')).toBe('done');
    expect(await runStep(cluster.config, 'false')).toEqual({
      type: 'StepExpectationFailed',
      message: 'step probe: exited 1 (expected 0)',
      nonRetryable: true,
    });
    expect(await runStep(cluster.config, 'no-such-tool --now')).toMatchObject({
      type: 'StepExpectationFailed',
      message: expect.stringMatching(/^step probe: exited 127 \(expected 0\): .*no-such-tool: command not found/),
      nonRetryable: true,
    });
    record({
      section: 'faults',
      name: 'SSH command exits 1 / 127',
      value: 'failed, not retried',
      note: 'runbook step over SSH: "exited 127 (expected 0): ... command not found"',
    });
  });
});

describe('a node that refuses the connection', () => {
  it('is a connection error the activity may retry: nothing ran', async () => {
    const closed = await freePort();
    const refusal = await runStep(
      withNode((n) => (n.ssh_port = closed)),
      'pveversion',
    );
    expect(refusal).toMatchObject({
      type: 'SshConnectError',
      message: expect.stringMatching(new RegExp(`^step probe: SSH to 127\\.0\\.0\\.1:${closed} failed: ECONNREFUSED`)),
      nonRetryable: false,
    });
    record({
      section: 'faults',
      name: 'SSH connection refused',
      value: 'retryable SshConnectError',
      note: 'nothing ran, so a retry is safe',
    });
  });
});

describe('host keys', () => {
  it('refuses a node whose key changed, naming both fingerprints, before authenticating — and never retries', async () => {
    const before = sshCommands();
    const refusal = await runStep(
      withNode((n) => (n.ssh_host_key = pve02().sshHostKey)),
      'pveversion',
    );
    expect(refusal).toEqual({
      type: 'SshHostKeyError',
      message:
        `step probe: refusing SSH to 127.0.0.1:${pve01().sshPort}: host key ${pve01().sshHostKey} does not match the pinned ` +
        `${pve02().sshHostKey}. If the node was reinstalled, verify its key out of band and update ssh_host_key.`,
      nonRetryable: true,
    });
    expect(sshCommands()).toBe(before);

    // The evacuation's HA-maintenance step refuses the same way.
    const migration = createEvacuationActivities(
      buildWorkerDeps(withNode((n) => (n.ssh_host_key = pve02().sshHostKey))),
    );
    const ha = await migration
      .enableHaMaintenance({ environment: cluster.environment, node: 'pve01' })
      .catch((e: ApplicationFailure) => e);
    expect(ha).toMatchObject({
      type: 'SshHostKeyError',
      nonRetryable: true,
      message: expect.stringContaining('does not match the pinned'),
    });
    expect(sshCommands()).toBe(before);
    record({
      section: 'security',
      name: 'SSH changed host key',
      value: 'refused before auth, not retried',
      note: 'runbook step and evacuation HA-maintenance step; 0 commands reached the node',
    });
  });

  it('refuses a node without a pinned key, saying how to pin it', async () => {
    const refusal = await runStep(
      withNode((n) => delete n.ssh_host_key),
      'pveversion',
    );
    expect(refusal).toMatchObject({
      type: 'SshNotConfigured',
      message: expect.stringMatching(
        /^step probe: node 'pve01' has no ssh_host_key: pin it \(ssh-keyscan 127\.0\.0\.1 \| ssh-keygen -lf -\)$/,
      ),
      nonRetryable: true,
    });
    record({
      section: 'security',
      name: 'SSH unknown host key',
      value: 'refused, not retried',
      note: 'no ssh_host_key pinned: SSH is not attempted',
    });
  });
});
