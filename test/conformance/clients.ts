/**
 * PVE clients nobody here wrote, pointed at a simulated cluster: proxmoxer (through
 * proxmoxer_driver.py) and Ansible's community.proxmox modules (through the real
 * ansible-playbook), both from the project's Python venv (test/python-tools-setup.ts).
 *
 *   const cluster = await startConformanceCluster();
 *   const px = await cluster.proxmoxer('ansible@pve!conformance');
 *   await px.get('cluster/resources', { type: 'vm' });
 *   const [clone] = await cluster.ansible([{ 'community.proxmox.proxmox_kvm': { ... } }]);
 *
 * TLS is verified against the simulator's CA, as a user would configure it for a real
 * cluster's CA: proxmoxer gets the CA file as `verify_ssl`; the Ansible modules only take
 * `validate_certs: true`, so requests finds the CA through REQUESTS_CA_BUNDLE.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { inject } from 'vitest';
import { stringify as toYaml } from 'yaml';
import { startSimulator, type SimulatedCluster } from '../../sim/index.js';

const scenario = fileURLToPath(new URL('./cluster.yaml', import.meta.url));
const driver = fileURLToPath(new URL('./proxmoxer_driver.py', import.meta.url));
const python = (tool: string) => join(inject('pythonBin'), tool);

/** A failed call as proxmoxer reports it (its ResourceException), or a transport failure. */
export interface ClientError {
  /** HTTP status; null when no HTTP answer came (e.g. TLS refused). */
  status: number | null;
  reason: string;
  /** proxmoxer puts PVE's reason phrase (the message's first line) here. */
  content: string;
  /** PVE's `errors` object (400 per key), when the body had one. */
  errors: Record<string, string> | null;
}

export type Answer<T = unknown> = { data: T; error?: undefined } | { data?: undefined; error: ClientError };

export interface TaskOutcome {
  status: {
    status: string;
    exitstatus?: string;
    type: string;
    id: string;
    user: string;
    tokenid?: string;
    node: string;
  };
  log: string;
}

export interface Proxmoxer {
  get<T = unknown>(path: string, params?: Record<string, unknown>): Promise<Answer<T>>;
  post<T = unknown>(path: string, params?: Record<string, unknown>): Promise<Answer<T>>;
  put<T = unknown>(path: string, params?: Record<string, unknown>): Promise<Answer<T>>;
  delete<T = unknown>(path: string, params?: Record<string, unknown>): Promise<Answer<T>>;
  /** proxmoxer's Tasks.blocking_status, then the task's log. */
  wait(upid: string): Promise<TaskOutcome>;
  close(): Promise<void>;
}

/** One Ansible task's result as the json callback reports it. */
export interface TaskResult {
  changed?: boolean;
  failed?: boolean;
  msg?: string;
  [key: string]: unknown;
}

export interface ConformanceCluster {
  sim: SimulatedCluster;
  /** A proxmoxer connection to a node's API as a scenario token (or a wrong secret for it). */
  proxmoxer(tokenId: string, options?: { node?: string; secret?: string; caFile?: string }): Promise<Proxmoxer>;
  /** Runs tasks on localhost with the real ansible-playbook; connection details as the modules' PROXMOX_* variables. */
  ansible(tasks: Record<string, unknown>[], options?: { tokenId?: string; secret?: string }): Promise<TaskResult[]>;
  stop(): Promise<void>;
}

export const ANSIBLE_TOKEN = 'ansible@pve!conformance';
export const READ_ONLY_TOKEN = 'monitor@pve!ro';

