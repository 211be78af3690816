/**
 * Runs a simulated PVE cluster until SIGINT/SIGTERM.
 *
 *   npx tsx sim/main.ts --scenario sim/scenarios/homelab.yaml --speed 20 \
 *     [--connection-file data/sim/connection.json] [--data-dir data/sim] [--host 127.0.0.1] \
 *     [--auth-failure-delay-ms 3000] [--clock-skew pve2=+300 --clock-skew pve3=-300]
 *
 * `--scenario` also takes a real cluster's inventory — a `/cluster/resources` dump, or what
 * `npm run rehearse -- --from-env` reads — imported with every guess listed (sim/scenario-import.ts).
 *
 * Prints node URLs, each node's TLS fingerprint and SSH host key and the checksums of the
 * scenario's downloads, never a secret. Secrets (API token, SSH client key, admin secret) go to
 * files with mode 0600 in the data directory (default: the connection file's directory, else
 * data/sim); the connection file names those files.
 */
import { chmod, mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { offeredDownloads, type OfferedDownload } from './downloads.js';
import { guestSystemsOf } from './guest-ssh.js';
import { startSimulator, type SimulatedCluster } from './index.js';
import { ScenarioError } from './scenario.js';
import { loadScenarioSource } from './scenario-import.js';

/** The connection file: everything a client needs to reach the simulator, secrets by file path only. */
export interface ConnectionFile {
  cluster: string;
  scenario: string;
  speed: number;
  /** `tls_fingerprint`: SHA-256 of the node's own certificate, to pin per node. */
  nodes: {
    name: string;
    host: string;
    port: number;
    ssh_port: number;
    ssh_host_key: string;
    tls_fingerprint: string;
  }[];
  /** The cluster CA that signed every node's certificate. */
  tls: { ca_file: string };
  /** `user@realm!token=secret` of the scenario's first token. */
  token_file: string;
  /** Every scenario token: id and the file holding `id=secret`. */
  tokens: { token_id: string; file: string }[];
  ssh_user: 'root';
  /** OpenSSH private key authorised for root on every node. */
  ssh_key_file: string;
  /** Bearer secret for /_sim/* (counters, faults, clock) on any node's API port. */
  admin_secret_file: string;
  /** `SHA256:...` of the network-booted live image's SSH host key, to pin for PXE installs. */
  live_image_host_key: string;
  /** The scenario's downloads with the checksums of what they serve, for iso-import and template-build. */
  downloads: OfferedDownload[];
  pid: number;
}

async function writeSecret(path: string, content: string): Promise<void> {
  await writeFile(path, content, { mode: 0o600 });
  await chmod(path, 0o600);
}

function fileSafe(tokenId: string): string {
  return tokenId.replace(/[^A-Za-z0-9._-]/g, '_');
}

async function writeConnection(
  sim: SimulatedCluster,
  scenario: string,
  speed: number,
  dataDir: string,
  connectionFile: string,
): Promise<ConnectionFile> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const tokens: ConnectionFile['tokens'] = [];
  for (const t of sim.tokens) {
    const file = join(dataDir, `token-${fileSafe(t.tokenId)}`);
    await writeSecret(file, `${t.tokenId}=${t.secret}\n`);
    tokens.push({ token_id: t.tokenId, file });
  }
  if (!tokens[0]) throw new Error('the scenario defines no API token; add one under tokens:');
  const sshKeyFile = join(dataDir, 'ssh_client_ed25519');
  await writeSecret(sshKeyFile, sim.sshClientKey.privateKey);
  await writeFile(`${sshKeyFile}.pub`, `${sim.sshClientKey.publicKey}\n`);
  const adminFile = join(dataDir, 'admin.secret');
  await writeSecret(adminFile, `${sim.adminSecret}\n`);
  const caFile = join(dataDir, 'ca.pem');
  await writeFile(caFile, sim.caPem);

  const connection: ConnectionFile = {
    cluster: sim.state.clusterName,
    scenario,
    speed,
    nodes: sim.nodes.map((n) => ({
      name: n.name,
      host: n.host,
      port: n.port,
      ssh_port: n.sshPort,
      ssh_host_key: n.sshHostKey,
      tls_fingerprint: n.tlsFingerprint,
    })),
    tls: { ca_file: caFile },
    token_file: tokens[0].file,
    tokens,
    ssh_user: 'root',
    ssh_key_file: sshKeyFile,
    admin_secret_file: adminFile,
    live_image_host_key: guestSystemsOf(sim.cluster).liveImageHostKey,
    downloads: offeredDownloads(sim.state.downloads),
    pid: process.pid,
  };
  // Written whole and renamed, so a reader polling for the file never sees half of it.
  await mkdir(dirname(connectionFile), { recursive: true });
  const partial = `${connectionFile}.partial`;
  await writeFile(partial, `${JSON.stringify(connection, null, 2)}\n`);
  await rename(partial, connectionFile);
  return connection;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      scenario: { type: 'string', default: 'sim/scenarios/homelab.yaml' },
      speed: { type: 'string', default: '1' },
      'connection-file': { type: 'string' },
      'data-dir': { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      'auth-failure-delay-ms': { type: 'string', default: '3000' },
      'clock-skew': { type: 'string', multiple: true, default: [] },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(
      'usage: sim/main.ts --scenario <file.yaml> [--speed N] [--connection-file F] [--data-dir D] [--host H] [--auth-failure-delay-ms MS] [--clock-skew NODE=±SECONDS ...]',
    );
    return 0;
  }
  const speed = Number(values.speed);
  if (!(speed > 0)) throw new UsageError(`--speed must be a positive number, got '${values.speed}'`);
  const authDelay = Number(values['auth-failure-delay-ms']);
  if (!(authDelay >= 0)) throw new UsageError(`--auth-failure-delay-ms must be a number >= 0`);
  if (!/^(127\.\d+\.\d+\.\d+|::1|localhost)$/.test(values.host)) {
    throw new UsageError(`--host must be a loopback address (the simulator is for local use), got '${values.host}'`);
  }
  const connectionFile = resolve(values['connection-file'] ?? 'data/sim/connection.json');
  const dataDir = resolve(values['data-dir'] ?? dirname(connectionFile));
  const scenario = resolve(values.scenario);

  // A cluster inventory (a cluster/resources dump) is imported; what it had to guess is said here.
  const loaded = await loadScenarioSource(scenario);
  const clockSkewSeconds = Object.fromEntries(values['clock-skew'].map(parseClockSkew));
  const sim = await startSimulator({
    scenario: loaded.scenario,
    speed,
    host: values.host,
    authFailureDelayMs: authDelay,
    clockSkewSeconds,
  });
  const connection = await writeConnection(sim, scenario, speed, dataDir, connectionFile);
  if (loaded.guesses.length > 0) {
    console.log(`imported ${scenario}; guessed what it does not say:`);
    for (const g of loaded.guesses) console.log(`  - ${g}`);
  }

  console.log(`simulated PVE cluster '${connection.cluster}' (${sim.state.guests.size} guests) at ${speed}x speed`);
  for (const n of connection.nodes) {
    console.log(
      `  ${n.name.padEnd(10)} https://${n.host}:${n.port}/api2/json   ssh -p ${n.ssh_port} root@${n.host}   host key ${n.ssh_host_key}`,
    );
    console.log(`  ${''.padEnd(10)} TLS fingerprint (SHA-256) ${n.tls_fingerprint}`);
  }
  console.log(`  cluster CA: ${connection.tls.ca_file}`);
  console.log(`  connection file: ${connectionFile}`);
  console.log(`  tokens: ${connection.tokens.map((t) => `${t.token_id} (${t.file})`).join(', ')}`);
  console.log(`  SSH key: ${connection.ssh_key_file}   admin secret: ${connection.admin_secret_file}`);
  console.log(`  PXE live image host key: ${connection.live_image_host_key}`);
  for (const d of connection.downloads) console.log(`  download ${d.url}  sha256 ${d.sha256}`);

  await new Promise<void>((done) => {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => done());
  });
  console.log('stopping the simulator');
  await sim.stop();
  return 0;
}

class UsageError extends Error {}

/** `pve2=+300`: pve2's clock runs 300 s ahead of true time. */
function parseClockSkew(option: string): [string, number] {
  const m = /^([a-zA-Z0-9][a-zA-Z0-9-]*)=([+-]?\d+(?:\.\d+)?)$/.exec(option);
  if (!m) throw new UsageError(`--clock-skew must look like NODE=+SECONDS or NODE=-SECONDS, got '${option}'`);
  return [m[1]!, Number(m[2])];
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ScenarioError || err instanceof UsageError) console.error(err.message);
    else console.error(err);
    process.exit(err instanceof UsageError ? 2 : 1);
  },
);
