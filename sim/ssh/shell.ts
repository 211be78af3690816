/**
 * The few shell commands automation runs on PVE nodes over SSH, acting on the same state as
 * the API: `qm importdisk` / `qm disk import`, `qm set`, `qm template`, `qm status|config|list`,
 * `wget -O` / `curl -o` into node storage, `sha256sum`, `rm`, `pveversion`, `apt-get update`,
 * `apt-get -y dist-upgrade`, `reboot`, `hostname`, `echo`, `true`, `false`, `xz -d` / `unxz`.
 * Commands may be joined with `&&`, `||` and `;`, wrapped in `sh -c '...'` and prefixed with
 * `VAR=value`. Anything else exits 127 with `command not found`, as bash would.
 */
import { createHash } from 'node:crypto';
import { decodeFormParams } from '../../lib/pve/endpoint.js';
import { endpoints } from '../../lib/pve/registry.js';
import { ROOT, type Cluster } from '../cluster.js';
import { remoteFile } from '../downloads.js';
import { PveError } from '../errors.js';
import { guestSystemsOf } from '../guest-ssh.js';
import { formatDrive, nextFreeKey } from '../guest-config.js';
import { checkLock, lockGuestFile } from '../ops/common.js';
import { convertToTemplate, MASKED_SECRET, SECRET_KEYS, updateConfig } from '../ops/config.js';
import { markRunning, markStopped } from '../ops/power.js';
import { httpReason } from '../ops/storage.js';
import { pveversionString } from '../ops/views.js';
import type { ContentType } from '../scenario.js';
import type { StoragePool } from '../state.js';
import { formatDiskSize, GiB, renderBytes } from '../units.js';

export interface ShellIo {
  stdout(text: string): void;
  stderr(text: string): void;
}

