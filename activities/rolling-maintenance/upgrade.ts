/**
 * The upgrade over SSH, its output appended to the node's log — exactly once: an attempt
 * whose predecessor had sent the command (its worker was lost) asks apt what is left instead.
 */
import { Context } from '@temporalio/activity';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import {
  parseAptOutput,
  PENDING_UPGRADES_CHECK,
  pveVersionOf,
  REBOOT_REQUIRED_CHECK,
  rebootReasons,
  type AptSummary,
} from '../../lib/maintenance/upgrade.js';
import { openSession, runCommand, type SshSession } from '../../lib/ssh/client.js';
import type { UpgradeOutcome } from '../../lib/maintenance/node-outcomes.js';
import { nodeAccess, type RollingMaintenanceDeps } from './common.js';
import { classified, fail } from '../failures.js';
import { Failure } from '../../lib/operations/failures.js';

const TAIL_LINES = 40;
const HEARTBEAT_MS = 2_000;
/** Connecting and authenticating, before the first command. */
const CONNECT_TIMEOUT_MS = 60_000;

export function createUpgradeActivities(deps: RollingMaintenanceDeps) {
  const logDir = deps.logDir ?? join(dirname(resolve(deps.config.audit.path)), 'maintenance');
  const { sshTo } = nodeAccess(deps);

  async function openLog(logKey: string, node: string): Promise<{ path: string; stream: WriteStream }> {
    const path = join(logDir, ...safeSegments(logKey), `${node}.log`);
    await mkdir(dirname(path), { recursive: true });
    return { path, stream: createWriteStream(path, { flags: 'a', mode: 0o640 }) };
  }

  return {
    /**
     * Runs the upgrade command over SSH, its output appended to the node's log file, and
     * reports what apt upgraded and whether the node must reboot. Exactly once: when an
     * earlier attempt had sent the command (its worker was lost), this one asks apt what is
     * left to upgrade instead, and fails for the operator unless nothing is.
     */
    async upgradeNode(input: {
      environment: string;
      node: string;
      command: string;
      timeoutMs: number;
      logKey: string;
    }): Promise<UpgradeOutcome> {
      const { node } = input;
      const ctx = Context.current();
      const earlier = ctx.info.heartbeatDetails as UpgradeHeartbeat | undefined;
      const target = await sshTo(input.environment, node);
      const log = await openLog(input.logKey, node);
      const note = (text: string) =>
        log.stream.write(`\n# ${new Date().toISOString()} ${node} (attempt ${ctx.info.attempt}): ${text}\n`);
      // Its commands share one connection, opened by the first: one handshake, not four.
      let session: Promise<SshSession> | undefined;
      const run = (command: string, name: string, timeoutMs: number, onOutput?: (chunk: string) => void) =>
        classified('write', async () =>
          (await (session ??= openSession(target, CONNECT_TIMEOUT_MS))).run(command, {
            timeoutMs,
            label: name,
            allowNonZeroExit: true,
            ...(onOutput ? { onOutput } : {}),
          }),
        );
      try {
        const versionBefore =
          earlier?.versionBefore ?? pveVersionOf((await run('pveversion', 'pveversion', 60_000)).stdout);
        let summary: AptSummary;
        let tail: string[];
        if (earlier?.sent) {
          note(`the worker running the upgrade was lost; asking apt what is left (${PENDING_UPGRADES_CHECK})`);
          const check = await run(PENDING_UPGRADES_CHECK, 'apt-get -s dist-upgrade', 120_000, (chunk) =>
            log.stream.write(chunk),
          );
          const pending = parseAptOutput(check.stdout);
          if (pending.changed !== 0) {
            const names = [...pending.upgraded, ...pending.installed];
            fail(
              Failure.UpgradeInterrupted,
              `the upgrade on ${node} was interrupted (the worker running it was lost) and ` +
                `${pending.changed === undefined ? 'apt cannot say what is left' : `${pending.changed} package(s) are still to upgrade${names.length ? ` (${names.slice(0, 8).join(', ')}${names.length > 8 ? ', ...' : ''})` : ''}`}; ` +
                `check the node (dpkg --audit), then resume to run the upgrade again, or skip the node`,
              { logFile: log.path },
            );
          }
          summary = { upgraded: earlier.upgraded ?? [], installed: earlier.installed ?? [] };
          tail = earlier.tail ?? [];
        } else {
          note(`$ ${input.command}`);
          const output = tailOf(TAIL_LINES);
          let stdout = '';
          const state: UpgradeHeartbeat = { sent: true, ...(versionBefore ? { versionBefore } : {}) };
          ctx.heartbeat(state);
          const beat = setInterval(() => ctx.heartbeat({ ...state, tail: output.lines() }), HEARTBEAT_MS);
          let result;
          try {
            result = await run(input.command, 'upgrade', input.timeoutMs, (chunk) => {
              log.stream.write(chunk);
              output.push(chunk);
              stdout += chunk;
              if (!state.upgraded && /^\d+ upgraded, /m.test(stdout)) {
                const planned = parseAptOutput(stdout);
                Object.assign(state, { upgraded: planned.upgraded, installed: planned.installed });
                ctx.heartbeat(state);
              }
            });
          } finally {
            clearInterval(beat);
          }
          tail = output.lines();
          if (result.exitCode !== 0) {
            fail(
              Failure.UpgradeFailed,
              `the upgrade on ${node} exited ${result.exitCode}: ${tail.at(-1) ?? 'no output'}`,
              { logFile: log.path, tail },
            );
          }
          summary = parseAptOutput(result.stdout);
        }
        const check = await run(REBOOT_REQUIRED_CHECK, 'reboot-required check', 60_000);
        const reasons = rebootReasons(summary, check.stdout);
        if (earlier?.sent && !earlier.upgraded)
          reasons.push("the upgrade's package list was lost with its worker, so a reboot is assumed needed");
        const versionAfter = pveVersionOf((await run('pveversion', 'pveversion', 60_000)).stdout);
        note(
          `upgraded ${summary.upgraded.length}, installed ${summary.installed.length}; ` +
            `${reasons.length ? `reboot required: ${reasons.join('; ')}` : 'no reboot required'}; version ${versionBefore ?? '?'} -> ${versionAfter ?? '?'}`,
        );
        return {
          upgraded: summary.upgraded,
          installed: summary.installed,
          rebootReasons: reasons,
          ...(versionBefore ? { versionBefore } : {}),
          ...(versionAfter ? { versionAfter } : {}),
          logFile: log.path,
          tail,
          resumed: Boolean(earlier?.sent),
        };
      } finally {
        await session?.then(
          (s) => s.close(),
          () => undefined,
        );
        await new Promise<void>((done) => log.stream.end(done));
      }
    },

    /** Whether a node asks for a reboot by itself (when nothing was upgraded here). */
    async checkRebootRequired(input: { environment: string; node: string }): Promise<string[]> {
      const target = await sshTo(input.environment, input.node);
      const check = await classified('read', () =>
        runCommand(target, REBOOT_REQUIRED_CHECK, { timeoutMs: 60_000, label: 'reboot-required check' }),
      );
      return rebootReasons({ upgraded: [], installed: [] }, check.stdout);
    },
  };
}

/** `rolling-maintenance/home/<run>` -> `rolling-maintenance_home/<run>`-like path segments, nothing outside the log dir. */
function safeSegments(key: string): string[] {
  return key
    .split('/')
    .map((s) => s.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+$/, '_'))
    .filter(Boolean);
}

/** The last lines of a stream of output chunks. */
function tailOf(lines: number) {
  const kept: string[] = [];
  let partial = '';
  return {
    push(chunk: string) {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      kept.push(...parts);
      kept.splice(0, Math.max(0, kept.length - lines));
    },
    lines: () => (partial ? [...kept, partial] : [...kept]).slice(-lines),
  };
}

/** What an upgrade attempt leaves for the next one, should its worker be lost. */
interface UpgradeHeartbeat {
  /** The command was sent: never send it again. */
  sent: boolean;
  versionBefore?: string;
  upgraded?: string[];
  installed?: string[];
  tail?: string[];
}