export async function startConformanceCluster(): Promise<ConformanceCluster> {
  // Fast enough that most tasks end before a client's first poll; PVE's 3 s auth delay is not under test.
  const sim = await startSimulator({ scenario, speed: 500, authFailureDelayMs: 50 });
  const dir = await mkdtemp(join(tmpdir(), 'pm-conformance-'));
  const caFile = join(dir, 'ca.pem');
  await writeFile(caFile, sim.caPem);
  const connection = (tokenId: string, node?: string) => {
    const token = sim.tokens.find((t) => t.tokenId === tokenId);
    const target = node ? sim.nodes.find((n) => n.name === node) : sim.nodes[0];
    if (!token || !target) throw new Error(`no token ${tokenId} or node ${node} in the conformance scenario`);
    return { token, target };
  };
  return {
    sim,
    proxmoxer: (tokenId, { node, secret, caFile: ca = caFile } = {}) => {
      const { token, target } = connection(tokenId, node);
      return startProxmoxer({
        PVE_HOST: target.host,
        PVE_PORT: String(target.port),
        PVE_TOKEN_ID: token.tokenId,
        PVE_TOKEN_SECRET: secret ?? token.secret,
        PVE_CA_FILE: ca,
      });
    },
    ansible: (tasks, { tokenId = ANSIBLE_TOKEN, secret } = {}) => {
      const { token, target } = connection(tokenId);
      const [user, name] = token.tokenId.split('!') as [string, string];
      return runPlaybook(dir, tasks, {
        PROXMOX_HOST: target.host,
        PROXMOX_PORT: String(target.port),
        PROXMOX_USER: user,
        PROXMOX_TOKEN_ID: name,
        PROXMOX_TOKEN_SECRET: secret ?? token.secret,
        PROXMOX_VALIDATE_CERTS: 'true',
        REQUESTS_CA_BUNDLE: caFile,
      });
    },
    async stop() {
      await sim.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function startProxmoxer(env: Record<string, string>): Promise<Proxmoxer> {
  const child = spawn(python('python'), [driver], {
    env: { ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  // One request at a time: each answer is the next line.
  let queue: Promise<unknown> = Promise.resolve();
  const ask = <T>(request: object): Promise<Answer<T>> => {
    const next = queue.then(async () => {
      child.stdin.write(`${JSON.stringify(request)}\n`);
      const line = await lines.next();
      if (line.done) throw new Error('the proxmoxer driver exited');
      return JSON.parse(line.value) as Answer<T>;
    });
    queue = next.catch(() => undefined);
    return next;
  };
  const call =
    (method: string) =>
    <T>(path: string, params: Record<string, unknown> = {}) =>
      ask<T>({ method, path, params });
  return {
    get: call('get'),
    post: call('post'),
    put: call('put'),
    delete: call('delete'),
    async wait(upid) {
      const answer = await ask<TaskOutcome>({ wait: upid });
      if (answer.error) throw new Error(`waiting for ${upid} failed: ${JSON.stringify(answer.error)}`);
      return answer.data;
    },
    async close() {
      child.stdin.end();
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
    },
  };
}

interface JsonCallbackOutput {
  plays: { tasks: { hosts: Record<string, TaskResult> }[] }[];
}

/**
 * Runs the tasks as one play on the implicit localhost (which uses ansible-playbook's own
 * Python, where proxmoxer is installed). Every task runs even after a failure, so each test
 * sees each result; the results come back in task order from the json stdout callback.
 */
async function runPlaybook(
  dir: string,
  tasks: Record<string, unknown>[],
  env: Record<string, string>,
): Promise<TaskResult[]> {
  const playbook = join(dir, `play-${Date.now()}-${Math.random().toString(36).slice(2)}.yml`);
  await writeFile(playbook, toYaml([{ hosts: 'localhost', gather_facts: false, ignore_errors: true, tasks }]));
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(
      python('ansible-playbook'),
      [playbook],
      {
        cwd: dir,
        maxBuffer: 32 * 1024 * 1024,
        env: {
          ...process.env,
          ...env,
          ANSIBLE_STDOUT_CALLBACK: 'ansible.posix.json',
          ANSIBLE_LOCALHOST_WARNING: 'false',
          ANSIBLE_HOME: join(dir, 'ansible-home'),
          PYTHONWARNINGS: 'ignore',
        },
      },
      // ignore_errors keeps the exit code 0 unless the playbook itself is broken.
      (err, out, stderr) =>
        err ? reject(new Error(`ansible-playbook failed: ${err.message}\n${stderr}\n${out}`)) : resolve(out),
    ),
  );
  const output = JSON.parse(stdout) as JsonCallbackOutput;
  return output.plays.flatMap((play) => play.tasks.map((t) => t.hosts['localhost']!));
}
