/**
 * The other doors — `pm`, the MCP server, Discord — against the real API, the real Temporal
 * dev server, a worker running the real workflows and the simulated cluster. Each door is
 * only a client of the API: what the API refuses, every door refuses.
 */
import { spawn } from 'node:child_process';
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import type { ServerType } from '@hono/node-server';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities/index.js';
import { tokenHash } from '../../api/auth.js';
import { createApiClient, type ApiClient, type OperationDetail } from '../../lib/api-client.js';
import { serveMcpHttp } from '../../mcp/http.js';
import { createMcpServer } from '../../mcp/server.js';
import type { Scenario } from '../../sim/index.js';
import { discordKeys, pm, startApiServer, startWebhookReceiver, type ReceivedMessage } from '../support/doors.js';
import { startSimulatedEnvironment, type SimulatedEnvironment } from '../../testkit/simulated-env.js';
import { startTestWorker, type TestWorker } from '../support/temporal.js';
import { until } from '../support/until.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

const tokens = {
  root: 'doors-root-token-1a2b',
  otto: 'doors-otto-token-3c4d',
  anna: 'doors-anna-token-5e6f',
  vera: 'doors-vera-token-7a8b',
  robot: 'doors-robot-token-9c0d',
};
type Actor = keyof typeof tokens;
/** Discord user ids of the same people. */
const discordUsers = { root: '9001', otto: '9002', anna: '9003', vera: '9004' } as const;

const vm = (vmid: number, name: string, node: string, status: 'running' | 'stopped' = 'stopped') => ({
  vmid,
  name,
  node,
  status,
  memory: 1024,
  cores: 1,
  disks: [{ storage: 'nfs', size: '8G' }],
});

const scenario: Scenario = {
  nodes: [{ name: 'pve1' }, { name: 'pve2' }, { name: 'pve3' }],
  storages: [
    { id: 'local-lvm', type: 'lvmthin', content: ['images', 'rootdir'], size: '500G' },
    { id: 'nfs', type: 'nfs', content: ['images'], size: '2T' },
  ],
  guests: [
    vm(1001, 'app01', 'pve1', 'running'),
    vm(1002, 'app02', 'pve1'),
    vm(1011, 'web01', 'pve2'),
    vm(1012, 'web02', 'pve2', 'running'),
    vm(1013, 'web03', 'pve2'),
    vm(1014, 'old01', 'pve2'),
    vm(1015, 'keep01', 'pve2'),
    vm(1016, 'web04', 'pve2', 'running'),
  ],
  tokens: [
    { id: 'automation@pve!pm', secret: 'doors-sim-secret-0f1e', acl: [{ path: '/', roles: ['Administrator'] }] },
  ],
};

const keys = discordKeys();
let env: SimulatedEnvironment;
let worker: TestWorker;
let api: { url: string; server: ServerType };
let webhook: Awaited<ReturnType<typeof startWebhookReceiver>>;
const as = (actor: Actor): ApiClient => createApiClient({ url: api.url, token: tokens[actor] });
const guest = (vmid: number) => env.sim.state.guests.get(vmid);

beforeAll(async () => {
  webhook = await startWebhookReceiver();
  for (const [actor, id] of Object.entries(discordUsers)) process.env[`PM_IT_DISCORD_${id}`] = tokens[actor as Actor];
  env = await startSimulatedEnvironment({
    scenario,
    speed: 50,
    config: {
      api: {
        tokens: (Object.keys(tokens) as Actor[]).map((actor) => ({
          actor,
          sha256: tokenHash(tokens[actor]),
          roles: [{ root: 'admin', otto: 'operator', anna: 'approver', vera: 'viewer', robot: 'agent' }[actor]],
        })),
      },
      approvals: { timeout: '1h', auto_approve: ['low'] },
      discord: {
        public_key: keys.publicKeyHex,
        application_id: '4242',
        environment: 'home',
        api_base: webhook.url,
        users: Object.fromEntries(
          Object.values(discordUsers).map((id) => [id, { token: { env: `PM_IT_DISCORD_${id}` } }]),
        ),
      },
    },
  });
  worker = await startTestWorker({ activities: createActivities(env.deps) });
  api = await startApiServer(env.config, worker.taskQueue);
});

