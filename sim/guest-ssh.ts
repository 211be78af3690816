/**
 * What runs inside simulated guests, as far as automation reaches it:
 *
 * - Containers answer `pct exec <vmid> -- <command>` on their node with a Debian userland that
 *   knows `apt-get update` / `apt-get -y upgrade` (a few pending packages each, until upgraded).
 * - VMs that boot from the network run the live Alpine image (the "gold image": one SSH host
 *   key for all, root logs in with the keys authorised on the nodes). There `setup-alpine -f`
 *   installs Alpine onto the VM's disk; a VM whose first bootable device is such a disk runs
 *   the installed system (its own host key, root's key from the answer file).
 * - Guest SSH is reached the way the orchestrator does in real networks: a `direct-tcpip`
 *   channel through the node's SSH endpoint to `<guest address>:22`.
 *
 * The node side hooks in with `attachGuestSystems()` (SSH server), `forward()` (its `tcpip`
 * event) and `pct()` (its shell); tests steer failures through `guestSystemsOf(cluster)`.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Duplex } from 'node:stream';
import ssh2, { type Connection } from 'ssh2';
import type { Cluster } from './cluster.js';
import type { Guest } from './state.js';
import { generateSshKeyPair, sshFingerprint, type SshKeyPair } from './ssh/server.js';
import { tokenize, type ShellIo } from './ssh/shell.js';

const { Server, utils } = ssh2;

/** What a container's package manager has to offer, until it is upgraded. */
const DEBIAN_UPDATES = [
  { name: 'libssl3t64', from: '3.5.1-1', to: '3.5.1-1+deb13u1' },
  { name: 'openssl', from: '3.5.1-1', to: '3.5.1-1+deb13u1' },
  { name: 'tzdata', from: '2025b-4', to: '2025b-4+deb13u1' },
  { name: 'libc6', from: '2.41-12', to: '2.41-12+deb13u1' },
  { name: 'curl', from: '8.14.1-2', to: '8.14.1-2+deb13u1' },
];

interface ContainerSystem {
  aptUpdated: boolean;
  pending: typeof DEBIAN_UPDATES;
  /** Injected: the next upgrades fail with this dpkg error. */
  failUpgrade?: { message: string; times: number };
}

/** Alpine installed on a disk volume by setup-alpine. */
export interface InstalledSystem {
  volid: string;
  hostname: string;
  hostKey: SshKeyPair;
  rootKeys: string[];
  packages: Set<string>;
  services: Set<string>;
  files: Map<string, string>;
}

type Running = { kind: 'live' } | { kind: 'installed'; system: InstalledSystem };

/** Answers one command (words after `VAR=value` prefixes), or leaves it to the basics with undefined. */
type Handler = (words: string[], io: ShellIo, env: ReadonlyMap<string, string>) => Promise<number | undefined>;

class ExitError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

const registry = new WeakMap<Cluster, GuestSystems>();

/** Creates (once per cluster) the guest systems; the node SSH server calls this. */
export function attachGuestSystems(cluster: Cluster, options: { authorizedKeys: readonly string[] }): GuestSystems {
  let systems = registry.get(cluster);
  if (!systems) {
    systems = new GuestSystems(cluster, options.authorizedKeys);
    registry.set(cluster, systems);
  }
  return systems;
}

export function guestSystemsOf(cluster: Cluster): GuestSystems {
  const systems = registry.get(cluster);
  if (!systems) throw new Error('this cluster has no guest systems (no SSH server attached them)');
  return systems;
}

export class GuestSystems {
  readonly #liveKey = generateSshKeyPair('root@alpine-live');
  readonly #containers = new Map<number, ContainerSystem>();
  readonly #installed = new Map<string, InstalledSystem>();
  /** What each guest booted into, per boot (keyed by vmid and start time). */
  readonly #booted = new Map<string, Running | undefined>();
  readonly #failInstall = new Map<number, string>();

  constructor(
    private readonly cluster: Cluster,
    private readonly nodeKeys: readonly string[],
  ) {}

