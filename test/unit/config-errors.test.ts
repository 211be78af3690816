import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../lib/config/load.js';

const validEnvironment = () => ({
  cluster: { name: 'home', nodes: [{ name: 'pve1', host: '10.0.0.1' }] },
  tls: { fingerprint: Array(32).fill('AB').join(':') },
  credentials: { token: { env: 'PVE_TOKEN' } },
});

function problemsOf(raw: unknown): string[] {
  try {
    parseConfig(raw, 'test.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected the configuration to be rejected');
}

describe('a bad configuration', () => {
  it('is accepted when nothing is wrong (the baseline the other cases break)', () => {
    expect(() => parseConfig({ environments: { home: validEnvironment() } }, 'test.yaml')).not.toThrow();
  });

  it('names a cluster without nodes by its path', () => {
    const env = validEnvironment();
    const problems = problemsOf({ environments: { home: { ...env, cluster: { name: 'home' } } } });
    expect(problems).toEqual([expect.stringMatching(/^environments\.home\.cluster\.nodes: \S/)]);
  });

  it('names an empty node list with the reason', () => {
    const env = validEnvironment();
    const problems = problemsOf({ environments: { home: { ...env, cluster: { name: 'home', nodes: [] } } } });
    expect(problems).toEqual(['environments.home.cluster.nodes: a cluster needs at least one node']);
  });

  it('rejects a VMID range that is malformed or upside down', () => {
    const problems = problemsOf({
      environments: { home: { ...validEnvironment(), vmid_ranges: { templates: '999-100', vms: '1000' } } },
    });
    expect(problems).toEqual([
      'environments.home.vmid_ranges.templates: must lie within 100-999999999 with the lower bound first',
      'environments.home.vmid_ranges.vms: must be a range such as 1000-9999',
    ]);
  });

  it("refuses VM defaults PVE would refuse, with PVE's reason", () => {
    const problems = problemsOf({
      environments: {
        home: {
          ...validEnvironment(),
          defaults: { machine: 'pc-q99', cpu: 'host,hidden=maybe', network_bridge: 'vmbr 0' },
        },
      },
    });
    expect(problems).toEqual([
      "environments.home.defaults.network_bridge: PVE refuses it: invalid bridge ID 'vmbr 0'",
      'environments.home.defaults.machine: PVE refuses it: format error; type: value does not match the regex pattern',
      "environments.home.defaults.cpu: PVE refuses it: format error; hidden: type check ('boolean') failed - got 'maybe'",
    ]);
  });

  it('refuses an environment without TLS verification settings', () => {
    const { tls: _tls, ...env } = validEnvironment();
    const problems = problemsOf({ environments: { home: env } });
    expect(problems).toEqual([expect.stringMatching(/^environments\.home\.tls: /)]);
  });

  it('refuses TLS settings that neither pin nor trust anything', () => {
    const problems = problemsOf({ environments: { home: { ...validEnvironment(), tls: {} } } });
    expect(problems).toEqual([
      'environments.home.tls: set ca_file or fingerprint, or tls_fingerprint on every node (or, knowingly, insecure: true)',
    ]);
  });

  it('accepts a cluster pinned node by node, and refuses one node left unpinned', () => {
    const pin = (byte: string) => Array(32).fill(byte).join(':');
    const cluster = (pins: (string | undefined)[]) => ({
      name: 'home',
      nodes: pins.map((p, i) => ({
        name: `pve${i + 1}`,
        host: `10.0.0.${i + 1}`,
        ...(p ? { tls_fingerprint: p } : {}),
      })),
    });
    const { tls: _tls, ...env } = validEnvironment();
    expect(() =>
      parseConfig({ environments: { home: { ...env, cluster: cluster([pin('01'), pin('02')]) } } }, 't.yaml'),
    ).not.toThrow();
    expect(problemsOf({ environments: { home: { ...env, cluster: cluster([pin('01'), undefined]) } } })).toEqual([
      expect.stringMatching(/^environments\.home\.tls: .*tls_fingerprint on every node/),
    ]);
  });

  it('names an API token that grants an unknown environment', () => {
    const problems = problemsOf({
      api: { tokens: [{ actor: 'alice', sha256: 'a'.repeat(64), roles: ['operator'], environments: ['cloud'] }] },
      environments: { home: validEnvironment() },
    });
    expect(problems).toEqual(["api.tokens.0.environments: names unknown environment 'cloud'"]);
  });

  it('lists every problem at once, each as `path: reason`', () => {
    const problems = problemsOf({
      api: { port: 'eighty', tokens: [{ actor: 'bob', sha256: 'NOT-A-HASH', roles: [] }] },
      environments: {
        home: {
          cluster: { name: 'home', nodes: [{ name: 'pve 1', host: 'h' }] },
          tls: { fingerprint: 'AB:CD' },
          credentials: {},
        },
      },
    });
    const paths = problems.map((p) => p.slice(0, p.indexOf(': ')));
    expect(paths).toEqual(
      expect.arrayContaining([
        'api.port',
        'api.tokens.0.sha256',
        'api.tokens.0.roles',
        'environments.home.cluster.nodes.0.name',
        'environments.home.tls.fingerprint',
        'environments.home.credentials',
      ]),
    );
    for (const problem of problems) expect(problem).toMatch(/^[\w.]+: \S/);
  });

  it('says which file was wrong in the error message', () => {
    expect(() => parseConfig({ environments: {} }, '/etc/pm/bad.yaml')).toThrow(
      /invalid configuration in \/etc\/pm\/bad\.yaml:\n {2}- environments: define at least one environment/,
    );
  });
});
