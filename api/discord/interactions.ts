/**
 * Discord chat-ops: the HTTP endpoint of a Discord application's interactions (no gateway).
 *
 *   /vm status|start|shutdown|reboot target:<name or VMID>     /op status id:<operation id>
 *   [Approve] [Reject] buttons on a plan awaiting a decision
 *
 * Every request is signature-checked first (signature.ts). Each Discord user acts with the
 * API token configured for them, through the API's own routes (in-process, the same guard,
 * roles, approvals and audit as any HTTP caller): this door decides nothing itself.
 * Operations answer at once with a deferred response; a follower posts the plan (with
 * buttons) when it awaits a decision and the outcome when it ends, to Discord's webhook.
 */
import { Hono } from 'hono';
import { z } from 'zod';
import {
  ApiRequestError,
  createApiClient,
  hasEnded,
  type ApiClient,
  type OperationDetail,
} from '../../lib/api-client.js';
import { durationMs } from '../../lib/config/duration.js';
import type { DiscordConfig } from '../../lib/config/schema.js';
import { resolveSecret } from '../../lib/config/secrets.js';
import { redact } from '../errors.js';
import { createVerifier } from './signature.js';

export interface DiscordDeps {
  config: DiscordConfig;
  /** The API app's own fetch: requests go through its routes and guard. */
  apiFetch: (request: Request) => Promise<Response>;
  now: () => Date;
  log: (line: string) => void;
  /** How often a follower reads its operation. */
  pollMs?: number;
}

/** Discord's interaction and response types. */
const PING = 1;
const COMMAND = 2;
const COMPONENT = 3;
const reply = {
  pong: { type: 1 },
  message: (content: string, extra: Record<string, unknown> = {}) => ({
    type: 4,
    data: { content: clip(content), allowed_mentions: { parse: [] }, ...extra },
  }),
  /** Only the person who clicked sees it. */
  private: (content: string) => ({
    type: 4,
    data: { content: clip(content), flags: 64, allowed_mentions: { parse: [] } },
  }),
  deferred: { type: 5 },
  update: (content: string) => ({ type: 7, data: { content: clip(content), components: [] } }),
};

/** Interaction tokens are valid for 15 minutes; a follower stops a little before. */
const followForMs = 14 * 60_000;

const Option = z.looseObject({
  name: z.string(),
  value: z.unknown().optional(),
  options: z.array(z.looseObject({ name: z.string(), value: z.unknown() })).optional(),
});
const Interaction = z.looseObject({
  type: z.number().int(),
  token: z.string().optional(),
  member: z.looseObject({ user: z.looseObject({ id: z.string() }) }).optional(),
  user: z.looseObject({ id: z.string() }).optional(),
  data: z
    .looseObject({ name: z.string().optional(), options: z.array(Option).optional(), custom_id: z.string().optional() })
    .optional(),
});
type Interaction = z.infer<typeof Interaction>;

/** custom_id of a decision button: `pm:approve:<planVersion>:<operation id>`. */
const buttonId = /^pm:(approve|reject):(\d+):(.+)$/;