afterAll(async () => {
  api?.server.close();
  webhook?.server.close();
  await worker?.shutdown();
  await env?.stop();
  for (const id of Object.values(discordUsers)) delete process.env[`PM_IT_DISCORD_${id}`];
});

const awaitingApproval = (id: string) =>
  until(
    () => as('vera').operation(id, { includePlan: true }),
    (op) => op.status?.phase === 'awaiting-approval',
    `${id} awaiting approval`,
  );
const ended = (id: string) =>
  until(
    () => as('vera').operation(id),
    (op) => op.state !== 'running',
    `${id} to end`,
    90_000,
  );

/** A high-risk deletion root asked for: root may not approve it (self-approval), vera may not decide at all. */
async function deletionAwaitingApproval(vmid: number, name: string): Promise<OperationDetail> {
  const started = await as('root').start('vm-action', { environment: 'home', vmid, name, action: 'delete' });
  return awaitingApproval(started.id);
}

describe('pm, the terminal client', () => {
  it('plans a deletion first, asks before requesting it, and follows it to the end once a second person approves', async () => {
    const request = [
      'start',
      'vm-action',
      '--env',
      'home',
      '--set',
      'vmid=1014',
      '--set',
      'name=old01',
      '--set',
      'action=delete',
    ];
    const declined = await pm(api.url, tokens.root, request, { answers: ['n'] });
    expect(declined.code).toBe(9);
    expect(declined.stdout).toMatch(/^Plan v1 · risk high/);

    const requested = await pm(api.url, tokens.root, request, { answers: ['y'] });
    expect(requested.code).toBe(0);
    const id = /requested (\S+)/.exec(requested.stdout)![1]!;
    expect(requested.stdout).toContain(`awaiting a decision: pm approve '${id}' --plan-version 1`);
    const waiting = await awaitingApproval(id);

    const shown = await pm(api.url, tokens.anna, ['show', id]);
    expect(shown.stdout).toContain(waiting.planText);
    expect(shown.stdout).not.toContain('\x1b[');

    const notNow = await pm(api.url, tokens.anna, ['approve', id, '--plan-version', '1'], { answers: ['no'] });
    expect(notNow.code).toBe(9);
    expect(guest(1014)).toBeDefined();

    const approved = await pm(api.url, tokens.anna, ['approve', id, '--plan-version', '1'], { answers: ['y'] });
    expect(approved.code).toBe(0);
    expect(approved.stdout).toBe(`${waiting.planText}\napproved by anna (plan v1)\n`);

    const watched = await pm(api.url, tokens.vera, ['watch', id]);
    expect(watched.code).toBe(0);
    expect(watched.stderr).toMatch(/\[#{20}\] (\d+)\/\1 steps · completed/);
    expect(guest(1014)).toBeUndefined();

    const verified = await pm(api.url, tokens.vera, ['audit', 'verify', '--json']);
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.stdout)).toEqual({ ok: true, records: expect.any(Number) });
  });

  it("lists an approver's queue, cancels, and says so in its exit code", async () => {
    const requested = await pm(api.url, tokens.otto, [
      'start',
      'vm-action',
      '--env',
      'home',
      '--yes',
      '--json',
      '--body',
      '{"vmid":1016,"name":"web04","action":"shutdown"}',
    ]);
    expect(requested.code).toBe(0);
    const { id } = JSON.parse(requested.stdout) as { id: string };
    await awaitingApproval(id);

    const queue = await until(
      () => pm(api.url, tokens.anna, ['ops', '--pending', '--json']),
      (run) => (JSON.parse(run.stdout) as { operations: { id: string }[] }).operations.some((o) => o.id === id),
      'the request in the pending list',
    );
    expect(queue.code).toBe(0);
    expect((await pm(api.url, tokens.anna, ['ops', '--pending'])).stdout).toMatch(
      new RegExp(`^${id.replace(/[.]/g, '\\.')} +running +pending +medium +otto`, 'm'),
    );

    expect((await pm(api.url, tokens.otto, ['cancel', id, '--yes', '--reason', 'not today'])).code).toBe(0);
    const watched = await pm(api.url, tokens.otto, ['watch', id, '--json']);
    expect(watched.code).toBe(1);
    expect(JSON.parse(watched.stdout)).toMatchObject({ id, state: 'cancelled' });
    expect(guest(1016)?.status).toBe('running');
  });

  it('rejects a plan only with a reason, and the operation ends as rejected', async () => {
    const requested = await pm(api.url, tokens.otto, [
      'start',
      'vm-action',
      '--env',
      'home',
      '--yes',
      '--json',
      '--body',
      '{"vmid":1016,"name":"web04","action":"reboot"}',
    ]);
    const { id } = JSON.parse(requested.stdout) as { id: string };
    await awaitingApproval(id);

    expect((await pm(api.url, tokens.anna, ['reject', id, '--plan-version', '1', '--yes'])).code).toBe(2);
    const rejected = await pm(api.url, tokens.anna, [
      'reject',
      id,
      '--plan-version',
      '1',
      '--yes',
      '--reason',
      'it serves the demo',
    ]);
    expect(rejected).toMatchObject({ code: 0, stdout: 'rejected by anna (plan v1)\n' });
    const watched = await pm(api.url, tokens.anna, ['watch', id, '--json']);
    expect(watched.code).toBe(1);
    expect(JSON.parse(watched.stdout)).toMatchObject({
      state: 'completed',
      approvalState: 'rejected',
      result: { outcome: 'rejected' },
    });
  });

  it('shows inventory and node health, and colours a plan on a terminal only', async () => {
    expect((await pm(api.url, tokens.vera, ['inventory', '--env', 'home'])).stdout).toMatch(
      /^1015 +keep01 +qemu +pve2 +stopped$/m,
    );
    expect((await pm(api.url, tokens.vera, ['nodes', '--env', 'home'])).stdout).toMatch(/^pve3 +ok /m);

    const dryRun = await pm(api.url, tokens.otto, [
      'start',
      'vm-action',
      '--env',
      'home',
      '--dry-run',
      '--set',
      'vmid=1016',
      '--set',
      'name=web04',
      '--set',
      'action=reboot',
    ]);
    expect(dryRun).toMatchObject({ code: 0, stderr: '' });
    expect(dryRun.stdout).toMatch(/^Plan v1 · risk medium/);

    const planned = await as('otto').start('vm-action', {
      environment: 'home',
      vmid: 1016,
      name: 'web04',
      action: 'reboot',
      dryRun: true,
    });
    const piped = await pm(api.url, tokens.otto, ['show', planned.id]);
    const terminal = await pm(api.url, tokens.otto, ['show', planned.id], { tty: true });
    expect(piped.stdout).toContain(planned.planText);
    expect(piped.stdout).not.toContain('\x1b[');
    expect(terminal.stdout).toContain('\x1b[33mrisk medium\x1b[0m');
    // eslint-disable-next-line no-control-regex -- ANSI colour codes start with ESC
    expect(terminal.stdout.replace(/\x1b\[\d+m/g, '')).toBe(piped.stdout);
  });

  it('answers with the documented exit codes', async () => {
    const run = (token: string, argv: string[]) => pm(api.url, token, argv).then((r) => r.code);
    expect(await run(tokens.vera, ['frobnicate'])).toBe(2);
    expect(await run('not-a-known-token', ['ops'])).toBe(4);
    expect(
      await run(tokens.vera, [
        'start',
        'vm-action',
        '--env',
        'home',
        '--set',
        'vmid=1015',
        '--set',
        'name=keep01',
        '--set',
        'action=start',
      ]),
    ).toBe(4);
    expect(await run(tokens.otto, ['show', 'vm-action/home/1/start/none'])).toBe(6);
    expect(await run(tokens.otto, ['start', 'vm-action', '--env', 'home', '--set', 'vmid=abc'])).toBe(7);
    expect(await pm('http://127.0.0.1:1', tokens.otto, ['ops']).then((r) => r.code)).toBe(8);
  });

  it('runs as the package bin', async () => {
    const child = spawn(process.execPath, ['cli/pm.mjs', 'ops', '--json', '--limit', '1'], {
      cwd: repoRoot,
      env: { ...process.env, PM_URL: api.url, PM_TOKEN: tokens.vera, PM_CLIENT_CONFIG: '/nonexistent/pm.yaml' },
    });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ operations: [expect.objectContaining({ id: expect.any(String) })] });
  });
});