  /** `SHA256:...` of the live image's host key: what operators pin as `liveImageHostKey`. */
  get liveImageHostKey(): string {
    return sshFingerprint(this.#liveKey.publicKey);
  }

  /** The system setup-alpine left on a VM's disk (scsi0), if any. */
  installedOn(vmid: number): InstalledSystem | undefined {
    const disk = this.cluster.state.guests.get(vmid)?.drives.find((d) => d.key === 'scsi0' && !d.cdrom);
    return disk ? this.#installed.get(disk.volid) : undefined;
  }

  /** The next `times` upgrades in this container fail as apt does when dpkg was left half-done. */
  failUpgrades(
    vmid: number,
    message = "dpkg was interrupted, you must manually run 'dpkg --configure -a' to correct the problem.",
    times = 1,
  ): void {
    this.#container(vmid).failUpgrade = { message, times };
  }

  /** setup-alpine on this VM fails (the disk cannot be partitioned). */
  failInstall(vmid: number, message = 'ERROR: Failed to create partitions on /dev/sda'): void {
    this.#failInstall.set(vmid, message);
  }

  /** Packages still waiting in a container (none once upgraded). */
  pendingUpgrades(vmid: number): string[] {
    return this.#container(vmid).pending.map((p) => p.name);
  }

  // --- node side ------------------------------------------------------------------------

  /** `pct <subcommand>` on `node`; only `exec <vmid> -- <command>` reaches inside. */
  async pct(node: string, args: readonly string[], io: ShellIo): Promise<number> {
    const [sub, vmidText, separator, ...command] = args;
    if (sub !== 'exec') {
      io.stderr(`unknown command 'pct ${sub ?? ''}'\n`);
      return 255;
    }
    const vmid = Number(vmidText);
    const guest = this.cluster.state.guests.get(vmid);
    if (!guest || guest.node !== node || guest.type !== 'lxc') {
      io.stderr(`Configuration file 'nodes/${node}/lxc/${vmidText ?? ''}.conf' does not exist\n`);
      return 255;
    }
    if (guest.status !== 'running') {
      io.stderr(`CT ${vmid} not running\n`);
      return 255;
    }
    const words = separator === '--' ? command : [separator ?? '', ...command].filter(Boolean);
    const line =
      words[0] === 'sh' || words[0] === 'bash'
        ? words[1] === '-c'
          ? (words[2] ?? '')
          : words.slice(1).join(' ')
        : words.join(' ');
    return this.#run(line, io, (w, out) => this.#containerCommand(guest, w, out));
  }

  /** A node's `tcpip` (direct-tcpip) request: connect to a guest's SSH if something answers there. */
  forward(_node: string, info: { destIP: string; destPort: number }, accept: () => Duplex, reject: () => void): void {
    const guest = [...this.cluster.state.guests.values()].find((g) => g.type === 'qemu' && g.ip === info.destIP);
    const running = info.destPort === 22 && guest ? this.#runningSystem(guest) : undefined;
    if (!guest || !running) return reject();
    const hostKey = running.kind === 'live' ? this.#liveKey : running.system.hostKey;
    const allowed = running.kind === 'live' ? this.nodeKeys : running.system.rootKeys;
    const server = new Server({ hostKeys: [hostKey.privateKey] }, (client) =>
      this.#serve(client, guest, running, allowed),
    );
    server.injectSocket(accept() as Parameters<typeof server.injectSocket>[0]);
  }

  // --- containers -----------------------------------------------------------------------

  #container(vmid: number): ContainerSystem {
    let system = this.#containers.get(vmid);
    if (!system) {
      const count = 1 + (vmid % DEBIAN_UPDATES.length);
      system = { aptUpdated: false, pending: DEBIAN_UPDATES.slice(0, count) };
      this.#containers.set(vmid, system);
    }
    return system;
  }

