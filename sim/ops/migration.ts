/**
 * Migration of VMs and containers, following QemuMigrate.pm's phases and messages:
 * synchronous refusals in the API call, then a task that locks the guest, scans volumes
 * (aborting on local disks a live migration cannot take), copies offline volumes, starts the
 * VM on the target with its memory reserved, moves RAM (and mirrored disks) over the node
 * links with fairly shared bandwidth, and finally moves the config to the target.
 */
import { HA_MANAGER, type Caller, type Cluster } from '../cluster.js';
import { bwlimitToBytesPerSecond, migrationSetupSeconds } from '../cost.js';
import { fail, parameterError } from '../errors.js';
import { formatDrive, parseDrive, storageOf, type Drive } from '../guest-config.js';
import type { Guest, StoragePool } from '../state.js';
import type { TaskContext, TaskRecord } from '../tasks.js';
import type { Transfer } from '../transfers.js';
import { renderBytes } from '../units.js';
import { checkLock, guestTask, isHaManaged, label, lockGuestFile } from './common.js';
import { requestHa } from './ha.js';
import { markRunning, markStopped } from './power.js';

export interface MigrateRequest {
  target: string;
  online?: boolean;
  withLocalDisks?: boolean;
  /** KiB/s, as PVE's `bwlimit`. */
  bwlimit?: number;
  /** `sid` or `src:dst,...` */
  targetstorage?: string;
  force?: boolean;
  /** Containers: restart migration. */
  restart?: boolean;
}

const bool = (v: boolean) => (v ? 1 : 0);

/** Volumes of a guest that live on node-local storage, as `local_disks` lists them. */
function localVolumes(cluster: Cluster, guest: Guest): Drive[] {
  return guest.drives.filter((d) => !cluster.state.isShared(storageOf(d.volid)));
}

function unavailableStorages(cluster: Cluster, guest: Guest, node: string): string[] {
  const sids = new Set(guest.drives.filter((d) => !d.cdrom).map((d) => storageOf(d.volid)));
  return [...sids].filter((sid) => !cluster.state.pool(sid, node)).sort();
}

/** GET /nodes/{node}/qemu/{vmid}/migrate */
export function qemuMigratePreconditions(cluster: Cluster, guest: Guest): Record<string, unknown> {
  const allowed: string[] = [];
  const notAllowed: Record<string, Record<string, unknown>> = {};
  for (const node of cluster.state.nodes.keys()) {
    if (node === guest.node) continue;
    const missing = unavailableStorages(cluster, guest, node);
    notAllowed[node] = missing.length ? { unavailable_storages: missing } : {};
    if (!missing.length) allowed.push(node);
  }
  return {
    running: bool(guest.status === 'running'),
    allowed_nodes: allowed,
    not_allowed_nodes: notAllowed,
    local_disks: localVolumes(cluster, guest).map((d) => ({
      volid: d.volid,
      size: cluster.state.volume(d.volid, guest.node)?.size ?? d.size ?? 0,
      cdrom: bool(d.cdrom),
      is_unused: bool(d.unused),
      ...(d.unused ? {} : { drivename: d.key }),
    })),
    local_resources: guest.localResources,
    'mapped-resources': [],
    'mapped-resource-info': {},
    'has-dbus-vmstate': 0,
    'dependent-ha-resources': [],
  };
}

/** GET /nodes/{node}/lxc/{vmid}/migrate */
export function lxcMigratePreconditions(cluster: Cluster, guest: Guest): Record<string, unknown> {
  const allowed = [...cluster.state.nodes.keys()].filter(
    (n) => n !== guest.node && unavailableStorages(cluster, guest, n).length === 0,
  );
  return {
    running: bool(guest.status === 'running'),
    'allowed-nodes': allowed,
    'not-allowed-nodes': {},
    'dependent-ha-resources': [],
  };
}

/** The checks PVE's API runs before forking the worker. */
function checkRequest(cluster: Cluster, guest: Guest, req: MigrateRequest): void {
  if (req.target === guest.node) throw parameterError({ target: 'target is local node.' });
  cluster.state.node(req.target);
  checkLock(guest);
  if (guest.type === 'qemu' && guest.status === 'running' && !req.online)
    throw fail("can't migrate running VM without --online");
  if (guest.type === 'lxc' && guest.status === 'running') {
    if (req.online) throw fail('lxc live migration is currently not implemented');
    if (!req.restart) throw fail('running container can only be migrated in restart mode');
  }
  const mapped = storageMap(req.targetstorage);
  for (const sid of unavailableStorages(cluster, guest, req.target)) {
    const to = mapped(sid);
    if (!cluster.state.pool(to, req.target)) throw fail(`storage '${to}' is not available on node '${req.target}'`);
  }
}

