/**
 * A stand-in for `talosctl`, for the simulator: real Talos cannot run here. It accepts the
 * commands and arguments the orchestrator's adapter (lib/talos/talosctl.ts) uses and answers
 * the way talosctl does, including its refusals:
 *
 *   version [--client]                          Client (and, with --nodes, Server) blocks
 *   gen config NAME ENDPOINT -o DIR [flags]     controlplane.yaml, worker.yaml, talosconfig
 *   apply-config --insecure --nodes IP --file F a node in maintenance mode takes its config once
 *   service etcd                                STATE Running once the cluster is bootstrapped
 *   bootstrap                                   once per cluster: then AlreadyExists
 *   health --control-plane-nodes .. --worker-nodes ..
 *   kubeconfig PATH --force                     a fresh admin kubeconfig (random credentials)
 *   config endpoint|node ADDR...                edits the talosconfig
 *
 * A node is a VM of the simulator: with TALOSCTL_STANDIN_PVE set (JSON: `{"host", "port",
 * "fingerprint", "tokenFile"}` of the simulated PVE API) an address is looked up among the
 * running VMs through their guest agents — no VM there means connection refused, and a VM
 * re-created at a known address is a fresh node in maintenance mode again. Without it, every
 * address is taken to be a booted Talos VM.
 *
 * State lives in TALOSCTL_STANDIN_STATE (a directory): one file per configured node, one etcd
 * marker per cluster (created exclusively, so two bootstraps cannot both win), and log.jsonl
 * with every invocation, which tests read.
 *
 *   sim/bin/talosctl version --client
 */
