import { expect } from 'chai';
import { BirdConfigInput, BirdHost, meshFor, parseFelixTxt, renderBirdConfig } from '../../../src/lab/bird-config.js';

const host = (n: number): BirdHost => ({ host: `instance-${n}`, ip: `10.240.0.${n}` });
/** A host with an IPv6 fabric address beside its IPv4 one (felix.txt `ip6=`). */
const dualHost = (n: number): BirdHost => ({ ...host(n), ip6: `fd00:198:18::${n}` });

/** The lines of the config with indentation dropped, so rows can name whole statements. */
function statements(text: string): string[] {
  return text.split('\n').map((l) => l.trim());
}

/** The body of `protocol bgp NAME from mesh { … }` (sessions over `ip`) and `… from mesh6 { … }` (over `ip6`, named `NAME from mesh6`). */
function bgpProtocols(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of text.matchAll(/^protocol bgp (\S+) from (mesh6?) \{\n([^}]*)\}/gm))
    out.set(
      m[2] === 'mesh' ? m[1]! : `${m[1]} from ${m[2]}`,
      statements(m[3]!).filter((l) => l !== ''),
    );
  return out;
}

/** The channels (`ipv4 {`, `ipv6 {`) each `template bgp NAME` opens. */
function templateChannels(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const m of text.matchAll(/^template bgp (\S+) \{\n([\s\S]*?)\n\}/gm)) out[m[1]!] = statements(m[2]!).filter((l) => /^ipv[46] \{$/.test(l));
  return out;
}