export function discordRoutes(deps: DiscordDeps): Hono {
  const { config } = deps;
  const verifySignature = createVerifier(config.public_key, durationMs(config.max_age), deps.now);
  const pollMs = deps.pollMs ?? 2_000;
  const app = new Hono();

  app.post('/interactions', async (c) => {
    const body = await c.req.text();
    const verdict = verifySignature(c.req.header('x-signature-ed25519'), c.req.header('x-signature-timestamp'), body);
    if (!verdict.ok) return c.json({ error: { code: 'invalid_signature', message: verdict.why } }, 401);
    let parsed;
    try {
      parsed = Interaction.safeParse(JSON.parse(body));
    } catch {
      parsed = undefined;
    }
    if (!parsed?.success) return c.json({ error: { code: 'invalid_body', message: 'not a Discord interaction' } }, 400);
    const interaction = parsed.data;
    if (interaction.type === PING) return c.json(reply.pong);
    const api = await clientFor(interaction);
    if (!api)
      return c.json(
        reply.private('Your Discord account is not mapped to a proxmox-manager actor; ask an administrator.'),
      );
    if (interaction.type === COMMAND) return c.json(await command(api, interaction));
    if (interaction.type === COMPONENT) return c.json(await button(api, interaction));
    return c.json({ error: { code: 'unsupported', message: `interaction type ${interaction.type}` } }, 400);
  });

  /** The API as the Discord user's actor, or undefined when they are not configured. */
  async function clientFor(interaction: Interaction): Promise<ApiClient | undefined> {
    const userId = interaction.member?.user.id ?? interaction.user?.id;
    const user = userId !== undefined && Object.hasOwn(config.users, userId) ? config.users[userId] : undefined;
    if (!user) return undefined;
    return createApiClient({
      url: 'http://api.internal',
      token: await resolveSecret(user.token),
      fetch: deps.apiFetch,
    });
  }

  async function command(api: ApiClient, interaction: Interaction) {
    const sub = interaction.data?.options?.[0];
    const arg = (name: string) => sub?.options?.find((o) => o.name === name)?.value;
    const route = `${interaction.data?.name} ${sub?.name}`;
    try {
      if (route === 'op status')
        return reply.message(describe(await api.operation(String(arg('id')), { includePlan: true })));
      if (route === 'vm status') {
        const vm = await findVm(api, String(arg('target')));
        return reply.message(`**${vm.name}** (${vm.vmid}) on ${vm.node}: ${vm.status}`);
      }
      const action = /^vm (start|shutdown|reboot)$/.exec(route)?.[1];
      if (!action || !interaction.token) return reply.private(`unknown command '${route}'`);
      const token = interaction.token;
      void runAction(api, token, action, String(arg('target'))).catch((err: Error) =>
        deps.log(`[discord] follow-up of /vm ${action} failed: ${redact(err.message)}`),
      );
      return reply.deferred;
    } catch (err) {
      return reply.private(refusal(err));
    }
  }

  async function button(api: ApiClient, interaction: Interaction) {
    const match = buttonId.exec(interaction.data?.custom_id ?? '');
    if (!match) return reply.private('unknown button');
    const [, decision, version, id] = match as unknown as [string, 'approve' | 'reject', string, string];
    try {
      const answer =
        decision === 'approve'
          ? await api.approve(id, Number(version))
          : await api.reject(id, Number(version), 'rejected in Discord');
      const d = answer.decision;
      return reply.update(
        d ? `${id}: ${d.decision} by ${d.by} (plan v${d.planVersion})` : `${id}: ${answer.message ?? answer.state}`,
      );
    } catch (err) {
      return reply.private(refusal(err));
    }
  }

  async function runAction(api: ApiClient, token: string, action: string, target: string): Promise<void> {
    const webhook = `${config.api_base.replace(/\/+$/, '')}/webhooks/${config.application_id}/${token}`;
    const send = (method: 'PATCH' | 'POST', path: string, message: Record<string, unknown>) =>
      fetch(`${webhook}${path}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ allowed_mentions: { parse: [] }, ...message }),
      });
    let id: string;
    try {
      const vm = await findVm(api, target);
      id = (await api.start('vm-action', { environment: config.environment, vmid: vm.vmid, name: vm.name, action })).id;
    } catch (err) {
      await send('PATCH', '/messages/@original', { content: refusal(err) });
      return;
    }
    const deadline = deps.now().getTime() + followForMs;
    let announced = false;
    for (;;) {
      const op = await api.operation(id);
      if (hasEnded(op)) {
        await send(announced ? 'POST' : 'PATCH', announced ? '' : '/messages/@original', {
          content: clip(describe(op)),
        });
        return;
      }
      const version = op.status?.plan?.version;
      if (!announced && op.status?.phase === 'awaiting-approval' && version) {
        const withPlan = await api.operation(id, { includePlan: true });
        await send('PATCH', '/messages/@original', {
          content: clip(describe(withPlan)),
          components: decisionButtons(id, version),
        });
        announced = true;
      }
      if (deps.now().getTime() > deadline) {
        await send('POST', '', {
          content: `${id} is still running; follow it with /op status or ${op.links.temporalUi}`,
        });
        return;
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  async function findVm(api: ApiClient, target: string) {
    const { guests } = (await api.inventory({ environment: config.environment, type: 'qemu' })) as {
      guests: { vmid: number; name: string; node: string; status: string }[];
    };
    const vm = guests.find((g) => (/^\d+$/.test(target) ? g.vmid === Number(target) : g.name === target));
    if (!vm) throw new ApiRequestError(404, 'not_found', `no VM '${target}' in ${config.environment}`);
    return vm;
  }

  return app;
}

function decisionButtons(id: string, version: number) {
  const button = (decision: 'approve' | 'reject', style: number) => ({
    type: 2,
    style,
    label: `${decision === 'approve' ? 'Approve' : 'Reject'} plan v${version}`,
    custom_id: `pm:${decision}:${version}:${id}`,
  });
  return [{ type: 1, components: [button('approve', 3), button('reject', 4)] }];
}

function describe(op: OperationDetail): string {
  const approval = op.status?.approval;
  return [
    `**${op.id}** · ${op.state}${op.approvalState ? ` (${op.approvalState})` : ''} · requested by ${op.requester ?? '?'}`,
    ...(approval ? [`${approval.decision} by ${approval.by} (plan v${approval.planVersion})`] : []),
    ...(op.failure ? [`failed: ${op.failure.message}`] : []),
    ...(op.planText ? ['```', op.planText, '```'] : []),
    op.links.temporalUi,
  ].join('\n');
}

function refusal(err: unknown): string {
  if (err instanceof ApiRequestError) return `refused: ${err.message}`;
  throw err;
}

/** Discord's message limit is 2000 characters. */
function clip(text: string): string {
  return text.length <= 1990 ? text : `${text.slice(0, 1985)}\n…`;
}
