/**
 * What differs between a manifest guest and a PVE config, field by field, as the config
 * parameters (and disk resizes) that would close the difference — and whether a running guest
 * takes them live or only at its next boot.
 */
import type { VmDefaults } from '../config/schema.js';
import type { FleetGuest } from './load.js';
import type { GuestKind } from './observed.js';
import {
  composeDescription,
  configFlag,
  configNumber,
  configString,
  decodeSshKeys,
  encodeSshKeys,
  formatGiB,
  formatIpConfig,
  formatLxcNic,
  formatPropertyString,
  formatQemuNic,
  formatTagList,
  parseDescription,
  parseDrive,
  parseIpConfig,
  parseLxcNic,
  parsePropertyString,
  parseQemuNic,
  parseTagList,
  qemuHotplugs,
  type NicValue,
  type PveConfig,
} from './pve-config.js';
import { defaultDiskSlot, type ManagedField } from './schema.js';

export type ParamValue = string | number | boolean;

export interface FieldChange {
  /** `memory`, `disks.scsi0`, `network.net0`, `cloud_init.user`, `power`, `source`, ... */
  field: string;
  from: string;
  to: string;
  /** The change cannot be made to the guest: it is replaced. */
  replaces?: true;
  /** A running guest takes the change only when it restarts. */
  restart?: true;
}

export interface ConfigDelta {
  fields: FieldChange[];
  params: Record<string, ParamValue>;
  resizes: { slot: string; sizeGiB: number }[];
  /** Changes beyond tags, description and onboot (worth a safety snapshot, medium risk). */
  hardware: boolean;
  restart: boolean;
}

export interface DeltaOptions {
  kind: GuestKind;
  config: PveConfig;
  running: boolean;
  /** The fields compared: the managed ones for an existing guest, all set ones for a new clone. */
  fields: ReadonlySet<ManagedField>;
  claimTags: readonly string[];
  defaults: VmDefaults;
  /** The description's recorded source, kept when the description changes. */
  source: string | undefined;
  warn: (message: string) => void;
  what: string;
  /** A clone's `storage` parameter already moves its disks. */
  storageSetByClone?: string;
}

function describeNic(nic: NicValue | undefined, kind: GuestKind): string {
  if (!nic) return '(none)';
  const parts = [
    kind === 'qemu' ? (nic.model ?? 'virtio') : (nic.name ?? 'eth0'),
    `bridge=${nic.bridge ?? '?'}`,
    ...(nic.vlan !== undefined ? [`vlan=${nic.vlan}`] : []),
    ...(nic.firewall ? ['firewall'] : []),
    ...(nic.ip ? [`ip=${nic.ip}`] : []),
    ...(nic.gateway ? [`gw=${nic.gateway}`] : []),
  ];
  return parts.join(' ');
}

