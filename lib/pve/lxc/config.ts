/**
 * A container's configuration properties (the subset we set, then the rest PVE accepts), as
 * create and config updates take them.
 */
import * as lxcFormats from './formats.js';
import { indexed, pve } from '../params.js';

export const lxcConfigProperties = () => ({
  hostname: pve.string({ format: 'dns-name', maxLength: 255 }).optional(),
  description: pve.string({ maxLength: 8192 }).optional(),
  tags: pve.string({ format: 'pve-tag-list' }).optional(),
  cores: pve.integer({ minimum: 1, maximum: 8192 }).optional(),
  memory: pve.integer({ minimum: 16 }).optional(),
  swap: pve.integer({ minimum: 0 }).optional(),
  rootfs: pve.string({ format: lxcFormats.rootfs }).optional(),
  ...indexed('mp', 256, () => pve.string({ format: lxcFormats.mp }).optional()),
  ...indexed('net', 32, () => pve.string({ format: lxcFormats.net }).optional()),
  nameserver: pve.string({ format: 'lxc-ip-with-ll-iface-list' }).optional(),
  searchdomain: pve.string({ format: 'dns-name-list' }).optional(),
  features: pve.string({ format: lxcFormats.features }).optional(),
  onboot: pve.boolean().optional(),
  protection: pve.boolean().optional(),
  unprivileged: pve.boolean().optional(),
  // The rest of PVE's container properties: accepted and verified, not set by our own operations.
  arch: pve.enum(['amd64', 'i386', 'arm64', 'armhf', 'riscv32', 'riscv64']).optional(),
  cmode: pve.enum(['shell', 'console', 'tty']).optional(),
  console: pve.boolean().optional(),
  cpulimit: pve.number({ minimum: 0, maximum: 8192 }).optional(),
  cpuunits: pve.integer({ minimum: 0, maximum: 500000 }).optional(),
  debug: pve.boolean().optional(),
  ...indexed('dev', 256, () => pve.string({ format: lxcFormats.dev }).optional()),
  entrypoint: pve.string({ pattern: '(?^:[^\\x00-\\x08\\x10-\\x1F\\x7F]+)' }).optional(),
  env: pve
    .string({ pattern: '(?^:(?:\\w+=[^\\x00-\\x08\\x10-\\x1F\\x7F]*)(?:\\0\\w+=[^\\x00-\\x08\\x10-\\x1F\\x7F]*)*)' })
    .optional(),
  hookscript: pve.string({ format: 'pve-volume-id' }).optional(),
  lock: pve
    .enum([
      'backup',
      'create',
      'destroyed',
      'disk',
      'fstrim',
      'migrate',
      'mounted',
      'rollback',
      'snapshot',
      'snapshot-delete',
    ])
    .optional(),
  ostype: pve
    .enum([
      'debian',
      'devuan',
      'ubuntu',
      'centos',
      'fedora',
      'opensuse',
      'archlinux',
      'alpine',
      'gentoo',
      'nixos',
      'unmanaged',
    ])
    .optional(),
  startup: pve.string({ format: 'pve-startup-order' }).optional(),
  template: pve.boolean().optional(),
  timezone: pve.string({ format: 'pve-ct-timezone' }).optional(),
  tty: pve.integer({ minimum: 0, maximum: 6 }).optional(),
  ...indexed('unused', 256, () => pve.string({ format: lxcFormats.unused }).optional()),
});
