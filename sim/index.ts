/**
 * The simulated PVE cluster, in process: `startSimulator()` opens one HTTPS API listener and
 * one SSH endpoint per node on loopback and returns everything a client needs to connect
 * (ports, per-node TLS fingerprints and the cluster CA, SSH host keys, tokens) plus the model for assertions.
 */
import { randomBytes } from 'node:crypto';
import type { AclEntry } from './access.js';
import { ApiServer } from './api/server.js';
import { SimClock } from './clock.js';
import { Cluster } from './cluster.js';
import type { Counters } from './counters.js';
import type { Faults } from './faults.js';
import { resolveScenario, type ResolvedScenario, type Scenario } from './scenario.js';
import { loadScenarioSource } from './scenario-import.js';
import { generateSshKeyPair, SshServer, type SshKeyPair } from './ssh/server.js';
import type { ClusterState } from './state.js';
import { generateClusterCertificates } from './tls.js';

export interface StartSimulatorOptions {
  /** A scenario object, or the path of a scenario YAML file or of a cluster inventory to import (sim/scenario-import.ts). */
  scenario: Scenario | ResolvedScenario | string;
  /** Simulated seconds per wall second (default 1). */
  speed?: number;
  /** Freeze time; tests move it with `clock.advance()`. */
  manualClock?: boolean;
  /** Loopback address to bind (default 127.0.0.1). */
  host?: string;
  /** Wall milliseconds before answering a bad token (PVE: about 3000, the default). */
  authFailureDelayMs?: number;
  /** Secret for the /_sim admin endpoints (random by default). */
  adminSecret?: string;
  /** Extra OpenSSH public keys allowed to log in as root (besides the scenario's and the generated client key). */
  sshAuthorizedKeys?: readonly string[];
  /** Seed for random faults. */
  seed?: number;
  /** Node clocks off from true time, seconds by node name (+ ahead); overrides the scenario's `clock_skew_seconds`. */
  clockSkewSeconds?: Readonly<Record<string, number>>;
}

export interface SimulatedNode {
  name: string;
  host: string;
  /** HTTPS API port. */
  port: number;
  sshPort: number;
  /** `SHA256:...` fingerprint of the node's SSH host key. */
  sshHostKey: string;
  /** The host key itself (`ssh-ed25519 AAAA...`), for clients that pin by known_hosts (OpenSSH, Ansible). */
  sshHostPublicKey: string;
  /** SHA-256 fingerprint of the node's own API certificate, as PVE shows it (`AA:BB:...`). */
  tlsFingerprint: string;
}

export interface SimulatedToken {
  /** `user@realm!name` */
  tokenId: string;
  secret: string;
  acl: readonly AclEntry[];
}

export interface SimulatedCluster {
  nodes: SimulatedNode[];
  /** The cluster CA that signed every node's certificate (PEM). */
  caPem: string;
  tokens: SimulatedToken[];
  /** A key pair authorised for root on every node. */
  sshClientKey: SshKeyPair;
  /** Bearer secret for /_sim/* on any listener. */
  adminSecret: string;
  state: ClusterState;
  counters: Counters;
  faults: Faults;
  clock: SimClock;
  /** The whole model, for operations beyond the API (e.g. `cluster.tasks`). */
  cluster: Cluster;
  /** Base URL of a node's API, e.g. https://127.0.0.1:40123/api2/json */
  apiUrl(node?: string): string;
  stop(): Promise<void>;
}

export async function startSimulator(options: StartSimulatorOptions): Promise<SimulatedCluster> {
  const scenario =
    typeof options.scenario === 'string'
      ? (await loadScenarioSource(options.scenario)).scenario
      : await resolveScenario(options.scenario);
  const host = options.host ?? '127.0.0.1';
  const clock = new SimClock({ speed: options.speed ?? 1, manual: options.manualClock ?? false });
  const cluster = new Cluster(scenario, clock, options.seed);
  for (const [node, seconds] of Object.entries(options.clockSkewSeconds ?? {})) {
    if (!cluster.state.nodes.has(node)) throw new Error(`clock skew for unknown node '${node}'`);
    cluster.state.node(node).clockSkewMs = seconds * 1000;
  }
  const certificates = await generateClusterCertificates(
    scenario.cluster_name,
    host,
    scenario.nodes.map((n) => n.name),
  );
  const adminSecret = options.adminSecret ?? randomBytes(24).toString('base64url');
  const sshClientKey = generateSshKeyPair('proxmox-manager@simulator');

  const api = new ApiServer(cluster, {
    host,
    certificates: certificates.nodes,
    authFailureDelayMs: options.authFailureDelayMs ?? 3000,
    adminSecret,
  });
  const ssh = new SshServer(cluster, {
    host,
    authorizedKeys: [sshClientKey.publicKey, ...scenario.ssh.authorized_keys, ...(options.sshAuthorizedKeys ?? [])],
  });
  const apiPorts = await api.listen();
  let sshEndpoints: Awaited<ReturnType<SshServer['listen']>>;
  try {
    sshEndpoints = await ssh.listen();
  } catch (err) {
    await api.close();
    throw err;
  }
  if (scenario.faults) await cluster.faults.apply(scenario.faults);

  const nodes = scenario.nodes.map((n) => ({
    name: n.name,
    host,
    port: apiPorts.get(n.name)!,
    sshPort: sshEndpoints.get(n.name)!.port,
    sshHostKey: sshEndpoints.get(n.name)!.hostKey,
    sshHostPublicKey: sshEndpoints.get(n.name)!.hostPublicKey,
    tlsFingerprint: certificates.nodes.get(n.name)!.fingerprint,
  }));
  return {
    nodes,
    caPem: certificates.caPem,
    tokens: cluster.access.tokens.map((t) => ({ tokenId: t.tokenId, secret: t.secret, acl: t.acl })),
    sshClientKey,
    adminSecret,
    state: cluster.state,
    counters: cluster.counters,
    faults: cluster.faults,
    clock,
    cluster,
    apiUrl: (node) => {
      const n = node ? nodes.find((x) => x.name === node) : nodes[0];
      if (!n) throw new Error(`no node '${node}' in this simulator`);
      return `https://${host}:${n.port}/api2/json`;
    },
    stop: async () => {
      cluster.stop();
      await Promise.all([api.close(), ssh.close()]);
    },
  };
}

export { generateScenario, type GenerateScenarioOptions } from './scenario-generate.js';
export {
  importInventory,
  loadScenarioFromClusterResources,
  loadScenarioSource,
  type ImportedScenario,
  type ImportOptions,
  type Inventory,
} from './scenario-import.js';
export { loadScenarioFile, parseScenario, ScenarioError, type ResolvedScenario, type Scenario } from './scenario.js';
export { estimateMigrationSeconds, shareBandwidth, simulateTransfers } from './cost.js';