/** POST .../migrate for VMs and containers. HA-managed guests only queue a request. */
export function migrateGuest(cluster: Cluster, caller: Caller, guest: Guest, req: MigrateRequest): TaskRecord {
  checkRequest(cluster, guest, req);
  if (isHaManaged(cluster, guest) && caller !== HA_MANAGER) {
    return requestHa(
      cluster,
      caller,
      guest,
      'migrate',
      (g) => {
        try {
          migrateGuest(cluster, HA_MANAGER, g, {
            target: req.target,
            online: g.status === 'running',
            restart: g.status === 'running',
          });
        } catch {
          // The CRM logs the refusal and leaves the service where it is.
        }
      },
      req.target,
    );
  }
  return guestTask(cluster, caller, guest, 'migrate', (ctx) => new Migration(cluster, guest, req, ctx).run());
}

function storageMap(spec: string | undefined): (sid: string) => string {
  if (!spec) return (sid) => sid;
  const pairs = spec.split(',').map((p) => p.split(':'));
  const single = pairs.find((p) => p.length === 1)?.[0];
  const map = new Map(pairs.filter((p) => p.length === 2).map((p) => [p[0]!, p[1]!]));
  return (sid) => map.get(sid) ?? single ?? sid;
}

function duration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

class MigrationAbort extends Error {}

class Migration {
  readonly #startedAt: number;
  readonly #source: string;
  #reserved = 0;
  /** A container shut down for a restart migration, to be started on the target. */
  #restartContainer = false;

  constructor(
    private readonly cluster: Cluster,
    private readonly guest: Guest,
    private readonly req: MigrateRequest,
    private readonly ctx: TaskContext,
  ) {
    this.#startedAt = cluster.clock.now();
    this.#source = guest.node;
  }