import { randomBytes, createHash } from 'node:crypto';
import { appendFile, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';

const VERSION = 'v1.11.3';
const KUBERNETES = '1.34.1';

class Failure extends Error {}

const stateDir = process.env.TALOSCTL_STANDIN_STATE ?? join(tmpdir(), 'talosctl-standin');

// ---------------------------------------------------------------------------------------------
// Arguments, as cobra parses them: flags anywhere, `--flag value` or `--flag=value`.

const VALUE_FLAGS: Record<string, string> = {
  talosconfig: 'talosconfig',
  nodes: 'nodes',
  n: 'nodes',
  endpoints: 'endpoints',
  e: 'endpoints',
  context: 'context',
  'output-dir': 'output-dir',
  o: 'output-dir',
  'talos-version': 'talos-version',
  'kubernetes-version': 'kubernetes-version',
  'install-image': 'install-image',
  'install-disk': 'install-disk',
  'config-patch': 'config-patch',
  'config-patch-control-plane': 'config-patch-control-plane',
  'config-patch-worker': 'config-patch-worker',
  file: 'file',
  f: 'file',
  'control-plane-nodes': 'control-plane-nodes',
  'worker-nodes': 'worker-nodes',
  'wait-timeout': 'wait-timeout',
};
const BOOLEAN_FLAGS = new Set(['insecure', 'client', 'force', 'with-docs', 'with-examples', 'short']);

interface Args {
  positional: string[];
  values: Map<string, string[]>;
  booleans: Map<string, boolean>;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { positional: [], values: new Map(), booleans: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const m = /^--?([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!m) {
      args.positional.push(arg);
      continue;
    }
    const [, flag, inline] = m as unknown as [string, string, string | undefined];
    if (BOOLEAN_FLAGS.has(flag)) {
      args.booleans.set(flag, inline === undefined ? true : inline === 'true');
      continue;
    }
    const name = VALUE_FLAGS[flag];
    if (!name) throw new Failure(`unknown flag: ${arg.split('=')[0]}`);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new Failure(`flag needs an argument: ${arg}`);
    args.values.set(name, [...(args.values.get(name) ?? []), value]);
  }
  return args;
}

const one = (a: Args, name: string) => a.values.get(name)?.at(-1);
const list = (a: Args, name: string) => (a.values.get(name) ?? []).flatMap((v) => v.split(',')).filter(Boolean);

// ---------------------------------------------------------------------------------------------
// State

interface NodeState {
  /** The VM that took the config (its SMBIOS UUID): a new VM at the same address starts afresh. */
  instance: string;
  role: 'controlplane' | 'worker';
  clusterName: string;
  clusterId: string;
  /** The machine CA; a talosconfig with the same CA is answered. */
  ca: string;
}

interface TalosConfig {
  context: string;
  contexts: Record<string, { endpoints?: string[]; nodes?: string[]; ca: string; crt: string; key: string }>;
}

function nodeFile(ip: string): string {
  if (!/^[0-9a-f.:]+$/i.test(ip))
    throw new Failure(`rpc error: code = Unavailable desc = name resolver error: produced zero addresses for ${ip}`);
  return join(stateDir, 'nodes', `${ip}.json`);
}

/** The simulator's API, when the stand-in is told where it is. */
const pve = (() => {
  const spec = process.env.TALOSCTL_STANDIN_PVE;
  if (!spec) return undefined;
  const { host, port, fingerprint, tokenFile } = JSON.parse(spec) as {
    host: string;
    port: number;
    fingerprint: string;
    tokenFile: string;
  };
  return { host, port, fingerprint, tokenFile };
})();

const UNREACHABLE = (ip: string) =>
  `${ip}: rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial tcp ${ip}:50000: connect: connection refused"`;

/**
 * The VM answering at `ip`, by its guest agent's report; `any` when no simulator is configured.
 * No running VM reports the address: nothing listens there.
 */
async function vmAt(ip: string): Promise<string> {
  if (!pve) return 'any';
  const [{ createPveClient }, { parseApiToken }] = await Promise.all([
    import('../lib/pve/client.js'),
    import('../lib/config/secrets.js'),
  ]);
  const client = createPveClient({
    nodes: [{ name: 'simulator', host: pve.host, port: pve.port }],
    tls: { fingerprint: pve.fingerprint },
    credential: parseApiToken(await readFile(pve.tokenFile, 'utf8'), pve.tokenFile),
  });
  try {
    for (const vm of await client.cluster.resources({ type: 'vm' })) {
      if (vm.type !== 'qemu' || vm.status !== 'running' || !vm.node || vm.vmid === undefined) continue;
      const ref = { node: vm.node, vmid: vm.vmid };
      const reported = await client.qemu.agentNetworkInterfaces(ref).then(
        ({ result }) => result.some((i) => (i['ip-addresses'] ?? []).some((a) => a['ip-address'] === ip)),
        () => false,
      );
      if (reported)
        return (
          /uuid=([0-9a-f-]+)/i.exec(String((await client.qemu.config(ref))['smbios1'] ?? ''))?.[1] ?? `vm-${vm.vmid}`
        );
    }
  } finally {
    await client.close();
  }
  throw new Failure(UNREACHABLE(ip));
}

/** The node's state, if the VM at its address is the one that took it. */
async function nodeState(ip: string, instance?: string): Promise<NodeState | undefined> {
  instance ??= await vmAt(ip);
  const state = await readJson<NodeState>(nodeFile(ip));
  if (state && state.instance !== instance && instance !== 'any') {
    // A different VM answers at this address now: it boots into maintenance mode.
    await unlink(nodeFile(ip)).catch(() => undefined);
    return undefined;
  }
  return state;
}

async function readJson<T>(path: string): Promise<T | undefined> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as T;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function createExclusive(path: string, value: unknown): Promise<boolean> {
  await mkdir(join(path, '..'), { recursive: true });
  try {
    await writeFile(path, JSON.stringify(value), { flag: 'wx' });
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

const etcdMarker = (clusterId: string) =>
  join(stateDir, 'etcd', `${createHash('sha256').update(clusterId).digest('hex').slice(0, 16)}.json`);

async function loadTalosconfig(
  a: Args,
): Promise<{ path: string; config: TalosConfig; ctx: TalosConfig['contexts'][string] }> {
  const path =
    one(a, 'talosconfig') ?? process.env.TALOSCONFIG ?? join(process.env.HOME ?? tmpdir(), '.talos', 'config');
  const text = await readFile(path, 'utf8').catch(() => {
    throw new Failure(`failed to open config file "${path}": no such file or directory`);
  });
  const config = parseYaml(text) as TalosConfig;
  const ctx = config.contexts?.[one(a, 'context') ?? config.context];
  if (!ctx) throw new Failure(`context "${config.context}" is not defined in "${path}"`);
  return { path, config, ctx };
}

const TLS_UNKNOWN_AUTHORITY =
  'rpc error: code = Unavailable desc = connection error: desc = "transport: authentication handshake failed: tls: failed to verify certificate: x509: certificate signed by unknown authority"';

/** The node as our talosconfig reaches it: configured by this cluster, or refused like a TLS mismatch. */
async function authenticated(a: Args): Promise<{ ip: string; node: NodeState }[]> {
  const { ctx } = await loadTalosconfig(a);
  const nodes = list(a, 'nodes');
  const targets = nodes.length > 0 ? nodes : (ctx.nodes ?? []);
  if (targets.length === 0)
    throw new Failure(
      'nodes are not set for the command: please use `--nodes` flag or configuration file to set the nodes to run the command against',
    );
  const endpoints = list(a, 'endpoints').length > 0 ? list(a, 'endpoints') : (ctx.endpoints ?? []);
  if (endpoints.length === 0) throw new Failure('failed to determine endpoints');
  const out: { ip: string; node: NodeState }[] = [];
  for (const ip of targets) {
    const node = await nodeState(ip);
    if (!node || node.ca !== ctx.ca) throw new Failure(`${ip}: ${TLS_UNKNOWN_AUTHORITY}`);
    out.push({ ip, node });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Machine configs

const secret = (bytes = 32) => randomBytes(bytes).toString('base64');
const fakePem = (label: string) =>
  Buffer.from(`-----BEGIN ${label}-----\n${randomBytes(96).toString('base64')}\n-----END ${label}-----\n`).toString(
    'base64',
  );

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Strategic merge as talosctl applies a patch: objects merge key by key, other values replace, null deletes. */
function merge(base: Json, patch: Json): Json {
  if (
    patch === null ||
    typeof patch !== 'object' ||
    Array.isArray(patch) ||
    base === null ||
    typeof base !== 'object' ||
    Array.isArray(base)
  )
    return patch;
  const out: { [k: string]: Json } = { ...base };
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = k in out ? merge(out[k]!, v) : v;
  }
  return out;
}

async function readPatches(paths: string[]): Promise<Json[]> {
  const patches: Json[] = [];
  for (const ref of paths) {
    if (!ref.startsWith('@'))
      throw new Failure(`failed to load patch "${ref}": inline patches are not supported by this stand-in; use @file`);
    const text = await readFile(ref.slice(1), 'utf8').catch(() => {
      throw new Failure(`failed to load patch "${ref}": open ${ref.slice(1)}: no such file or directory`);
    });
    const patch = parseYaml(text) as Json;
    if (patch === null || typeof patch !== 'object' || Array.isArray(patch))
      throw new Failure(`failed to load patch "${ref}": not a strategic merge patch`);
    const unknown = Object.keys(patch).filter(
      (k) => !['version', 'debug', 'persist', 'machine', 'cluster'].includes(k),
    );
    if (unknown.length > 0)
      throw new Failure(`failed to apply patch "${ref}": unknown keys found during decoding:\n${unknown.join('\n')}`);
    patches.push(patch);
  }
  return patches;
}

async function genConfig(a: Args): Promise<string> {
  const [sub, clusterName, endpoint] = a.positional.slice(1);
  if (sub !== 'config') throw new Failure(`unknown command "${sub ?? ''}" for "talosctl gen"`);
  if (!clusterName || !endpoint) throw new Failure('accepts 2 arg(s), received ' + String(a.positional.length - 2));
  if (!/^https:\/\/[^/\s]+:\d+$/.test(endpoint))
    throw new Failure(`invalid control plane endpoint "${endpoint}": must be https://<host>:<port>`);
  const dir = one(a, 'output-dir') ?? '.';
  const version = one(a, 'talos-version');
  if (version && !/^v\d+\.\d+$/.test(version)) throw new Failure(`invalid talos-version "${version}": expected vX.Y`);
  const kubernetes = one(a, 'kubernetes-version') ?? KUBERNETES;
  await mkdir(dir, { recursive: true });
  for (const file of ['controlplane.yaml', 'worker.yaml', 'talosconfig']) {
    if (
      !a.booleans.get('force') &&
      (await readFile(join(dir, file)).then(
        () => true,
        () => false,
      ))
    ) {
      throw new Failure(`${join(dir, file)} already exists, use --force to overwrite`);
    }
  }
  const machineCa = { crt: fakePem('CERTIFICATE'), key: fakePem('ED25519 PRIVATE KEY') };
  const common = {
    version: 'v1alpha1',
    debug: false,
    persist: true,
    machine: {
      token: `${randomBytes(3).toString('hex')}.${randomBytes(8).toString('hex')}`,
      ca: machineCa,
      certSANs: [],
      kubelet: { image: `ghcr.io/siderolabs/kubelet:v${kubernetes}`, defaultRuntimeSeccompProfileEnabled: true },
      network: {},
      install: {
        disk: one(a, 'install-disk') ?? '/dev/sda',
        image: one(a, 'install-image') ?? `ghcr.io/siderolabs/installer:${VERSION}`,
        wipe: false,
      },
      features: { rbac: true, stableHostname: true, apidCheckExtKeyUsage: true, diskQuotaSupport: true },
    },
    cluster: {
      id: secret(),
      secret: secret(),
      controlPlane: { endpoint },
      clusterName,
      network: { dnsDomain: 'cluster.local', podSubnets: ['10.244.0.0/16'], serviceSubnets: ['10.96.0.0/12'] },
      token: `${randomBytes(3).toString('hex')}.${randomBytes(8).toString('hex')}`,
      secretboxEncryptionSecret: secret(),
      ca: { crt: fakePem('CERTIFICATE'), key: fakePem('EC PRIVATE KEY') },
      aggregatorCA: { crt: fakePem('CERTIFICATE'), key: fakePem('EC PRIVATE KEY') },
      serviceAccount: { key: fakePem('EC PRIVATE KEY') },
      apiServer: { image: `registry.k8s.io/kube-apiserver:v${kubernetes}`, certSANs: [new URL(endpoint).hostname] },
      etcd: { ca: { crt: fakePem('CERTIFICATE'), key: fakePem('EC PRIVATE KEY') } },
    },
  } satisfies Json;
  const shared = await readPatches(a.values.get('config-patch') ?? []);
  const cpPatches = await readPatches(a.values.get('config-patch-control-plane') ?? []);
  const workerPatches = await readPatches(a.values.get('config-patch-worker') ?? []);
  const build = (type: 'controlplane' | 'worker', own: Json[]) =>
    [...shared, ...own].reduce<Json>((config, patch) => merge(config, patch), merge(common, { machine: { type } }));
  await writeFile(join(dir, 'controlplane.yaml'), toYaml(build('controlplane', cpPatches)), { mode: 0o600 });
  await writeFile(join(dir, 'worker.yaml'), toYaml(build('worker', workerPatches)), { mode: 0o600 });
  const talosconfig: TalosConfig = {
    context: clusterName,
    contexts: {
      [clusterName]: {
        endpoints: [],
        ca: machineCa.crt,
        crt: fakePem('CERTIFICATE'),
        key: fakePem('ED25519 PRIVATE KEY'),
      },
    },
  };
  await writeFile(join(dir, 'talosconfig'), toYaml(talosconfig), { mode: 0o600 });
  return `generating PKI and tokens\nCreated ${join(dir, 'controlplane.yaml')}\nCreated ${join(dir, 'worker.yaml')}\nCreated ${join(dir, 'talosconfig')}\n`;
}

async function applyConfig(a: Args): Promise<string> {
  const file = one(a, 'file');
  if (!file) throw new Failure('no filename supplied for configuration');
  const nodes = list(a, 'nodes');
  if (nodes.length === 0)
    throw new Failure(
      'nodes are not set for the command: please use `--nodes` flag or configuration file to set the nodes to run the command against',
    );
  if (!a.booleans.get('insecure'))
    throw new Failure('this stand-in applies configs to nodes in maintenance mode only (--insecure)');
  const config = parseYaml(
    await readFile(file, 'utf8').catch(() => {
      throw new Failure(`failed to read configuration from "${file}": open ${file}: no such file or directory`);
    }),
  ) as {
    version?: string;
    machine?: { type?: string; ca?: { crt?: string } };
    cluster?: { id?: string; clusterName?: string };
  };
  const role = config.machine?.type;
  if (
    config.version !== 'v1alpha1' ||
    (role !== 'controlplane' && role !== 'worker') ||
    !config.cluster?.id ||
    !config.machine?.ca?.crt
  ) {
    throw new Failure(
      `error applying new configuration: rpc error: code = InvalidArgument desc = failed to parse config: not a Talos v1alpha1 machine config`,
    );
  }
  for (const ip of nodes) {
    const instance = await vmAt(ip);
    await nodeState(ip, instance);
    const state: NodeState = {
      instance,
      role,
      clusterName: config.cluster.clusterName ?? '',
      clusterId: config.cluster.id,
      ca: config.machine.ca.crt,
    };
    // A configured node has left maintenance mode: its insecure API is gone.
    if (!(await createExclusive(nodeFile(ip), state))) {
      throw new Failure(
        `error applying new configuration: rpc error: code = Unavailable desc = connection error: desc = "error reading server preface: remote error: tls: certificate required"`,
      );
    }
  }
  return '';
}

async function service(a: Args): Promise<string> {
  const id = a.positional[1];
  const out: string[] = [];
  for (const { ip, node } of await authenticated(a)) {
    if (id !== 'etcd')
      throw new Failure(
        `${ip}: rpc error: code = NotFound desc = service "${id ?? ''}" not supported by this stand-in`,
      );
    if (node.role !== 'controlplane')
      throw new Failure(`${ip}: rpc error: code = NotFound desc = service "etcd" not found`);
    const running = (await readJson(etcdMarker(node.clusterId))) !== undefined;
    out.push(
      `NODE     ${ip}`,
      'ID       etcd',
      `STATE    ${running ? 'Running' : 'Preparing'}`,
      `HEALTH   ${running ? 'OK' : '?'}`,
      `EVENTS   ${running ? '[Running]: Health check successful' : '[Preparing]: Running pre state'}`,
    );
  }
  return `${out.join('\n')}\n`;
}

async function bootstrap(a: Args): Promise<string> {
  const [target, ...rest] = await authenticated(a);
  if (!target || rest.length > 0)
    throw new Failure('error executing bootstrap: bootstrap is only supported on a single node');
  if (target.node.role !== 'controlplane') {
    throw new Failure(
      `error executing bootstrap: rpc error: code = FailedPrecondition desc = bootstrap is not available on worker nodes`,
    );
  }
  if (!(await createExclusive(etcdMarker(target.node.clusterId), { node: target.ip, at: new Date().toISOString() }))) {
    throw new Failure(
      `error executing bootstrap: 1 error occurred:\n\t* ${target.ip}: rpc error: code = AlreadyExists desc = etcd data directory is not empty`,
    );
  }
  return '';
}

async function health(a: Args): Promise<string> {
  const [target] = await authenticated(a);
  const clusterId = target!.node.clusterId;
  const controlPlanes = list(a, 'control-plane-nodes');
  const workers = list(a, 'worker-nodes');
  // Progress goes out as it happens, as talosctl prints it.
  const say = (line: string) => process.stdout.write(`${line}\n`);
  say(`discovered nodes: ${JSON.stringify([...controlPlanes, ...workers])}`);
  if ((await readJson(etcdMarker(clusterId))) === undefined) {
    throw new Failure(
      'healthcheck error: waiting for etcd to be healthy: etcd is not running on any control plane node (not bootstrapped)',
    );
  }
  say('waiting for etcd to be healthy: OK');
  for (const [group, role] of [
    [controlPlanes, 'controlplane'],
    [workers, 'worker'],
  ] as const) {
    for (const ip of group) {
      const node = await nodeState(ip);
      if (!node || node.clusterId !== clusterId)
        throw new Failure(
          `healthcheck error: waiting for all nodes to finish boot sequence: node ${ip} is not part of the cluster`,
        );
      if (node.role !== role) throw new Failure(`healthcheck error: node ${ip} is a ${node.role}, not a ${role}`);
    }
  }
  for (const check of [
    'etcd members to be consistent across nodes',
    'etcd members to be control plane nodes',
    'apid to be ready',
    'all nodes memory sizes',
    'all nodes disk sizes',
    'kubelet to be healthy',
    'all nodes to finish boot sequence',
    'all k8s nodes to report',
    'all k8s nodes to report ready',
    'all control plane static pods to be running',
    'all control plane components to be ready',
    'kube-proxy to report ready',
    'coredns to report ready',
    'all k8s nodes to report schedulable',
  ]) {
    say(`waiting for ${check}: OK`);
  }
  return '';
}

async function kubeconfig(a: Args): Promise<string> {
  const [target] = await authenticated(a);
  const node = target!.node;
  if (node.role !== 'controlplane')
    throw new Failure('error constructing client: kubeconfig is served by control plane nodes only');
  if ((await readJson(etcdMarker(node.clusterId))) === undefined) {
    throw new Failure(
      `error copying: rpc error: code = Unavailable desc = kube-apiserver is not running: etcd is not bootstrapped`,
    );
  }
  const path = a.positional[1];
  if (!path) throw new Failure('this stand-in writes kubeconfigs to a path only: talosctl kubeconfig <path> --force');
  if (
    !a.booleans.get('force') &&
    (await readFile(path).then(
      () => true,
      () => false,
    ))
  ) {
    throw new Failure(`this stand-in does not merge kubeconfigs: ${path} exists (use --force)`);
  }
  const user = `admin@${node.clusterName}`;
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: node.clusterName,
        cluster: { server: `https://${target!.ip}:6443`, 'certificate-authority-data': fakePem('CERTIFICATE') },
      },
    ],
    users: [
      {
        name: user,
        user: { 'client-certificate-data': fakePem('CERTIFICATE'), 'client-key-data': fakePem('EC PRIVATE KEY') },
      },
    ],
    contexts: [{ name: user, context: { cluster: node.clusterName, namespace: 'default', user } }],
    'current-context': user,
  };
  await writeFile(path, toYaml(config), { mode: 0o600 });
  return '';
}

async function configCommand(a: Args): Promise<string> {
  const [, sub, ...addresses] = a.positional;
  const { path, config, ctx } = await loadTalosconfig(a);
  if (sub === 'endpoint') ctx.endpoints = addresses;
  else if (sub === 'node') ctx.nodes = addresses;
  else throw new Failure(`unknown command "${sub ?? ''}" for "talosctl config"`);
  await writeFile(path, toYaml(config), { mode: 0o600 });
  return '';
}

async function version(a: Args): Promise<string> {
  const client = `Client:\n\tTag:         ${VERSION}\n\tSHA:         standin\n\tBuilt:       \n\tGo version:  go1.24.9\n\tOS/Arch:     linux/amd64\n`;
  if (a.booleans.get('client')) return client;
  const servers = (await authenticated(a)).map(
    ({ ip }) =>
      `Server:\n\tNODE:        ${ip}\n\tTag:         ${VERSION}\n\tSHA:         standin\n\tBuilt:       \n\tGo version:  go1.24.9\n\tOS/Arch:     linux/amd64\n\tEnabled:     RBAC\n`,
  );
  return client + servers.join('');
}

const COMMANDS: Record<string, (a: Args) => Promise<string>> = {
  version,
  gen: genConfig,
  'apply-config': applyConfig,
  service,
  bootstrap,
  health,
  kubeconfig,
  config: configCommand,
};

async function main(argv: string[]): Promise<number> {
  let args: Args | undefined;
  let outcome = 'ok';
  try {
    args = parseArgs(argv);
    const command = COMMANDS[args.positional[0] ?? ''];
    if (!command)
      throw new Failure(
        `unknown command "${args.positional[0] ?? ''}" for "talosctl" (this stand-in knows: ${Object.keys(COMMANDS).join(', ')})`,
      );
    process.stdout.write(await command(args));
    return 0;
  } catch (err) {
    if (!(err instanceof Failure)) throw err;
    outcome = err.message;
    process.stderr.write(`error: ${err.message}\n`);
    return 1;
  } finally {
    await mkdir(stateDir, { recursive: true });
    await appendFile(
      join(stateDir, 'log.jsonl'),
      `${JSON.stringify({ at: new Date().toISOString(), argv, outcome })}\n`,
    );
  }
}

process.exitCode = await main(process.argv.slice(2));
