/**
 * What the door tests share: the API over real HTTP against the real Temporal dev server,
 * a worker running the real workflows, and the simulated cluster — plus `pm` run in-process
 * with captured output, signed Discord requests and a local receiver standing in for
 * Discord's webhook.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { inject } from 'vitest';
import { createApp } from '../../api/app.js';
import { createReadOnlyProxmox } from '../../api/proxmox.js';
import { runPm, type PmIo } from '../../cli/pm.js';
import { createAuditLog } from '../../lib/audit/log.js';
import type { AppConfig } from '../../lib/config/schema.js';
import { testConnection } from './temporal.js';

/** The API over HTTP on a free loopback port; returns its base URL. */
export async function startApiServer(
  config: AppConfig,
  taskQueue: string,
): Promise<{ url: string; server: ServerType }> {
  const app = createApp({
    config,
    temporal: {
      client: await testConnection(),
      taskQueue,
      uiUrl: 'http://127.0.0.1:8233',
      namespace: inject('temporalNamespace'),
    },
    audit: createAuditLog(config.audit.path),
    proxmox: createReadOnlyProxmox(config),
    log: () => {},
  });
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }, () => resolve(s));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

export interface PmRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `pm` in-process as the holder of `token`; `answers` are typed at its prompts. */
export async function pm(
  url: string,
  token: string,
  argv: string[],
  options: { answers?: string[]; tty?: boolean } = {},
): Promise<PmRun> {
  let stdout = '';
  let stderr = '';
  const answers = [...(options.answers ?? [])];
  const io: PmIo = {
    env: { PM_URL: url, PM_TOKEN: token, PM_CLIENT_CONFIG: '/nonexistent/pm.yaml' },
    stdout: { write: (t) => void (stdout += t), isTTY: options.tty ?? false },
    stderr: { write: (t) => void (stderr += t), isTTY: false },
    prompt: async (question) => {
      stderr += question;
      const answer = answers.shift();
      if (answer === undefined) throw new Error(`pm asked '${question}' and the test had no answer`);
      return answer;
    },
    sleep: (ms) => new Promise((r) => setTimeout(r, Math.min(ms, 200))),
  };
  const code = await runPm(argv, io);
  return { code, stdout, stderr };
}

/** An Ed25519 key pair standing in for a Discord application's. */
export function discordKeys() {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const publicKeyHex = publicKey.export({ format: 'der', type: 'spki' }).subarray(12).toString('hex');
  return {
    publicKeyHex,
    /** Headers Discord would send with `body`, signed at `at` (default now). */
    sign(body: string, at = new Date()): Record<string, string> {
      const timestamp = String(Math.floor(at.getTime() / 1000));
      return {
        'content-type': 'application/json',
        'x-signature-timestamp': timestamp,
        'x-signature-ed25519': sign(null, Buffer.from(timestamp + body), privateKey).toString('hex'),
      };
    },
  };
}

export interface ReceivedMessage {
  method: string;
  path: string;
  body: { content?: string; components?: { components: { custom_id: string }[] }[] };
}

/** A local HTTP server in the place of Discord's webhook API: records every follow-up. */
export async function startWebhookReceiver(): Promise<{ url: string; received: ReceivedMessage[]; server: Server }> {
  const received: ReceivedMessage[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push({ method: req.method ?? '', path: req.url ?? '', body: JSON.parse(body || '{}') });
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v10`, received, server };
}