  async #containerCommand(guest: Guest, words: string[], io: ShellIo): Promise<number | undefined> {
    const [program = '', ...rest] = words;
    if (program !== 'apt-get' && program !== 'apt') return undefined;
    const system = this.#container(guest.vmid);
    const action = rest.find((a) => !a.startsWith('-') && !a.includes('::'));
    if (action === 'update') {
      await this.cluster.clock.sleep(2_000);
      io.stdout(
        'Hit:1 http://deb.debian.org/debian trixie InRelease\nHit:2 http://security.debian.org/debian-security trixie-security InRelease\n' +
          `Reading package lists... Done\n${system.pending.length} packages can be upgraded.\n`,
      );
      system.aptUpdated = true;
      return 0;
    }
    if (action !== 'upgrade' && action !== 'dist-upgrade' && action !== 'full-upgrade') {
      throw new ExitError(100, `E: Invalid operation ${action ?? ''}`);
    }
    if (system.failUpgrade) {
      const failure = system.failUpgrade;
      if (--failure.times <= 0) system.failUpgrade = undefined;
      throw new ExitError(100, `E: ${failure.message}`);
    }
    io.stdout('Reading package lists... Done\nBuilding dependency tree... Done\nCalculating upgrade... Done\n');
    const upgrades = system.aptUpdated ? system.pending : [];
    io.stdout(`${upgrades.length} upgraded, 0 newly installed, 0 to remove and 0 not upgraded.\n`);
    if (upgrades.length === 0) return 0;
    if (!rest.some((a) => a === '-y' || a === '--yes' || a === '--assume-yes')) {
      io.stdout('Do you want to continue? [Y/n] Abort.\n');
      return 1;
    }
    for (const p of upgrades) {
      await this.cluster.clock.sleep(1_500);
      io.stdout(`Unpacking ${p.name} (${p.to}) over (${p.from}) ...\n`);
    }
    for (const p of upgrades) io.stdout(`Setting up ${p.name} (${p.to}) ...\n`);
    system.pending = [];
    return 0;
  }

  // --- VMs: what boots, and its SSH ---------------------------------------------------------

  /** The system a running VM booted, once it is far enough up to answer (as its agent does). */
  #runningSystem(guest: Guest): Running | undefined {
    if (guest.status !== 'running' || guest.startedAt === undefined) return undefined;
    if (this.cluster.clock.now() - guest.startedAt < this.cluster.state.timing.agent_ip_delay_seconds * 1000)
      return undefined;
    const boot = `${guest.vmid}@${guest.startedAt}`;
    if (!this.#booted.has(boot)) this.#booted.set(boot, this.#bootDevice(guest));
    return this.#booted.get(boot);
  }

  /** The first device in the boot order that has something to boot. */
  #bootDevice(guest: Guest): Running | undefined {
    const order = /order=([^,]+)/.exec(guest.config['boot'] ?? '')?.[1]?.split(';') ?? [];
    for (const device of order) {
      if (/^net\d+$/.test(device) && guest.config[device]) return { kind: 'live' };
      const disk = guest.drives.find((d) => d.key === device && !d.cdrom);
      const system = disk ? this.#installed.get(disk.volid) : undefined;
      if (system) return { kind: 'installed', system };
    }
    return undefined;
  }

  #serve(client: Connection, guest: Guest, running: Running, allowed: readonly string[]): void {
    const keys = allowed.flatMap((line) => {
      const key = utils.parseKey(line);
      return key instanceof Error ? [] : [Array.isArray(key) ? key[0]! : key];
    });
    client.on('error', () => undefined);
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey' || ctx.username !== 'root') return ctx.reject(['publickey']);
      const offered = ctx.key;
      const match = keys.find(
        (k) =>
          k.type === offered.algo &&
          k.getPublicSSH().length === offered.data.length &&
          timingSafeEqual(k.getPublicSSH(), offered.data),
      );
      if (!match) return ctx.reject(['publickey']);
      if (!ctx.signature || !ctx.blob) return ctx.accept();
      return match.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true ? ctx.accept() : ctx.reject(['publickey']);
    });
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('exec', (accept, _reject, info) => {
          const stream = accept();
          const fs = new AlpineFs(this, guest, running);
          // An exec handler cannot be awaited: the command's failure becomes exit status 255.
          void this.#run(
            info.command,
            { stdout: (t) => stream.write(t), stderr: (t) => stream.stderr.write(t) },
            (w, io, env) => fs.command(w, io, env),
          )
            .catch(() => 255)
            .then((code) => {
              if (stream.destroyed) return;
              stream.exit(code);
              stream.end();
            });
        });
      });
    });
  }

  /** setup-alpine: partitions the VM's disk and installs a fresh system onto it. */
  async install(guest: Guest, answers: Map<string, string>, erase: string | undefined, io: ShellIo): Promise<void> {
    const diskOpts = answers.get('DISKOPTS') ?? '';
    const device = /-m sys (\/dev\/[a-z]+)/.exec(diskOpts)?.[1];
    if (!device) throw new ExitError(1, 'setup-alpine: DISKOPTS must name a disk in sys mode');
    const disk = guest.drives.find((d) => d.key === 'scsi0' && !d.cdrom);
    if (device !== '/dev/sda' || !disk) throw new ExitError(1, `ERROR: ${device}: not a block device`);
    if (erase !== device) {
      io.stdout(
        `WARNING: The following disk(s) will be erased:\n  ${device}\nWARNING: Erase the above disk(s) and continue? (y/n) [n] \n`,
      );
      throw new ExitError(1, 'aborted');
    }
    const failure = this.#failInstall.get(guest.vmid);
    io.stdout(` * Keymap, hostname, interfaces, timezone, repositories, sshd: configured\nCreating file systems...\n`);
    await this.cluster.clock.sleep(10_000);
    if (failure) throw new ExitError(1, failure);
    const hostname = /-n (\S+)/.exec(answers.get('HOSTNAMEOPTS') ?? '')?.[1] ?? 'alpine';
    const hostKey = generateSshKeyPair(`root@${hostname}`);
    const rootKey = answers.get('ROOTSSHKEY');
    await this.cluster.clock.sleep(20_000);
    this.#installed.set(disk.volid, {
      volid: disk.volid,
      hostname,
      hostKey,
      rootKeys: rootKey ? [rootKey] : [],
      packages: new Set(['alpine-base', 'openssh', 'chrony']),
      services: new Set(['sshd', 'chronyd']),
      files: new Map([
        ['/etc/hostname', `${hostname}\n`],
        ['/etc/alpine-release', '3.22.2\n'],
        ['/etc/ssh/ssh_host_ed25519_key.pub', `${hostKey.publicKey}\n`],
      ]),
    });
    io.stdout(`Installing system on ${device}3:\nInstalling boot loader\nInstallation is complete. Please reboot.\n`);
  }

  // --- a small shell ---------------------------------------------------------------------

  /** Runs `&&`, `||`, `;`-joined commands; `handle` answers a command or leaves it to the basics. */
  async #run(line: string, io: ShellIo, handle: Handler): Promise<number> {
    let status = 0;
    let skip = false;
    let command: string[] = [];
    const flush = async () => {
      if (command.length && !skip) status = await this.#exec(command, io, handle);
      command = [];
    };
    for (const w of tokenize(line)) {
      if (w === '&&' || w === '||' || w === ';') {
        await flush();
        skip = (w === '&&' && status !== 0) || (w === '||' && status === 0);
      } else command.push(w);
    }
    await flush();
    return status;
  }

  async #exec(words: string[], io: ShellIo, handle: Handler): Promise<number> {
    const env = new Map<string, string>();
    const args = [...words];
    while (args.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(args[0]!)) {
      const [k, ...v] = args.shift()!.split('=');
      env.set(k!, v.join('='));
    }
    const [program = ''] = args;
    try {
      if (program === 'sh' || program === 'bash') {
        if (args[1] === '-c') return await this.#run(args[2] ?? '', io, handle);
      }
      if (program === 'export' || program === 'true') return 0;
      if (program === 'false') return 1;
      const handled = await handle(args, io, env);
      if (handled !== undefined) return handled;
    } catch (err) {
      const e = err instanceof ExitError ? err : new ExitError(1, err instanceof Error ? err.message : String(err));
      io.stderr(`${e.message}\n`);
      return e.code;
    }
    io.stderr(`sh: ${program}: not found\n`);
    return 127;
  }
}