export function configDelta(g: FleetGuest, o: DeltaOptions): ConfigDelta {
  const { kind, config, running, fields } = o;
  const delta: ConfigDelta = { fields: [], params: {}, resizes: [], hardware: false, restart: false };
  const change = (field: string, from: string, to: string, opts: { restart?: boolean; hardware?: boolean } = {}) => {
    const restart = Boolean(opts.restart && running);
    delta.fields.push({ field, from, to, ...(restart ? { restart: true as const } : {}) });
    if (restart) delta.restart = true;
    if (opts.hardware !== false) delta.hardware = true;
  };

  if (fields.has('cores') && g.cores !== undefined) {
    const current = configNumber(config, 'cores') ?? (kind === 'qemu' ? 1 : undefined);
    if (current !== g.cores) {
      delta.params['cores'] = g.cores;
      change('cores', current === undefined ? 'all host cores' : String(current), String(g.cores), {
        restart: kind === 'qemu',
      });
    }
  }
  if (fields.has('memory')) {
    if (g.memory !== undefined) {
      const current = configNumber(config, 'memory') ?? 512;
      if (current !== g.memory) {
        delta.params['memory'] = kind === 'qemu' ? String(g.memory) : g.memory;
        change('memory', `${current} MiB`, `${g.memory} MiB`, {
          restart: kind === 'qemu' && !qemuHotplugs(config, 'memory'),
        });
      }
    }
    if (kind === 'lxc' && g.swap !== undefined) {
      const current = configNumber(config, 'swap') ?? 512;
      if (current !== g.swap) {
        delta.params['swap'] = g.swap;
        change('swap', `${current} MiB`, `${g.swap} MiB`);
      }
    }
  }
  if (fields.has('disks') && g.disks) {
    const iothread = o.defaults.scsi_controller === 'virtio-scsi-single';
    g.disks.forEach((disk, i) => {
      const slot = disk.slot ?? defaultDiskSlot(kind, i);
      const storage = disk.storage ?? o.defaults.storage;
      const current = configString(config, slot);
      if (current === undefined) {
        const value =
          kind === 'qemu'
            ? `${storage}:${disk.size}${iothread && slot.startsWith('scsi') ? ',iothread=1' : ''}`
            : `${storage}:${disk.size},mp=${disk.path}`;
        delta.params[slot] = value;
        change(`disks.${slot}`, '(none)', `${disk.size}G on ${storage}`, {
          restart: kind === 'lxc' || !qemuHotplugs(config, 'disk'),
        });
        return;
      }
      const drive = parseDrive(current);
      if (drive.cdrom)
        return o.warn(`${o.what}: ${slot} is a CD drive, not the ${disk.size}G disk the manifest lists there`);
      if (disk.storage !== undefined && drive.storage !== disk.storage && o.storageSetByClone !== disk.storage) {
        o.warn(
          `${o.what}: ${slot} is on ${drive.storage}, the manifest says ${disk.storage}; move it in PVE (a reconcile does not move disks)`,
        );
      }
      if (drive.sizeGiB !== undefined && disk.size > drive.sizeGiB + 1e-6) {
        if (kind === 'qemu') {
          delta.resizes.push({ slot, sizeGiB: disk.size });
          change(`disks.${slot}`, formatGiB(drive.sizeGiB), `${disk.size}G`);
        } else {
          o.warn(
            `${o.what}: ${slot} is ${formatGiB(drive.sizeGiB)}, the manifest says ${disk.size}G; grow container volumes with 'pct resize' (a reconcile does not)`,
          );
        }
      } else if (drive.sizeGiB !== undefined && disk.size < drive.sizeGiB - 1e-6) {
        o.warn(
          `${o.what}: ${slot} is ${formatGiB(drive.sizeGiB)}, the manifest says ${disk.size}G; disks only grow, so it stays as it is`,
        );
      }
      if (kind === 'lxc' && disk.path !== undefined && drive.options.get('mp') !== disk.path) {
        const entries = parsePropertyString(current).map(([k, v]): [string, string | undefined] =>
          k === 'mp' ? [k, disk.path] : [k, v],
        );
        delta.params[slot] = formatPropertyString(entries);
        change(`disks.${slot}`, `mounted at ${drive.options.get('mp') ?? '?'}`, `mounted at ${disk.path}`, {
          restart: true,
        });
      }
    });
  }
  if (fields.has('network') && g.network) {
    g.network.forEach((nic, i) => {
      const key = `net${i}`;
      const text = configString(config, key);
      const current = text === undefined ? undefined : kind === 'qemu' ? parseQemuNic(text) : parseLxcNic(text);
      const base: NicValue = current ?? { firewall: false, rest: [] };
      const next: NicValue = {
        ...base,
        bridge: nic.bridge ?? o.defaults.network_bridge,
        ...(nic.firewall !== undefined ? { firewall: nic.firewall } : {}),
      };
      if (nic.vlan !== undefined) next.vlan = nic.vlan;
      else delete next.vlan;
      if (kind === 'qemu') {
        next.model = nic.model ?? base.model ?? 'virtio';
      } else {
        next.name = nic.name ?? base.name ?? `eth${i}`;
        if (nic.ip !== undefined) next.ip = nic.ip;
        else next.ip ??= 'dhcp';
        if (nic.gateway !== undefined) next.gateway = nic.gateway;
      }
      const before = describeNic(current, kind);
      const after = describeNic(next, kind);
      if (before !== after) {
        delta.params[key] = kind === 'qemu' ? formatQemuNic(next) : formatLxcNic(next);
        change(`network.${key}`, before, after, { restart: kind === 'qemu' && !qemuHotplugs(config, 'network') });
      }
    });
    const extra = Object.keys(config).filter((k) => /^net\d+$/.test(k) && Number(k.slice(3)) >= g.network!.length);
    if (extra.length > 0)
      o.warn(
        `${o.what}: ${extra.join(', ')} ${extra.length === 1 ? 'is' : 'are'} not in the manifest; left as ${extra.length === 1 ? 'it is' : 'they are'}`,
      );
  }

  const currentTags = parseTagList(configString(config, 'tags'));
  const wantedTags =
    fields.has('tags') && g.tags
      ? formatTagList([...g.tags, ...o.claimTags])
      : o.claimTags.length
        ? formatTagList([...currentTags, ...o.claimTags])
        : undefined;
  if (wantedTags !== undefined && wantedTags !== formatTagList(currentTags)) {
    // An empty tag list is removed, not set to ''.
    if (wantedTags) delta.params['tags'] = wantedTags;
    else delta.params['delete'] = 'tags';
    change('tags', currentTags.join(', ') || '(none)', wantedTags.split(';').join(', ') || '(none)', {
      hardware: false,
    });
  }

  if (fields.has('cloud_init') && g.cloud_init && kind === 'qemu') {
    const ci = g.cloud_init;
    const set = (field: string, key: string, from: string, to: string, value: string) => {
      delta.params[key] = value;
      change(`cloud_init.${field}`, from, to, { restart: true });
    };
    const user = configString(config, 'ciuser');
    if (ci.user !== undefined && user !== ci.user) set('user', 'ciuser', user ?? '(none)', ci.user, ci.user);
    if (ci.ssh_keys !== undefined) {
      const keys = decodeSshKeys(configString(config, 'sshkeys'));
      if (keys.join('\n') !== ci.ssh_keys.join('\n')) {
        set(
          'ssh_keys',
          'sshkeys',
          `${keys.length} key${keys.length === 1 ? '' : 's'}`,
          `${ci.ssh_keys.length} key${ci.ssh_keys.length === 1 ? '' : 's'}`,
          encodeSshKeys(ci.ssh_keys),
        );
      }
    }
    if (ci.ip !== undefined) {
      const current = parseIpConfig(configString(config, 'ipconfig0'));
      if (current.ip !== ci.ip || current.gateway !== ci.gateway) {
        const show = (ip?: string, gw?: string) => (ip ? `${ip}${gw ? ` via ${gw}` : ''}` : '(none)');
        set(
          'ip',
          'ipconfig0',
          show(current.ip, current.gateway),
          show(ci.ip, ci.gateway),
          formatIpConfig(ci.ip, ci.gateway),
        );
      }
    }
    if (ci.nameserver !== undefined) {
      const current = (configString(config, 'nameserver') ?? '').split(/\s+/).filter(Boolean).join(' ');
      const wanted = ci.nameserver.join(' ');
      if (current !== wanted) set('nameserver', 'nameserver', current || '(none)', wanted, wanted);
    }
    const domain = configString(config, 'searchdomain');
    if (ci.searchdomain !== undefined && domain !== ci.searchdomain)
      set('searchdomain', 'searchdomain', domain ?? '(none)', ci.searchdomain, ci.searchdomain);
  }

  if (fields.has('onboot') && g.onboot !== undefined && configFlag(config, 'onboot') !== g.onboot) {
    delta.params['onboot'] = g.onboot;
    change('onboot', String(configFlag(config, 'onboot')), String(g.onboot), { hardware: false });
  }
  if (fields.has('description') && g.description !== undefined) {
    const current = parseDescription(configString(config, 'description')).text;
    if (current !== g.description.trim()) {
      delta.params['description'] = composeDescription(g.description, o.source);
      change(
        'description',
        current ? JSON.stringify(current.slice(0, 40)) : '(none)',
        JSON.stringify(g.description.trim().slice(0, 40)),
        { hardware: false },
      );
    }
  }
  return delta;
}