describe('renderBirdConfig', () => {
  const rows: {
    name: string;
    input: BirdConfigInput;
    has: string[];
    hasNot?: string[];
    sessions: Record<string, string[]>;
    templates?: Record<string, string[]>;
  }[] = [
    {
      name: '2 hosts',
      input: { self: host(1), peers: [host(2)] },
      has: [
        'router id 10.240.0.1;',
        'log stderr all;',
        'define ENDPOINT_ROUTES_V4 = [ 192.168.0.0/16{32,32} ];',
        'protocol kernel kernel4 {',
        'learn;',
        'scan time 1;',
        'import where net ~ ENDPOINT_ROUTES_V4;',
        'export where source = RTS_BGP;',
        'local 10.240.0.1 as 64511;',
        'direct;',
        'next hop self;',
        'export where source = RTS_INHERIT && net ~ ENDPOINT_ROUTES_V4;',
      ],
      hasNot: ['protocol kernel kernel6 {', 'ipv6 {', 'define ENDPOINT_ROUTES_V6', 'mesh6'],
      sessions: { peer_instance_2: ['description "instance-2";', 'neighbor 10.240.0.2 as 64511;'] },
      templates: { mesh: ['ipv4 {'] },
    },
    {
      name: '3 hosts: a session to each other host, none to itself',
      input: { self: host(2), peers: [host(1), host(3), host(2)] },
      has: ['router id 10.240.0.2;', 'local 10.240.0.2 as 64511;'],
      sessions: {
        peer_instance_1: ['description "instance-1";', 'neighbor 10.240.0.1 as 64511;'],
        peer_instance_3: ['description "instance-3";', 'neighbor 10.240.0.3 as 64511;'],
      },
    },
    {
      name: 'dual-stack hosts (ip6), no prefixes given: both default ranges, an IPv6 session per peer over the IPv6 addresses',
      input: { self: dualHost(1), peers: [dualHost(2), dualHost(3)] },
      has: [
        'router id 10.240.0.1;',
        '# iBGP full mesh in AS 64511; container prefixes: 192.168.0.0/16, fd00:192:168::/48.',
        'define ENDPOINT_ROUTES_V4 = [ 192.168.0.0/16{32,32} ];',
        'define ENDPOINT_ROUTES_V6 = [ fd00:192:168::/48{128,128} ];',
        'protocol kernel kernel4 {',
        'protocol kernel kernel6 {',
        'import where net ~ ENDPOINT_ROUTES_V6;',
        'template bgp mesh {',
        'local 10.240.0.1 as 64511;',
        'template bgp mesh6 {',
        'local fd00:198:18::1 as 64511;',
        'export where source = RTS_INHERIT && net ~ ENDPOINT_ROUTES_V6;',
      ],
      sessions: {
        peer_instance_2: ['description "instance-2";', 'neighbor 10.240.0.2 as 64511;'],
        peer_instance_3: ['description "instance-3";', 'neighbor 10.240.0.3 as 64511;'],
        'peer_instance_2_v6 from mesh6': ['description "instance-2";', 'neighbor fd00:198:18::2 as 64511;'],
        'peer_instance_3_v6 from mesh6': ['description "instance-3";', 'neighbor fd00:198:18::3 as 64511;'],
      },
      templates: { mesh: ['ipv4 {'], mesh6: ['ipv6 {'] },
    },
    {
      name: 'an IPv6 prefix next to the IPv4 one, hosts with ip6',
      input: { self: dualHost(1), peers: [dualHost(2)], prefixes: ['192.168.0.0/16', 'fd00:192:168:0::/64'] },
      has: [
        'define ENDPOINT_ROUTES_V4 = [ 192.168.0.0/16{32,32} ];',
        'define ENDPOINT_ROUTES_V6 = [ fd00:192:168::/64{128,128} ];',
        'protocol kernel kernel6 {',
        'import where net ~ ENDPOINT_ROUTES_V6;',
        'export where source = RTS_INHERIT && net ~ ENDPOINT_ROUTES_V6;',
      ],
      sessions: {
        peer_instance_2: ['description "instance-2";', 'neighbor 10.240.0.2 as 64511;'],
        'peer_instance_2_v6 from mesh6': ['description "instance-2";', 'neighbor fd00:198:18::2 as 64511;'],
      },
      templates: { mesh: ['ipv4 {'], mesh6: ['ipv6 {'] },
    },
    {
      name: 'hosts with ip6 but only IPv4 prefixes given: no IPv6 at all',
      input: { self: dualHost(1), peers: [dualHost(2)], prefixes: ['192.168.0.0/16'] },
      has: ['define ENDPOINT_ROUTES_V4 = [ 192.168.0.0/16{32,32} ];'],
      hasNot: ['ipv6', 'mesh6', 'fd00'],
      sessions: { peer_instance_2: ['description "instance-2";', 'neighbor 10.240.0.2 as 64511;'] },
    },
    {
      name: 'hosts with ip6, only an IPv6 prefix given: IPv6 sessions only, the router id still the IPv4 address',
      input: { self: dualHost(1), peers: [dualHost(2)], prefixes: ['fd00:192:168::/48'] },
      has: ['router id 10.240.0.1;', 'template bgp mesh6 {', 'protocol kernel kernel6 {'],
      hasNot: ['ipv4 {', 'template bgp mesh {', 'kernel4'],
      sessions: { 'peer_instance_2_v6 from mesh6': ['description "instance-2";', 'neighbor fd00:198:18::2 as 64511;'] },
      templates: { mesh6: ['ipv6 {'] },
    },
    {
      name: 'custom AS, several prefixes (host bits cleared, duplicates dropped), log file, router id',
      input: {
        self: host(1),
        peers: [host(2)],
        asNumber: 65001,
        prefixes: ['10.65.0.0/16', '10.66.1.1/16', '10.66.0.0/16'],
        routerId: '1.2.3.4',
        logFile: '/var/log/bird/bird.log',
      },
      has: [
        'router id 1.2.3.4;',
        'log "/var/log/bird/bird.log" 10000000 "/var/log/bird/bird.log.old" all;',
        'local 10.240.0.1 as 65001;',
        'define ENDPOINT_ROUTES_V4 = [ 10.65.0.0/16{32,32}, 10.66.0.0/16{32,32} ];',
      ],
      hasNot: ['64511', '192.168.0.0'],
      sessions: { peer_instance_2: ['description "instance-2";', 'neighbor 10.240.0.2 as 65001;'] },
    },
    {
      name: 'IPv6 hosts, IPv6 prefix only',
      input: {
        self: { host: 'a', ip: 'fd00:198:18:0::1' },
        peers: [{ host: 'b', ip: 'fd00:198:18::2' }],
        prefixes: ['fd00:192:168::/64'],
        routerId: '198.18.0.1',
      },
      has: ['router id 198.18.0.1;', 'local fd00:198:18::1 as 64511;', 'protocol kernel kernel6 {'],
      hasNot: ['protocol kernel kernel4 {', 'ipv4 {', 'mesh6'],
      sessions: { peer_b: ['description "b";', 'neighbor fd00:198:18::2 as 64511;'] },
      templates: { mesh: ['ipv6 {'] },
    },
    {
      name: 'IPv6 hosts, no prefixes given: the IPv6 default range only',
      input: { self: { host: 'a', ip: 'fd00:198:18::1' }, peers: [{ host: 'b', ip: 'fd00:198:18::2' }], routerId: '198.18.0.1' },
      has: ['define ENDPOINT_ROUTES_V6 = [ fd00:192:168::/48{128,128} ];'],
      hasNot: ['ipv4 {', 'ENDPOINT_ROUTES_V4'],
      sessions: { peer_b: ['description "b";', 'neighbor fd00:198:18::2 as 64511;'] },
    },
    {
      name: 'host names made into distinct BIRD symbols',
      input: {
        self: host(1),
        peers: [
          { host: 'web-2.example', ip: '10.240.0.2' },
          { host: 'web_2_example', ip: '10.240.0.3' },
        ],
      },
      has: [],
      sessions: {
        peer_web_2_example: ['description "web-2.example";', 'neighbor 10.240.0.2 as 64511;'],
        peer_web_2_example_2: ['description "web_2_example";', 'neighbor 10.240.0.3 as 64511;'],
      },
    },
    {
      name: 'an IPv6 session name that another host’s name would give: still distinct',
      input: {
        self: dualHost(1),
        peers: [
          { ...dualHost(2), host: 'b' },
          { ...dualHost(3), host: 'b_v6' },
        ],
      },
      has: [],
      sessions: {
        peer_b: ['description "b";', 'neighbor 10.240.0.2 as 64511;'],
        peer_b_v6: ['description "b_v6";', 'neighbor 10.240.0.3 as 64511;'],
        'peer_b_v6_2 from mesh6': ['description "b";', 'neighbor fd00:198:18::2 as 64511;'],
        'peer_b_v6_v6 from mesh6': ['description "b_v6";', 'neighbor fd00:198:18::3 as 64511;'],
      },
    },
  ];

  for (const row of rows) {
    it(row.name, () => {
      const text = renderBirdConfig(row.input);
      const lines = statements(text);
      for (const s of row.has) expect(lines, s).to.include(s);
      for (const s of row.hasNot ?? []) expect(text, s).to.not.include(s);
      expect(Object.fromEntries(bgpProtocols(text))).to.deep.equal(row.sessions);
      if (row.templates) expect(templateChannels(text), 'channels per template').to.deep.equal(row.templates);
    });
  }

  it('is deterministic', () => {
    const input = { self: host(1), peers: [host(2), host(3)] };
    expect(renderBirdConfig(input)).to.equal(renderBirdConfig(structuredClone(input)));
  });

  const bad: [string, BirdConfigInput, RegExp][] = [
    ['a prefix that is an address', { self: host(1), peers: [], prefixes: ['192.168.0.0'] }, /bad prefix '192\.168\.0\.0'/],
    ['a prefix that is not one', { self: host(1), peers: [], prefixes: ['192.168.0.0/33'] }, /bad prefix/],
    ['no prefix', { self: host(1), peers: [], prefixes: [] }, /no container prefix/],
    ['AS 0', { self: host(1), peers: [], asNumber: 0 }, /bad AS number '0'/],
    ['AS too large', { self: host(1), peers: [], asNumber: 2 ** 32 }, /bad AS number/],
    [
      'a peer of the other family',
      { self: host(1), peers: [{ host: 'b', ip: 'fd00::2' }] },
      /host 'b' has no IPv4 address for the IPv4 container prefixes 192\.168\.0\.0\/16/,
    ],
    [
      'an IPv6 prefix, a peer without ip6',
      { self: dualHost(1), peers: [host(2)], prefixes: ['fd00:192:168::/64'] },
      /host 'instance-2' has no IPv6 address \(ip6= in felix\.txt\) for the IPv6 container prefixes fd00:192:168::\/64/,
    ],
    [
      'an IPv6 prefix, this host without ip6',
      { self: host(1), peers: [dualHost(2)], prefixes: ['192.168.0.0/16', 'fd00:192:168::/64'] },
      /host 'instance-1' has no IPv6 address/,
    ],
    ['ip6 that is IPv4', { self: { ...host(1), ip6: '10.0.0.1' }, peers: [] }, /bad IPv6 address '10\.0\.0\.1' for host 'instance-1'/],
    [
      'ip6 beside an IPv6 ip',
      { self: { host: 'a', ip: 'fd00::1', ip6: 'fd00::2' }, peers: [], routerId: '1.2.3.4' },
      /bad IPv6 address 'fd00::2' for host 'a' \(an IPv6 address beside an IPv4 ip\)/,
    ],
    [
      'an IPv6 host without router id',
      { self: { host: 'a', ip: 'fd00::1' }, peers: [], prefixes: ['fd00:1::/64'] },
      /missing router id: 'a' has an IPv6 address/,
    ],
    ['an IPv6 router id', { self: host(1), peers: [], routerId: 'fd00::1' }, /bad router id 'fd00::1'/],
    ['a bad host address', { self: { host: 'a', ip: '10.0.0.300' }, peers: [] }, /bad address '10\.0\.0\.300' for host 'a'/],
  ];
  for (const [name, input, message] of bad) {
    it(`rejects ${name}`, () => {
      expect(() => renderBirdConfig(input)).to.throw(message);
    });
  }
});

