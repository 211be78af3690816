/**
 * Which download URLs an environment's nodes may fetch without a person: public hosts (or
 * only the allow-listed ones, when a list is configured); never, unless named, a loopback,
 * link-local or private address, and never a URL carrying credentials unless allowed.
 */
import { describe, expect, it } from 'vitest';
import { downloadOutsidePolicy } from '../../lib/config/download-policy.js';
import { DownloadPolicy } from '../../lib/config/schema.js';

const policy = (p: Record<string, unknown> = {}) => DownloadPolicy.parse(p);

describe('the download policy', () => {
  it('lets public hosts through when no allow-list is configured', () => {
    expect(downloadOutsidePolicy('https://releases.ubuntu.com/24.04/x.iso', policy())).toBeUndefined();
  });

  it.each([
    'http://127.0.0.1/x.iso',
    'http://localhost:8006/x.iso',
    'http://api.localhost/x.iso',
    'http://[::1]/x.iso',
    'http://[::ffff:127.0.0.1]/x.iso',
    'http://2130706433/x.iso', // 127.0.0.1 written as one number
    'http://0x7f.1/x.iso',
    'http://169.254.169.254/latest/meta-data/',
    'http://[fe80::1]/x.iso',
    'http://10.1.2.3/x.iso',
    'http://172.20.0.1/x.iso',
    'http://192.168.1.10/x.iso',
    'http://[fd00::5]/x.iso',
    'http://0.0.0.0/x.iso',
  ])('puts %s outside: loopback, link-local or private', (url) => {
    expect(downloadOutsidePolicy(url, policy())).toMatch(
      /is a loopback, link-local or private address, and downloads\.allow does not name it$/,
    );
  });

  it('puts a URL with credentials outside unless credentials are allowed', () => {
    const url = 'https://user:secret@mirror.example.org/x.iso';
    expect(downloadOutsidePolicy(url, policy())).toBe(
      'mirror.example.org: the URL carries credentials (user:password@)',
    );
    expect(downloadOutsidePolicy(url, policy({ credentials_in_urls: true }))).toBeUndefined();
  });

  it('with an allow-list, lets through only hosts, *.domains and URL prefixes it names', () => {
    const p = policy({ allow: ['releases.ubuntu.com', '*.debian.org', 'https://mirror.lan/iso/'] });
    expect(downloadOutsidePolicy('https://releases.ubuntu.com/x.iso', p)).toBeUndefined();
    expect(downloadOutsidePolicy('https://cloud.debian.org/images/x.qcow2', p)).toBeUndefined();
    expect(downloadOutsidePolicy('https://mirror.lan/iso/x.iso', p)).toBeUndefined();
    expect(downloadOutsidePolicy('https://mirror.lan/other/x.iso', p)).toBe(
      'mirror.lan is not in downloads.allow (releases.ubuntu.com, *.debian.org, https://mirror.lan/iso/)',
    );
    expect(downloadOutsidePolicy('https://evil-debian.org/x.iso', p)).toMatch(/is not in downloads\.allow/);
    expect(downloadOutsidePolicy('https://releases.ubuntu.com.evil.net/x.iso', p)).toMatch(
      /is not in downloads\.allow/,
    );
  });

  it('lets a private mirror through when the allow-list names it', () => {
    const p = policy({ allow: ['http://10.0.0.5/mirror/'] });
    expect(downloadOutsidePolicy('http://10.0.0.5/mirror/x.iso', p)).toBeUndefined();
    expect(downloadOutsidePolicy('http://10.0.0.6/mirror/x.iso', p)).toMatch(/private address/);
  });
});
