/**
 * The pieces the doors are built from, on their own: the plan text every door shows, where
 * `pm` finds its token, the progress line, the Discord signature check, and the migration
 * bytes the API reads from a running operation's heartbeats.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import type { WorkflowExecutionDescription } from '@temporalio/client';
import { describe, expect, it } from 'vitest';
import { createVerifier } from '../../api/discord/signature.js';
import { runningTransfers } from '../../api/temporal-operations.js';
import { progressLine } from '../../cli/render.js';
import { loadSettings } from '../../cli/settings.js';
import type { OperationDetail } from '../../lib/api-client.js';
import { renderPlanText } from '../../lib/operations/plan-text.js';
import { discordKeys } from '../support/doors.js';

describe('plan text', () => {
  it('states risk, reasons, each step with its target and parameters, and warnings', () => {
    const text = renderPlanText({
      version: 2,
      summary: 'evacuate pve1: 2 guests',
      risk: 'high',
      reasons: ['a migration moves guests to another node'],
      steps: [
        {
          id: 'm1',
          action: 'migrate',
          vmid: 101,
          node: 'pve1',
          target: 'pve2',
          description: 'migrate VM 101 (web)',
          params: { online: 1 },
        },
        { id: 'm2', action: 'migrate', vmid: 102, description: 'migrate CT 102 (dns)' },
      ],
      warnings: ['VM 104 stays: it has a PCI device'],
      nodes: ['pve1', 'pve2'],
      vmids: [101, 102],
      estimatedDurationMs: 300_000,
    });
    expect(text).toBe(
      [
        'Plan v2 · risk high · about 5 min',
        'evacuate pve1: 2 guests',
        '',
        'Why this risk:',
        '  - a migration moves guests to another node',
        '',
        'Steps:',
        '  1. migrate VM 101 (web) [pve1 -> pve2]',
        '     online=1',
        '  2. migrate CT 102 (dns)',
        '',
        'Warnings:',
        '  ! VM 104 stays: it has a PCI device',
      ].join('\n'),
    );
  });
});

describe('pm settings', () => {
  const file = (text: string, mode: number) => {
    const path = join(mkdtempSync(join(tmpdir(), 'pm-settings-')), 'config.yaml');
    writeFileSync(path, text);
    chmodSync(path, mode);
    return path;
  };

  it('refuses a config file others can read', () => {
    const path = file('url: http://127.0.0.1:8080\ntoken: secret\n', 0o644);
    expect(() => loadSettings({ PM_CLIENT_CONFIG: path })).toThrow(
      `${path} holds a token and is readable by others (mode 644): run chmod 600 ${path}`,
    );
  });

  it('reads a 0600 file, and the environment wins key by key', () => {
    const path = file('url: http://127.0.0.1:8080\ntoken: from-file\nenvironment: home\n', 0o600);
    expect(loadSettings({ PM_CLIENT_CONFIG: path })).toEqual({
      url: 'http://127.0.0.1:8080',
      token: 'from-file',
      environment: 'home',
    });
    expect(loadSettings({ PM_CLIENT_CONFIG: path, PM_TOKEN: 'from-env' })).toMatchObject({ token: 'from-env' });
  });

  it('names the file and the variables when neither gives a token', () => {
    expect(() => loadSettings({ PM_CLIENT_CONFIG: '/nonexistent/pm.yaml' })).toThrow(
      'set PM_URL and PM_TOKEN, or url and token in /nonexistent/pm.yaml (mode 0600)',
    );
  });

  it('names the field of a file that is not a pm config', () => {
    const path = file('url: not a url\ntoken: t\n', 0o600);
    expect(() => loadSettings({ PM_CLIENT_CONFIG: path })).toThrow(/url: /);
  });
});

describe('progress line', () => {
  it('counts finished steps against the plan and shows the bytes of running migrations', () => {
    const op = {
      state: 'running',
      status: {
        phase: 'applying',
        approvalState: 'approved',
        plan: { version: 1, risk: 'high', summary: '', stepCount: 4 },
        progress: { pending: 0, running: 1, succeeded: 1, failed: 0, skipped: 0 },
      },
      transfers: [{ vmid: 101, transferred: '1.5 GiB', of: '4 GiB' }],
    } as OperationDetail;
    expect(progressLine(op, 8)).toBe('[##------] 1/4 steps · applying · 101 1.5 GiB of 4 GiB');
  });
});

describe('Discord signature check', () => {
  const keys = discordKeys();
  const now = new Date('2026-12-06T08:00:00Z');
  const check = (headers: Record<string, string>, body: string, at = now) =>
    createVerifier(keys.publicKeyHex, 5 * 60_000, () => at)(
      headers['x-signature-ed25519'],
      headers['x-signature-timestamp'],
      body,
    );

  it('takes a fresh request signed with the application key', () => {
    expect(check(keys.sign('{"type":1}', now), '{"type":1}')).toEqual({ ok: true });
  });

  it('refuses missing, malformed, forged and tampered signatures', () => {
    expect(check({}, '{}')).toEqual({ ok: false, why: 'missing X-Signature-Ed25519 or X-Signature-Timestamp' });
    expect(check({ 'x-signature-ed25519': 'zz', 'x-signature-timestamp': '1' }, '{}')).toEqual({
      ok: false,
      why: 'malformed signature headers',
    });
    expect(check(discordKeys().sign('{}', now), '{}')).toEqual({ ok: false, why: 'bad signature' });
    expect(check(keys.sign('{"type":1}', now), '{"type":2}')).toEqual({ ok: false, why: 'bad signature' });
  });

  it('refuses a request signed more than max_age ago, and one seen before', () => {
    expect(check(keys.sign('{}', new Date(now.getTime() - 5 * 60_000 - 1_000)), '{}')).toEqual({
      ok: false,
      why: 'stale timestamp',
    });
    const verify = createVerifier(keys.publicKeyHex, 5 * 60_000, () => now);
    const headers = keys.sign('{}', now);
    expect(verify(headers['x-signature-ed25519'], headers['x-signature-timestamp'], '{}')).toEqual({ ok: true });
    expect(verify(headers['x-signature-ed25519'], headers['x-signature-timestamp'], '{}')).toEqual({
      ok: false,
      why: 'replayed',
    });
  });
});

describe('migration bytes of a running operation', () => {
  const describeWith = (...beats: unknown[]) =>
    ({
      raw: {
        pendingActivities: beats.map((beat) => ({
          heartbeatDetails: { payloads: [defaultPayloadConverter.toPayload(beat)] },
        })),
      },
    }) as unknown as WorkflowExecutionDescription;

  it("reads PVE's transferred line and the VMID from the heartbeat, and nothing else", () => {
    const description = describeWith(
      {
        upid: 'UPID:pve1:0000A1B2:00C0FFEE:6752A1B0:qmigrate:101:automation@pve!pm:',
        log: 'migration active, transferred 1.5 GiB of 4 GiB VM-state, 120 MiB/s',
      },
      { read: '3/8 guests' },
      { upid: 'UPID:pve1:1:2:3:qmigrate:102:root@pam:', log: 'starting migration of VM 102' },
    );
    expect(runningTransfers(description)).toEqual([{ vmid: 101, transferred: '1.5 GiB', of: '4 GiB' }]);
  });
});