/** The file system and commands of a running VM: the live image (tmpfs) or the installed system. */
class AlpineFs {
  /** The live image keeps files in memory for one session (enough for the answer file). */
  readonly #files = new Map<string, string>();
  #mounted: InstalledSystem | undefined;

  constructor(
    private readonly systems: GuestSystems,
    private readonly guest: Guest,
    private readonly running: Running,
  ) {}

  async command(words: string[], io: ShellIo, env: ReadonlyMap<string, string>): Promise<number | undefined> {
    const redirect = words.indexOf('>');
    const target = redirect >= 0 ? words[redirect + 1] : undefined;
    const args = redirect >= 0 ? words.slice(0, redirect) : words;
    const [program = '', ...rest] = args;
    let out = '';
    const sink: ShellIo = target ? { stdout: (t) => (out += t), stderr: io.stderr } : io;
    const status = await this.#program(program, rest, env, sink);
    if (status === 0 && target) this.#write(target, out);
    return status;
  }

  async #program(
    program: string,
    args: string[],
    env: ReadonlyMap<string, string>,
    io: ShellIo,
  ): Promise<number | undefined> {
    switch (program) {
      case 'echo':
        io.stdout(`${args.join(' ')}\n`);
        return 0;
      case 'printf': {
        const [format = '', ...values] = args;
        const text = format.replace(/\\n/g, '\n');
        if (!text.includes('%s')) io.stdout(text);
        else for (const v of values.length ? values : ['']) io.stdout(text.replace('%s', v));
        return 0;
      }
      case 'cat': {
        for (const path of args) {
          const content = this.#read(path);
          if (content === undefined) throw new ExitError(1, `cat: can't open '${path}': No such file or directory`);
          io.stdout(content);
        }
        return 0;
      }
      case 'grep': {
        const pattern = args.find((a, i) => !a.startsWith('-') && i < args.length - 1);
        const path = args.at(-1)!;
        const content = this.#read(path) ?? '';
        const re = new RegExp(pattern ?? '');
        const hits = content.split('\n').filter((l) => l && re.test(l));
        for (const h of hits) io.stdout(`${h}\n`);
        return hits.length ? 0 : 1;
      }
      case 'hostname':
        io.stdout(`${this.running.kind === 'installed' ? this.running.system.hostname : 'localhost'}\n`);
        return 0;
      case 'uname':
        io.stdout('Linux 6.12.58-0-lts #1-Alpine SMP PREEMPT_DYNAMIC x86_64 Linux\n');
        return 0;
      case 'setup-alpine': {
        if (this.running.kind !== 'live') throw new ExitError(1, 'setup-alpine: run it from the live image');
        const file = args[args.indexOf('-f') + 1];
        const text = args.includes('-f') && file ? this.#read(file) : undefined;
        if (text === undefined) throw new ExitError(1, `setup-alpine: answer file '${file ?? ''}' not found`);
        await this.systems.install(this.guest, parseAnswers(text), env.get('ERASE_DISKS'), io);
        return 0;
      }
      case 'mount': {
        const [device, dir] = args;
        const system = this.systems.installedOn(this.guest.vmid);
        if (this.running.kind !== 'live' || dir !== '/mnt' || device !== '/dev/sda3' || !system) {
          throw new ExitError(255, `mount: mounting ${device ?? ''} on ${dir ?? ''} failed: No such file or directory`);
        }
        this.#mounted = system;
        return 0;
      }
      case 'umount':
        this.#mounted = undefined;
        return 0;
      case 'apk': {
        const root = args[args.indexOf('--root') + 1];
        const system = args.includes('--root') ? (root === '/mnt' ? this.#mounted : undefined) : undefined;
        if (args.includes('--root') && !system)
          throw new ExitError(1, `ERROR: Unable to open root: No such file or directory`);
        const packages = args.slice(args.indexOf('add') + 1).filter((a) => !a.startsWith('-'));
        if (!args.includes('add')) throw new ExitError(1, 'apk: only add is supported here');
        packages.forEach((p, i) => io.stdout(`(${i + 1}/${packages.length}) Installing ${p}\n`));
        for (const p of packages) system?.packages.add(p);
        io.stdout(`OK: ${packages.length} packages added\n`);
        return 0;
      }
      case 'chroot': {
        const [dir, cmd, sub, service, level] = args;
        if (dir !== '/mnt' || !this.#mounted)
          throw new ExitError(125, `chroot: cannot change root directory to '${dir ?? ''}'`);
        if (cmd !== 'rc-update' || sub !== 'add' || !service)
          throw new ExitError(127, `chroot: failed to run command '${cmd ?? ''}'`);
        this.#mounted.services.add(service);
        io.stdout(` * service ${service} added to runlevel ${level ?? 'default'}\n`);
        return 0;
      }
      case 'mkdir':
        return 0;
      default:
        return undefined;
    }
  }

  #root(): InstalledSystem | undefined {
    return this.running.kind === 'installed' ? this.running.system : undefined;
  }

  #read(path: string): string | undefined {
    if (path === '/proc/mounts') {
      return this.running.kind === 'installed'
        ? '/dev/sda3 / ext4 rw,relatime 0 0\n'
        : 'tmpfs / tmpfs rw,relatime,mode=755 0 0\n';
    }
    if (path.startsWith('/mnt/') && this.#mounted) return this.#mounted.files.get(path.slice(4));
    const installed = this.#root();
    return installed ? installed.files.get(path) : this.#files.get(path);
  }

  #write(path: string, content: string): void {
    if (path.startsWith('/mnt/') && this.#mounted) this.#mounted.files.set(path.slice(4), content);
    else if (this.#root()) this.#root()!.files.set(path, content);
    else this.#files.set(path, content);
  }
}

/** `KEY="value"` lines (values may span lines), as setup-alpine sources them. */
function parseAnswers(text: string): Map<string, string> {
  const answers = new Map<string, string>();
  for (const m of text.matchAll(/^([A-Z]+)="([^"]*)"/gm)) answers.set(m[1]!, m[2]!);
  return answers;
}