/** Splits a command line into words, honouring quotes and backslashes; operators are their own words. */
export function tokenize(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      word += line.slice(i + 1, end < 0 ? undefined : end);
      i = end < 0 ? line.length : end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      while (j < line.length && line[j] !== '"') {
        if (line[j] === '\\' && j + 1 < line.length) j++;
        word += line[j];
        j++;
      }
      i = j;
      inWord = true;
    } else if (c === '\\' && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else if ((c === '&' && line[i + 1] === '&') || (c === '|' && line[i + 1] === '|')) {
      if (inWord) words.push(word);
      words.push(c + c);
      word = '';
      inWord = false;
      i++;
    } else if (c === ';' || c === '|') {
      if (inWord) words.push(word);
      words.push(c);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

class ExitError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** What `qm` prints when it dies. */
function qmError(err: unknown): ExitError {
  if (err instanceof ExitError) return err;
  if (err instanceof PveError && err.errors) {
    const lines = Object.entries(err.errors).map(([k, v]) => `${k}: ${v}`);
    return new ExitError(255, `${err.status} ${err.message}\n${lines.join('\n')}`);
  }
  return new ExitError(255, err instanceof Error ? err.message : String(err));
}

/** `--key value`, `-key value` and `--key=value`, in order; bare flags get `1`. */
function parseOptions(args: string[]): { positional: string[]; options: [string, string][] } {
  const positional: string[] = [];
  const options: [string, string][] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^--?([a-zA-Z][\w-]*)(?:=(.*))?$/.exec(a);
    if (!m) {
      positional.push(a);
      continue;
    }
    if (m[2] !== undefined) options.push([m[1]!, m[2]]);
    else if (i + 1 < args.length && !/^--?[a-zA-Z]/.test(args[i + 1]!)) options.push([m[1]!, args[++i]!]);
    else options.push([m[1]!, '1']);
  }
  return { positional, options };
}

const DIR_CONTENT: [string, ContentType][] = [
  ['template/iso', 'iso'],
  ['template/cache', 'vztmpl'],
  ['import', 'import'],
  ['snippets', 'snippets'],
  ['dump', 'backup'],
];

interface NodeFile {
  size: number;
  sha256: string;
}

export class Shell {
  constructor(
    private readonly cluster: Cluster,
    private readonly node: string,
  ) {}

  /** Runs a command line; resolves with the exit status. */
  async run(line: string, io: ShellIo): Promise<number> {
    const words = tokenize(line);
    let status = 0;
    let skip = false;
    let command: string[] = [];
    const flush = async () => {
      if (command.length && !skip) status = await this.#exec(command, io);
      command = [];
    };
    for (const w of words) {
      if (w === '&&' || w === '||' || w === ';') {
        await flush();
        skip = (w === '&&' && status !== 0) || (w === '||' && status === 0);
      } else if (w === '|') {
        io.stderr('sim: pipelines are not supported\n');
        return 2;
      } else command.push(w);
    }
    await flush();
    return status;
  }

  async #exec(words: string[], io: ShellIo): Promise<number> {
    const args = words.filter((w) => !/^(\d?>>?|&>)(\/dev\/null|&\d)?$/.test(w) && w !== '/dev/null');
    while (args.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(args[0]!)) args.shift();
    const [program = '', ...rest] = args;
    const name = program.split('/').pop()!;
    this.cluster.counters.recordSsh(this.node, name);
    try {
      switch (name) {
        case 'sh':
        case 'bash':
          if (rest[0] === '-c' && rest[1] !== undefined) return await this.run(rest[1], io);
          break;
        case 'true':
          return 0;
        case 'false':
          return 1;
        case 'echo':
          io.stdout(`${rest.join(' ')}\n`);
          return 0;
        case 'hostname':
          io.stdout(`${this.node}\n`);
          return 0;
        case 'mkdir':
          return 0;
        case 'pveversion':
          return this.#pveversion(rest, io);
        case 'qm':
          return await this.#qm(rest, io);
        case 'pct':
          return await guestSystemsOf(this.cluster).pct(this.node, rest, io);
        case 'wget':
        case 'curl':
          return await this.#fetch(name, rest, io);
        case 'sha256sum':
          return this.#sha256sum(rest, io);
        case 'rm':
          return this.#rm(rest, io);
        case 'xz':
        case 'unxz':
          return this.#unxz(name, rest, io);
        case 'apt-get':
        case 'apt':
          return await this.#apt(rest, io);
        case 'reboot':
          return this.#reboot();
        case 'systemctl':
          if (rest[0] === 'reboot') return this.#reboot();
          break;
        case 'shutdown':
          if (rest.includes('-r')) return this.#reboot();
          break;
      }
    } catch (err) {
      const e = err instanceof ExitError ? err : qmError(err);
      io.stderr(`${e.message}\n`);
      return e.code;
    }
    io.stderr(`bash: ${program}: command not found\n`);
    return 127;
  }

  #pveversion(args: string[], io: ShellIo): number {
    const node = this.cluster.state.node(this.node);
    if (args.includes('-v') || args.includes('--verbose')) {
      io.stdout(
        [
          `proxmox-ve: ${node.pveversion.split('.').slice(0, 2).join('.')}.0 (running kernel: ${node.kernel})`,
          `pve-manager: ${node.pveversion} (running version: ${pveversionString(node).split('/').slice(1).join('/')})`,
          `proxmox-kernel-helper: 9.0.4`,
          `qemu-server: 9.0.23`,
          `pve-container: 6.0.13`,
          '',
        ].join('\n'),
      );
      return 0;
    }
    io.stdout(`${pveversionString(node)} (running kernel: ${node.kernel})\n`);
    return 0;
  }

  // qm ------------------------------------------------------------------------------------

  async #qm(args: string[], io: ShellIo): Promise<number> {
    const [sub, ...rest] = args;
    switch (sub) {
      case 'importdisk':
        return this.#importDisk(rest, io, false);
      case 'disk':
        if (rest[0] === 'import') return this.#importDisk(rest.slice(1), io, true);
        break;
      case 'set':
        return this.#qmSet(rest, io);
      case 'template':
        return this.#qmTemplate(rest, io);
      case 'status': {
        const guest = this.#vm(rest[0]);
        io.stdout(`status: ${guest.status}\n`);
        return 0;
      }
      case 'config': {
        const guest = this.#vm(rest[0]);
        for (const key of Object.keys(guest.config).sort()) {
          io.stdout(`${key}: ${SECRET_KEYS.has(key) ? MASKED_SECRET : guest.config[key]}\n`);
        }
        io.stdout(`digest: ${guest.digest}\n`);
        return 0;
      }
      case 'list': {
        io.stdout('      VMID NAME                 STATUS     MEM(MB)    BOOTDISK(GB) PID       \n');
        for (const g of this.cluster.state
          .guestsOn(this.node)
          .filter((x) => x.type === 'qemu')
          .sort((a, b) => a.vmid - b.vmid)) {
          const boot = g.drives.find((d) => !d.cdrom && !d.unused);
          const disk = boot ? ((this.cluster.state.volume(boot.volid, g.node)?.size ?? 0) / GiB).toFixed(2) : '0.00';
          io.stdout(
            `${String(g.vmid).padStart(10)} ${g.name.padEnd(20)} ${g.status.padEnd(10)} ${String(g.memoryBytes / 1024 ** 2).padEnd(10)} ${disk.padStart(12)} ${String(g.pid ?? 0).padEnd(10)}\n`,
          );
        }
        return 0;
      }
    }
    throw new ExitError(255, `unknown command 'qm ${sub ?? ''}'`);
  }

  #vm(id: string | undefined) {
    const vmid = Number(id);
    if (!id || !Number.isInteger(vmid))
      throw new ExitError(255, `400 not enough arguments\nqm <command> <vmid> [OPTIONS]`);
    return this.cluster.state.guestOn(this.node, vmid, 'qemu');
  }

  async #importDisk(args: string[], io: ShellIo, modern: boolean): Promise<number> {
    const { positional, options } = parseOptions(args);
    const [vmidText, source, sid] = positional;
    if (!source || !sid) throw new ExitError(255, '400 not enough arguments');
    const guest = this.#vm(vmidText);
    const pool = this.cluster.state.pool(sid, this.node);
    if (!pool) throw new ExitError(255, `storage '${sid}' does not exist`);
    if (!pool.spec.content.includes('images')) throw new ExitError(255, `storage ${sid} does not support vm images`);
    const file = this.#file(source);
    if (!file) throw new ExitError(255, `source '${source}' does not exist`);
    const option = (k: string) => options.find(([o]) => o === k)?.[1];
    const release = await lockGuestFile(this.cluster, guest);
    try {
      checkLock(guest);
      const virtualSize = Math.ceil(file.size / GiB) * GiB;
      io.stdout(`importing disk '${source}' to VM ${guest.vmid} ...\n`);
      const volume = this.cluster.state.allocateDisk(pool, guest.vmid, virtualSize, {
        now: this.cluster.clock.now(),
        ...(option('format') ? { format: option('format')! } : {}),
      });
      io.stdout(`  Logical volume "${volume.volid.split(':')[1]}" created.\n`);
      const seconds = file.size / this.cluster.state.timing.clone_bytes_per_second;
      for (let i = 1; i <= 4; i++) {
        await this.cluster.clock.sleep((seconds / 4) * 1000);
        const done = (virtualSize * i) / 4;
        io.stdout(
          `transferred ${renderBytes(done)} of ${renderBytes(virtualSize)} (${((done / virtualSize) * 100).toFixed(2)}%)\n`,
        );
      }
      const target = modern ? option('target-disk') : undefined;
      const key = target ?? nextFreeKey(guest.config, 'unused');
      guest.update(
        (c) => (c[key] = target ? formatDrive(volume.volid, { size: formatDiskSize(virtualSize) }) : volume.volid),
      );
      io.stdout(`Successfully imported disk as '${key}:${volume.volid}'\n`);
    } finally {
      release();
    }
    return 0;
  }

  async #qmSet(args: string[], io: ShellIo): Promise<number> {
    const [vmidText, ...rest] = args;
    const guest = this.#vm(vmidText);
    const { options } = parseOptions(rest);
    if (!options.length) throw new ExitError(255, '400 Parameter verification failed.\nno options specified');
    const raw: Record<string, unknown> = { node: this.node, vmid: String(guest.vmid), ...Object.fromEntries(options) };
    const decoded = decodeFormParams(endpoints.qemuUpdateConfig, raw);
    if (!decoded.ok) throw qmError(new PveError(400, 'Parameter verification failed.', decoded.errors));
    io.stdout(
      `update VM ${guest.vmid}: ${options.map(([k, v]) => `-${k} ${SECRET_KEYS.has(k) ? MASKED_SECRET : v}`).join(' ')}\n`,
    );
    await updateConfig(this.cluster, guest, decoded.value as Record<string, unknown>);
    return 0;
  }

  async #qmTemplate(args: string[], io: ShellIo): Promise<number> {
    const guest = this.#vm(args[0]);
    const task = convertToTemplate(this.cluster, ROOT, guest);
    await task.done;
    for (const line of task.lines.slice(0, -1)) io.stdout(`${line}\n`);
    if (task.exitstatus !== 'OK') throw new ExitError(255, task.exitstatus ?? 'template conversion failed');
    return 0;
  }

  // files ---------------------------------------------------------------------------------

  /** A dir-like storage holding `path`, and the volid the path stands for. */
  #storagePath(path: string): { pool: StoragePool; volid: string; content: ContentType } | undefined {
    for (const pool of this.cluster.state.poolsOn(this.node)) {
      const base = pool.spec.path ?? (pool.shared && pool.spec.type !== 'rbd' ? `/mnt/pve/${pool.id}` : undefined);
      if (!base || !path.startsWith(`${base}/`)) continue;
      const rel = path.slice(base.length + 1);
      for (const [dir, content] of DIR_CONTENT) {
        if (rel.startsWith(`${dir}/`) && !rel.slice(dir.length + 1).includes('/')) {
          return { pool, volid: `${pool.id}:${content}/${rel.slice(dir.length + 1)}`, content };
        }
      }
    }
    return undefined;
  }

  /** A file on the node: a storage path, a volid, or a plain path. */
  #file(pathOrVolid: string): NodeFile | undefined {
    if (!pathOrVolid.startsWith('/')) {
      const v = this.cluster.state.volume(pathOrVolid, this.node);
      return v ? { size: v.size, sha256: v.sha256 ?? '' } : undefined;
    }
    const inStorage = this.#storagePath(pathOrVolid);
    if (inStorage) {
      const v = inStorage.pool.volumes.get(inStorage.volid);
      return v ? { size: v.size, sha256: v.sha256 ?? '' } : undefined;
    }
    return this.cluster.state.node(this.node).files.get(pathOrVolid);
  }

  #writeFile(path: string, file: NodeFile): void {
    const inStorage = this.#storagePath(path);
    if (!inStorage) {
      this.cluster.state.node(this.node).files.set(path, file);
      return;
    }
    inStorage.pool.volumes.set(inStorage.volid, {
      volid: inStorage.volid,
      content: inStorage.content,
      size: file.size,
      format: inStorage.content === 'iso' ? 'iso' : (/\.([a-z0-9]+)$/i.exec(path)?.[1] ?? 'raw'),
      ctime: this.cluster.clock.epochSeconds(),
      sha256: file.sha256,
    });
  }

  async #fetch(tool: 'wget' | 'curl', args: string[], io: ShellIo): Promise<number> {
    let output: string | undefined;
    const rest: string[] = [];
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (
        (tool === 'wget' && (a === '-O' || a === '--output-document')) ||
        (tool === 'curl' && (a === '-o' || a === '--output'))
      ) {
        output = args[++i];
      } else if (tool === 'wget' && a.startsWith('--output-document=')) output = a.slice(18);
      else if (tool === 'wget' && /^-[a-zA-Z]*O$/.test(a)) output = args[++i];
      else if (tool === 'curl' && /^-[a-zA-Z]*o$/.test(a)) output = args[++i];
      else if (!a.startsWith('-')) rest.push(a);
    }
    const url = rest.find((a) => /^https?:\/\//.test(a));
    if (!url) {
      io.stderr(tool === 'wget' ? 'wget: missing URL\n' : 'curl: no URL specified\n');
      return tool === 'wget' ? 1 : 2;
    }
    const path = output ?? `/root/${url.split('/').pop() || 'index.html'}`;
    const remote = remoteFile(this.cluster.state.downloads, url);
    const quiet = tool === 'curl' || args.includes('-q') || args.includes('--quiet');
    if (remote.httpStatus) {
      if (tool === 'wget') {
        io.stderr(`HTTP request sent, awaiting response... ${remote.httpStatus} ${httpReason(remote.httpStatus)}\n`);
        io.stderr(
          `${timestamp(this.cluster.clock.now())} ERROR ${remote.httpStatus}: ${httpReason(remote.httpStatus)}.\n`,
        );
        return 8;
      }
      if (args.some((a) => /^-[a-zA-Z]*f/.test(a) || a === '--fail')) {
        io.stderr(`curl: (22) The requested URL returned error: ${remote.httpStatus}\n`);
        return 22;
      }
    }
    if (!quiet) {
      io.stderr(`--${timestamp(this.cluster.clock.now())}--  ${url}\n`);
      io.stderr(
        `HTTP request sent, awaiting response... 200 OK\nLength: ${remote.size} (${renderBytes(remote.size)}) [application/octet-stream]\nSaving to: '${path}'\n\n`,
      );
    }
    const rate = this.cluster.state.timing.download_bytes_per_second;
    await this.cluster.clock.sleep((remote.size / rate) * 1000);
    this.#writeFile(path, { size: remote.size, sha256: remote.checksum('sha256') });
    if (!quiet) {
      io.stderr(
        `${timestamp(this.cluster.clock.now())} (${renderBytes(rate)}/s) - '${path}' saved [${remote.size}/${remote.size}]\n\n`,
      );
    }
    return 0;
  }

  #sha256sum(args: string[], io: ShellIo): number {
    let status = 0;
    for (const path of args.filter((a) => !a.startsWith('-'))) {
      const file = this.#file(path);
      if (!file) {
        io.stderr(`sha256sum: ${path}: No such file or directory\n`);
        status = 1;
      } else io.stdout(`${file.sha256}  ${path}\n`);
    }
    return status;
  }

  /**
   * `xz -d [-k] [-f] <file>.xz` and `unxz`: the file without `.xz`, four times the size, with a
   * checksum derived from the compressed one; the `.xz` file goes unless `-k` keeps it.
   */
  #unxz(tool: 'xz' | 'unxz', args: string[], io: ShellIo): number {
    const flags = args.filter((a) => a.startsWith('-'));
    if (tool === 'xz' && !flags.some((f) => /^-[a-zA-Z]*d/.test(f) || f === '--decompress')) {
      io.stderr('sim: xz only decompresses here (xz -d)\n');
      return 1;
    }
    const keep = flags.some((f) => /^-[a-zA-Z]*k/.test(f) || f === '--keep');
    for (const path of args.filter((a) => !a.startsWith('-'))) {
      const file = this.#file(path);
      if (!path.endsWith('.xz')) {
        io.stderr(`xz: ${path}: Filename has an unknown suffix, skipping\n`);
        return 1;
      }
      if (!file) {
        io.stderr(`xz: ${path}: No such file or directory\n`);
        return 1;
      }
      const sha256 = createHash('sha256').update(`xz -d ${file.sha256}`).digest('hex');
      this.#writeFile(path.slice(0, -3), { size: file.size * 4, sha256 });
      if (!keep) this.#rm(['-f', path], io);
    }
    return 0;
  }

  #rm(args: string[], io: ShellIo): number {
    const force = args.some((a) => /^-[a-zA-Z]*f/.test(a));
    let status = 0;
    for (const path of args.filter((a) => !a.startsWith('-'))) {
      const inStorage = this.#storagePath(path);
      const removed = inStorage
        ? inStorage.pool.volumes.delete(inStorage.volid)
        : this.cluster.state.node(this.node).files.delete(path);
      if (!removed && !force) {
        io.stderr(`rm: cannot remove '${path}': No such file or directory\n`);
        status = 1;
      }
    }
    return status;
  }

  // apt and reboot --------------------------------------------------------------------------

  async #apt(args: string[], io: ShellIo): Promise<number> {
    const node = this.cluster.state.node(this.node);
    const action = args.find((a) => !a.startsWith('-'));
    if (action === 'update') {
      await this.cluster.clock.sleep(3000);
      io.stdout(
        [
          'Hit:1 http://deb.debian.org/debian trixie InRelease',
          'Hit:2 http://deb.debian.org/debian trixie-updates InRelease',
          'Hit:3 http://security.debian.org/debian-security trixie-security InRelease',
          `${node.upgrade ? 'Get' : 'Hit'}:4 http://download.proxmox.com/debian/pve trixie InRelease`,
          'Reading package lists... Done',
          '',
        ].join('\n'),
      );
      node.aptUpdated = true;
      return 0;
    }
    if (action !== 'dist-upgrade' && action !== 'full-upgrade' && action !== 'upgrade') {
      throw new ExitError(100, `E: Invalid operation ${action ?? ''}`);
    }
    io.stdout(
      'Reading package lists... Done\nBuilding dependency tree... Done\nReading state information... Done\nCalculating upgrade... Done\n',
    );
    const upgrade = node.aptUpdated ? node.upgrade : undefined;
    if (!upgrade || upgrade.packages.length === 0) {
      io.stdout('0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n');
      return 0;
    }
    io.stdout(`The following packages will be upgraded:\n  ${upgrade.packages.map((p) => p.name).join(' ')}\n`);
    io.stdout(`${upgrade.packages.length} upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n`);
    if (!args.includes('-y') && !args.includes('--yes') && !args.includes('--assume-yes')) {
      io.stdout('Do you want to continue? [Y/n] Abort.\n');
      return 1;
    }
    for (const p of upgrade.packages) {
      await this.cluster.clock.sleep(2000);
      io.stdout(
        `Preparing to unpack .../${p.name}_${p.to}_amd64.deb ...\nUnpacking ${p.name} (${p.to}) over (${p.from}) ...\n`,
      );
    }
    for (const p of upgrade.packages) io.stdout(`Setting up ${p.name} (${p.to}) ...\n`);
    node.pveversion = upgrade.pveversion;
    if (upgrade.kernel) node.installedKernel = upgrade.kernel;
    node.upgrade = undefined;
    return 0;
  }

  /**
   * The node goes down shortly after the command returns: guests stop, the node is offline
   * for its reboot time, then comes back on its newest kernel and starts onboot/HA guests.
   */
  #reboot(): number {
    const { cluster } = this;
    const node = cluster.state.node(this.node);
    cluster.clock.schedule(1000, () => {
      const guests = cluster.state.guestsOn(node.name);
      const restart = guests.filter((g) => g.config['onboot'] === '1' || cluster.state.haOf(g)?.state === 'started');
      for (const g of guests) markStopped(g);
      void cluster.setNodeOnline(node.name, false).then(() => {
        cluster.clock.schedule(node.rebootSeconds * 1000, () => {
          if (cluster.stopped) return;
          node.kernel = node.installedKernel;
          node.bootedAt = cluster.clock.now();
          node.aptUpdated = false;
          void cluster.setNodeOnline(node.name, true).then(() => {
            for (const g of restart) if (g.node === node.name && g.status !== 'running') markRunning(cluster, g);
          });
        });
      });
    });
    return 0;
  }
}

function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}