describe('the MCP server', () => {
  let http: Server;
  let agent: McpClient;
  const call = async (name: string, args: Record<string, unknown>) => {
    const result = (await agent.callTool({ name, arguments: args })) as {
      isError?: boolean;
      content: { text: string }[];
    };
    return {
      isError: result.isError ?? false,
      text: result.content[0]!.text,
      json: () => JSON.parse(result.content[0]!.text),
    };
  };

  beforeAll(async () => {
    const robot = createApiClient({ url: api.url, token: tokens.robot });
    http = await serveMcpHttp(() => createMcpServer(robot, { apiUrl: api.url }), { host: '127.0.0.1', port: 0 });
    agent = new McpClient({ name: 'test-agent', version: '1.0.0' });
    const { port } = http.address() as { port: number };
    await agent.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${port}/mcp`)));
  });
  afterAll(async () => {
    await agent?.close();
    http?.close();
  });

  it('lets an agent plan an evacuation, which runs once a person approves it through the API', async () => {
    const planned = await call('plan_operation', {
      kind: 'evacuation',
      environment: 'home',
      request: { node: 'pve1' },
    });
    expect(planned.isError).toBe(false);
    expect(planned.json().planText).toMatch(/^Plan v1 · risk/);

    const requested = (
      await call('request_operation', { kind: 'evacuation', environment: 'home', request: { node: 'pve1' } })
    ).json();
    expect(requested).toMatchObject({ requester: 'robot', phase: 'awaiting-approval', planVersion: 1 });
    expect(requested.planText).toMatch(/^Plan v1 · risk/);
    expect(requested.approver).toEqual({
      temporalUi: expect.stringContaining(encodeURIComponent(requested.id)),
      apiRoute: `POST ${api.url}/v1/operations/${encodeURIComponent(requested.id)}/approve`,
      body: { planVersion: 1 },
      pm: `pm approve '${requested.id}' --plan-version 1`,
    });
    expect(guest(1001)?.node).toBe('pve1');

    await as('anna').approve(requested.id, requested.planVersion);
    const done = await until(
      () => call('operation_status', { id: requested.id }).then((r) => r.json()),
      (op) => op.state !== 'running',
      'the evacuation to end',
      90_000,
    );
    expect(done).toMatchObject({
      state: 'completed',
      approval: { decision: 'approved', by: 'anna' },
      result: { outcome: 'completed' },
    });
    expect([guest(1001)?.node, guest(1002)?.node]).not.toContain('pve1');
  });

  it('cannot approve or cancel, and even a low-risk request of its own waits for a person', async () => {
    const { tools } = await agent.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'inventory',
        'node_health',
        'storage',
        'operation_status',
        'runbooks',
        'drift',
        'plan_operation',
        'request_operation',
      ]),
    );
    expect(names.filter((n) => /approve|reject|cancel|decide/.test(n))).toEqual([]);
    expect(tools.find((t) => t.name === 'request_operation')?.description).toMatch(/NEEDS A PERSON/);

    const started = (
      await call('request_operation', {
        kind: 'vm-action',
        environment: 'home',
        request: { vmid: 1013, name: 'web03', action: 'start' },
      })
    ).json();
    expect(started).toMatchObject({ risk: 'low', phase: 'awaiting-approval', planVersion: 1 });
    const robot = as('robot');
    await expect(robot.approve(started.id, 1)).rejects.toMatchObject({ status: 403 });
    await expect(robot.cancel(started.id)).rejects.toMatchObject({ status: 403 });
    expect(guest(1013)?.status).toBe('stopped');
    await as('root').cancel(started.id);
  });

  it('serves the same tools over stdio', async () => {
    const stdio = new McpClient({ name: 'stdio-agent', version: '1.0.0' });
    await stdio.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: ['--import', 'tsx', 'mcp/main.ts'],
        cwd: repoRoot,
        env: {
          PATH: process.env.PATH ?? '',
          PM_URL: api.url,
          PM_TOKEN: tokens.robot,
          PM_CLIENT_CONFIG: '/nonexistent/pm.yaml',
        },
      }),
    );
    try {
      const result = (await stdio.callTool({ name: 'list_environments', arguments: {} })) as {
        content: { text: string }[];
      };
      expect(JSON.parse(result.content[0]!.text)).toMatchObject({ environments: [{ name: 'home' }] });
    } finally {
      await stdio.close();
    }
  });
});

describe('Discord chat-ops', () => {
  const interactions = () => `${api.url}/v1/discord/interactions`;
  const post = async (payload: unknown, headers: Record<string, string> = keys.sign(JSON.stringify(payload))) => {
    const response = await fetch(interactions(), { method: 'POST', headers, body: JSON.stringify(payload) });
    return {
      status: response.status,
      body: (await response.json()) as { type: number; data?: { content: string; flags?: number } },
    };
  };
  let seq = 0;
  const slash = (user: keyof typeof discordUsers, name: string, sub: string, options: Record<string, string>) => ({
    type: 2,
    id: `i${++seq}`,
    token: `interaction-token-${seq}`,
    member: { user: { id: discordUsers[user] } },
    data: {
      name,
      options: [{ type: 1, name: sub, options: Object.entries(options).map(([n, value]) => ({ name: n, value })) }],
    },
  });
  const press = (user: keyof typeof discordUsers, customId: string) => ({
    type: 3,
    id: `i${++seq}`,
    token: `interaction-token-${seq}`,
    member: { user: { id: discordUsers[user] } },
    data: { component_type: 2, custom_id: customId },
  });
  const messagesFor = (token: string) =>
    webhook.received.filter((m) => m.path.startsWith(`/api/v10/webhooks/4242/${token}`));
  const awaitMessage = (token: string, match: (m: ReceivedMessage) => boolean, what: string) =>
    until(
      async () => messagesFor(token),
      (ms) => ms.some(match),
      what,
      90_000,
    ).then((ms) => ms.find(match)!);

  it('answers PING, and refuses unsigned, badly signed, stale and replayed requests', async () => {
    const ping = { type: 1, id: 'ping' };
    const body = JSON.stringify(ping);
    expect(await post(ping)).toEqual({ status: 200, body: { type: 1 } });
    expect((await post(ping, { 'content-type': 'application/json' })).status).toBe(401);
    const forged = { ...keys.sign(body), 'x-signature-ed25519': discordKeys().sign(body)['x-signature-ed25519']! };
    expect((await post(ping, forged)).status).toBe(401);
    expect((await post(ping, keys.sign(body, new Date(Date.now() - 6 * 60_000)))).status).toBe(401);
    const once = keys.sign(JSON.stringify({ type: 1, id: 'once' }));
    expect((await post({ type: 1, id: 'once' }, once)).status).toBe(200);
    expect((await post({ type: 1, id: 'once' }, once)).status).toBe(401);
  });

  it('shows a VM, starts one at once, and reboots one after an approver presses Approve', async () => {
    expect((await post(slash('vera', 'vm', 'status', { target: '1015' }))).body.data?.content).toBe(
      '**keep01** (1015) on pve2: stopped',
    );

    const start = slash('otto', 'vm', 'start', { target: 'web01' });
    expect((await post(start)).body).toEqual({ type: 5 });
    const started = await awaitMessage(
      start.token,
      (m) => /completed/.test(m.body.content ?? ''),
      'the start to be reported',
    );
    expect(started).toMatchObject({
      method: 'PATCH',
      path: `/api/v10/webhooks/4242/${start.token}/messages/@original`,
    });
    expect(guest(1011)?.status).toBe('running');

    const reboot = slash('otto', 'vm', 'reboot', { target: '1012' });
    expect((await post(reboot)).body).toEqual({ type: 5 });
    const plan = await awaitMessage(
      reboot.token,
      (m) => (m.body.components?.length ?? 0) > 0,
      'the plan with its buttons',
    );
    expect(plan.body.content).toContain('Plan v1 · risk medium');
    const [approve, reject] = plan.body.components![0]!.components.map((b) => b.custom_id);
    expect(reject).toMatch(/^pm:reject:1:vm-action\/home\/1012\/reboot\//);

    const byViewer = await post(press('vera', approve!));
    expect(byViewer.body).toMatchObject({
      type: 4,
      data: { flags: 64, content: expect.stringMatching(/^refused: vera \(viewer\) may not decide/) },
    });
    expect((await post(press('anna', approve!))).body).toMatchObject({
      type: 7,
      data: { content: expect.stringMatching(/approved by anna \(plan v1\)$/), components: [] },
    });
    const done = await awaitMessage(reboot.token, (m) => m.method === 'POST', 'the reboot outcome as a follow-up');
    expect(done.body.content).toMatch(/· completed \(approved\)/);
  });

  it('tells a Discord user without a mapped actor so, and does nothing', async () => {
    const stranger = { ...slash('otto', 'vm', 'start', { target: 'web03' }), member: { user: { id: '1234' } } };
    expect((await post(stranger)).body).toMatchObject({
      type: 4,
      data: { flags: 64, content: expect.stringMatching(/not mapped/) },
    });
    expect(guest(1013)?.status).toBe('stopped');
  });
});

describe('an approval the API refuses', () => {
  it('is refused by every door: the API, pm, Discord buttons, and the MCP server (which cannot even ask)', async () => {
    const op = await deletionAwaitingApproval(1015, 'keep01');
    const selfApproval = 'a high-risk operation cannot be approved by the actor who requested it';

    await expect(as('root').approve(op.id, 1)).rejects.toMatchObject({ status: 409, message: selfApproval });
    await expect(as('vera').approve(op.id, 1)).rejects.toMatchObject({ status: 403 });

    const pmSelf = await pm(api.url, tokens.root, ['approve', op.id, '--plan-version', '1', '--yes']);
    expect(pmSelf).toMatchObject({ code: 5, stderr: `pm: ${selfApproval}\n` });
    const pmViewer = await pm(api.url, tokens.vera, ['approve', op.id, '--plan-version', '1', '--yes']);
    expect(pmViewer.code).toBe(4);

    const button = `pm:approve:1:${op.id}`;
    const post = (user: keyof typeof discordUsers) => {
      const payload = JSON.stringify({
        type: 3,
        id: `r-${user}`,
        token: `t-${user}`,
        member: { user: { id: discordUsers[user] } },
        data: { custom_id: button },
      });
      return fetch(`${api.url}/v1/discord/interactions`, {
        method: 'POST',
        headers: keys.sign(payload),
        body: payload,
      }).then((r) => r.json());
    };
    expect(await post('root')).toMatchObject({ type: 4, data: { flags: 64, content: `refused: ${selfApproval}` } });
    expect(await post('vera')).toMatchObject({
      type: 4,
      data: { flags: 64, content: expect.stringMatching(/^refused: vera \(viewer\) may not decide/) },
    });

    // The MCP server has no approve tool; its own identity is refused by the API all the same.
    await expect(as('robot').approve(op.id, 1)).rejects.toMatchObject({ status: 403 });

    const after = await as('vera').operation(op.id);
    expect(after).toMatchObject({ state: 'running', status: { phase: 'awaiting-approval' } });
    expect(after.status?.approval).toBeUndefined();
    expect(guest(1015)).toBeDefined();
    await as('root').cancel(op.id);
    await ended(op.id);
  });
});