  get #setupMs(): number {
    return migrationSetupSeconds(this.guest.type === 'qemu' && this.guest.status === 'running') * 1000;
  }

  async run(): Promise<void> {
    const { cluster, guest, ctx } = this;
    let release: (() => void) | undefined;
    try {
      release = await lockGuestFile(cluster, guest);
      const online = this.#prepare();
      if (online) {
        // The target's memory is spoken for from the start, so placements see it at once.
        this.#reserved = guest.memoryBytes;
        cluster.state.node(this.req.target).reservedMemory += this.#reserved;
      }
      await ctx.sleep(this.#setupMs * 0.25);
      ctx.logTimed(
        `starting migration of ${label(guest)} to node '${this.req.target}' (${cluster.state.node(this.req.target).ip})`,
      );
      guest.update((c) => (c['lock'] = 'migrate'));
      try {
        const volumes = this.#scanVolumes(online);
        if (guest.type === 'lxc' && guest.status === 'running') await this.#shutdownContainer();
        await this.#copyOffline(volumes.filter((d) => !online || d.unused));
      } catch (err) {
        this.ctx.logTimed((err as Error).message, 'err');
        this.ctx.logTimed('aborting phase 1 - cleanup resources');
        guest.update((c) => delete c['lock']);
        throw err;
      }
      let problems = false;
      if (online) problems = !(await this.#phase2(localVolumes(cluster, guest).filter((d) => !d.unused && !d.cdrom)));
      if (!problems) await this.#finish();
      guest.update((c) => delete c['lock']);
      const took = duration(cluster.clock.now() - this.#startedAt);
      if (problems) {
        ctx.logTimed(`migration finished with problems (duration ${took})`, 'err');
        throw new Error('migration problems');
      }
      ctx.logTimed(`migration finished successfully (duration ${took})`);
    } catch (err) {
      if (err instanceof Error && err.message === 'migration problems') throw err;
      ctx.logTimed(
        `migration aborted (duration ${duration(cluster.clock.now() - this.#startedAt)}): ${(err as Error).message}`,
        'err',
      );
      throw new Error('migration aborted', { cause: err });
    } finally {
      this.#releaseReservation();
      release?.();
    }
  }

  /** QemuMigrate::prepare: returns whether this is a live migration. */
  #prepare(): boolean {
    const { cluster, guest, req } = this;
    checkLock(guest);
    const running = guest.status === 'running';
    if (guest.type === 'qemu') {
      if (running && !req.online) throw new MigrationAbort("can't migrate running VM without --online");
      const blocking = guest.localResources;
      if (blocking.length && (running || !req.force)) {
        throw new MigrationAbort(`can't migrate VM which uses local devices: ${blocking.join(', ')}`);
      }
    }
    if (!cluster.state.node(req.target).online)
      throw new MigrationAbort("Can't connect to destination address using public key");
    return guest.type === 'qemu' && running;
  }

  /** QemuMigrate::scan_local_volumes: logs what it finds, aborts on what it cannot move. */
  #scanVolumes(online: boolean): Drive[] {
    const { cluster, guest } = this;
    const errors: [string, string][] = [];
    const movable: Drive[] = [];
    for (const d of localVolumes(cluster, guest)) {
      if (d.cdrom) {
        errors.push([d.volid, 'local cdrom image']);
        continue;
      }
      const clonedFrom = /^(base-\d+-disk-\d+)\//.exec(d.volid.split(':')[1]!)?.[1];
      if (clonedFrom)
        throw new MigrationAbort(
          `Problem found while scanning volumes - can't migrate '${d.volid}' as it's a clone of '${clonedFrom}'`,
        );
      const inSnapshot = [...guest.snapshots.values()].some((s) =>
        Object.values(s.config).some((v) => parseDrive(v).volid === d.volid),
      );
      if (online && inSnapshot && !d.unused) {
        errors.push([d.volid, 'online storage migration not possible if non-replicated snapshot exists']);
        continue;
      }
      this.ctx.logTimed(`found local disk '${d.volid}' (${d.unused ? 'unused' : 'attached'})`);
      if (online && !d.unused && !this.req.withLocalDisks) {
        errors.push([d.volid, "can't live migrate attached local disks without with-local-disks option"]);
      }
      movable.push(d);
    }
    for (const [volid, why] of errors) this.ctx.logTimed(`can't migrate local disk '${volid}': ${why}`);
    if (errors.length) throw new MigrationAbort("Problem found while scanning volumes - can't migrate VM - check log");
    return movable;
  }

  async #shutdownContainer(): Promise<void> {
    this.ctx.logTimed(`shutdown CT ${this.guest.vmid}`);
    await this.ctx.sleep(this.cluster.state.timing.shutdown_seconds * 1000);
    markStopped(this.guest);
    this.#restartContainer = true;
  }

  async #copyOffline(volumes: Drive[]): Promise<void> {
    if (!volumes.length) return;
    this.ctx.logTimed('copying local disk images');
    for (const d of volumes) {
      const size = this.#sizeOf(d);
      const transfer = this.#transfer(size);
      await this.#follow(
        transfer,
        (p) => `transferred ${renderBytes(p.done)} of ${renderBytes(size)} (${pct(p.done, size)}%)`,
      );
      this.ctx.logTimed(`volume '${d.volid}' is '${this.#targetVolid(d.volid)}' on the target`);
    }
  }

  /** Live phase. Returns false when it failed but the VM keeps running on the source. */
  async #phase2(mirrored: Drive[]): Promise<boolean> {
    const { cluster, guest, ctx, req } = this;
    const target = req.target;
    ctx.logTimed(`starting VM ${guest.vmid} on remote node '${target}'`);
    await ctx.sleep(this.#setupMs * 0.5);
    if (cluster.freeMemory(target) + this.#reserved < guest.memoryBytes) {
      ctx.logTimed(`[${target}] kvm: cannot set up guest memory 'pc.ram': Cannot allocate memory`);
      ctx.logTimed(`[${target}] start failed: QEMU exited with code 1`);
      ctx.logTimed('online migrate failure - remote command failed with exit code 255', 'err');
      ctx.logTimed('aborting phase 2 - cleanup resources');
      ctx.logTimed('migrate_cancel');
      return false;
    }
    ctx.logTimed('start remote tunnel');
    ctx.logTimed('ssh tunnel ver 1');
    if (mirrored.length) {
      ctx.logTimed('starting storage migration');
      for (const d of mirrored) {
        const size = this.#sizeOf(d);
        ctx.logTimed(
          `${d.key}: start migration to nbd:unix:/run/qemu-server/${guest.vmid}_nbd.migrate:exportname=drive-${d.key}`,
        );
        ctx.logTimed(`drive mirror is starting for drive-${d.key}`);
        const started = cluster.clock.now();
        const transfer = this.#transfer(size);
        const elapsed = () => `${Math.round((cluster.clock.now() - started) / 1000)}s`;
        await this.#follow(
          transfer,
          (p) =>
            `drive-${d.key}: transferred ${renderBytes(p.done)} of ${renderBytes(size)} (${pct(p.done, size)}%) in ${elapsed()}`,
        );
        ctx.logTimed(
          `drive-${d.key}: transferred ${renderBytes(size)} of ${renderBytes(size)} (100.00%) in ${elapsed()}, ready`,
        );
      }
      ctx.logTimed("all 'mirror' jobs are ready");
    }
    ctx.logTimed(`starting online/live migration on unix:/run/qemu-server/${guest.vmid}.migrate`);
    ctx.logTimed('set migration capabilities');
    const limit = bwlimitToBytesPerSecond(req.bwlimit);
    if (limit) ctx.logTimed(`migration speed limit: ${renderBytes(limit)}/s`);
    ctx.logTimed('migration downtime limit: 100 ms');
    ctx.logTimed(`migration cachesize: ${renderBytes(2 ** Math.round(Math.log2(guest.memoryBytes / 10)))}`);
    ctx.logTimed('set migration parameters');
    ctx.logTimed(`start migrate command to unix:/run/qemu-server/${guest.vmid}.migrate`);
    const memory = guest.memoryBytes;
    const started = cluster.clock.now();
    const transfer = this.#transfer(memory);
    await this.#follow(
      transfer,
      (p) =>
        `migration active, transferred ${renderBytes(p.done)} of ${renderBytes(memory)} VM-state, ${renderBytes(p.rate)}/s`,
    );
    const seconds = Math.max((cluster.clock.now() - started) / 1000, 0.001);
    ctx.logTimed(
      `average migration speed: ${renderBytes(memory / seconds)}/s - downtime ${40 + Math.floor((guest.vmid * 7) % 60)} ms`,
    );
    ctx.logTimed(`migration completed, transferred ${renderBytes(memory)} VM-state`);
    ctx.logTimed('migration status: completed');
    return true;
  }

  /** Phase 3: config and local volumes now belong to the target. */
  async #finish(): Promise<void> {
    const { cluster, guest, ctx, req } = this;
    await ctx.sleep(this.#setupMs * (guest.type === 'qemu' && guest.status === 'running' ? 0.25 : 0.75));
    if (!cluster.state.node(req.target).online) throw new MigrationAbort(`Connection to node '${req.target}' lost`);
    const renames = new Map<string, string>();
    for (const d of localVolumes(cluster, guest)) {
      if (d.cdrom) continue;
      const from = cluster.state.pool(storageOf(d.volid), this.#source) as StoragePool;
      const volid = this.#targetVolid(d.volid);
      const to = cluster.state.pool(storageOf(volid), req.target) as StoragePool;
      const volume = from.volumes.get(d.volid);
      from.volumes.delete(d.volid);
      if (volume) to.volumes.set(volid, { ...volume, volid });
      renames.set(d.volid, volid);
    }
    this.#releaseReservation();
    guest.node = req.target;
    guest.update((c) => {
      for (const [k, v] of Object.entries(c)) {
        const { volid, options } = parseDrive(v);
        const renamed = renames.get(volid);
        if (renamed) c[k] = /^unused\d+$/.test(k) ? renamed : formatDrive(renamed, options);
      }
    });
    if (this.#restartContainer) {
      ctx.logTimed('start container on target node');
      await ctx.sleep(cluster.state.timing.boot_seconds * 1000);
      markRunning(cluster, guest);
    }
  }

  #transfer(bytes: number): Transfer {
    const limit = bwlimitToBytesPerSecond(this.req.bwlimit);
    return this.cluster.transfers.start({
      source: this.#source,
      target: this.req.target,
      bytes,
      signal: this.ctx.signal,
      ...(limit ? { limitBytesPerSecond: limit } : {}),
    });
  }

  /** Waits for a transfer, logging progress at an interval suited to its expected length. */
  async #follow(transfer: Transfer, line: (p: { done: number; rate: number }) => string): Promise<void> {
    let finished = false;
    const settled = transfer.finished.then(
      () => (finished = true),
      () => (finished = true),
    );
    while (!finished) {
      const p = transfer.progress();
      const etaMs = p.rate > 0 ? ((p.total - p.done) / p.rate) * 1000 : 10_000;
      await Promise.race([this.ctx.sleep(Math.min(10_000, Math.max(1000, etaMs / 10))), settled]);
      if (!finished) this.ctx.logTimed(line(transfer.progress()));
    }
    await transfer.finished;
  }

  #sizeOf(d: Drive): number {
    return this.cluster.state.volume(d.volid, this.#source)?.size ?? d.size ?? 0;
  }

  #targetVolid(volid: string): string {
    const sid = storageOf(volid);
    const to = storageMap(this.req.targetstorage)(sid);
    return to === sid ? volid : `${to}:${volid.slice(sid.length + 1)}`;
  }

  #releaseReservation(): void {
    if (this.#reserved === 0) return;
    this.cluster.state.node(this.req.target).reservedMemory -= this.#reserved;
    this.#reserved = 0;
  }
}

function pct(done: number, total: number): string {
  return total > 0 ? ((done / total) * 100).toFixed(2) : '100.00';
}