describe('parseFelixTxt', () => {
  const rows: [string, string, BirdHost[], string[]][] = [
    [
      'two hosts',
      '[felix instance-1]\nip=10.240.0.2\nhost=instance-1\n\n[felix instance-2]\nip=10.240.0.3\nhost=instance-2\n',
      [
        { host: 'instance-1', ip: '10.240.0.2' },
        { host: 'instance-2', ip: '10.240.0.3' },
      ],
      [],
    ],
    [
      'host= missing: the section name is the host, short and lower case',
      '[felix Instance-1.Example.com]\nip=10.240.0.2\n',
      [{ host: 'instance-1', ip: '10.240.0.2' }],
      [],
    ],
    [
      'ip6= is the host’s IPv6 address',
      '[felix a]\nip=10.0.0.1\nip6=fd00::1\n\n[felix b]\nip=10.0.0.2\n',
      [
        { host: 'a', ip: '10.0.0.1', ip6: 'fd00::1' },
        { host: 'b', ip: '10.0.0.2' },
      ],
      [],
    ],
    [
      'endpoint sections are not hosts',
      '[felix a]\nip=10.0.0.1\n\n[endpoint 192_168_1_1]\nid=abc\nip=192.168.1.1\nmac=ee:ee:ee:ee:ee:01\nhost=a\n',
      [{ host: 'a', ip: '10.0.0.1' }],
      [],
    ],
    [
      'a bad address is a problem with file and line',
      '[felix a]\nip=10.0.0.1\n\n[felix b]\nip=10.0.0.256\n',
      [{ host: 'a', ip: '10.0.0.1' }],
      ['felix.txt:5: [felix] ip: not an IP address'],
    ],
    ['a missing address', '[felix a]\nhost=a\n', [], ["felix.txt:1: [felix] missing 'ip'"]],
    ['not INI', 'ip=10.0.0.1\n', [], ['felix.txt:1: a key outside any section']],
  ];
  for (const [name, text, hosts, problems] of rows) {
    it(name, () => {
      const r = parseFelixTxt(text, 'felix.txt');
      expect(r.hosts).to.deep.equal(hosts);
      expect(r.problems).to.deep.equal(problems);
    });
  }
});

describe('meshFor', () => {
  const hosts = [host(1), host(2), host(3)];
  const rows: [string, string, string, string[]][] = [
    ['a plain name', 'instance-2', 'instance-2', ['instance-1', 'instance-3']],
    ['a name with a domain, any case', 'Instance-3.lab.example', 'instance-3', ['instance-1', 'instance-2']],
  ];
  for (const [name, selfName, self, peers] of rows) {
    it(name, () => {
      const m = meshFor(hosts, selfName);
      expect(m.self.host).to.equal(self);
      expect(m.peers.map((p) => p.host)).to.deep.equal(peers);
    });
  }
  it('names the hosts it has when this one is missing', () => {
    expect(() => meshFor(hosts, 'instance-9')).to.throw("host 'instance-9' is not in the host list (have instance-1, instance-2, instance-3)");
    expect(() => meshFor([], 'a')).to.throw('(have none)');
  });
});
