import { expect } from 'chai';
import { BirdConfigInput, BirdHost, meshFor, parseFelixTxt, renderBirdConfig } from '../../../src/lab/bird-config.js';

const host = (n: number): BirdHost => ({ host: `instance-${n}`, ip: `10.240.0.${n}` });

/** The lines of the config with indentation dropped, so rows can name whole statements. */
function statements(text: string): string[] {
  return text.split('\n').map((l) => l.trim());
}

/** The body of `protocol bgp NAME from mesh { … }`. */
function bgpProtocols(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of text.matchAll(/^protocol bgp (\S+) from mesh \{\n([^}]*)\}/gm)) out.set(m[1]!, statements(m[2]!).filter((l) => l !== ''));
  return out;
}

describe('renderBirdConfig', () => {
  const rows: { name: string; input: BirdConfigInput; has: string[]; hasNot?: string[]; sessions: Record<string, string[]> }[] = [
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
      hasNot: ['protocol kernel kernel6 {', 'ipv6 {', 'define ENDPOINT_ROUTES_V6'],
      sessions: { peer_instance_2: ['description "instance-2";', 'neighbor 10.240.0.2 as 64511;'] },
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
      name: 'an IPv6 prefix next to the IPv4 one',
      input: { self: host(1), peers: [host(2)], prefixes: ['192.168.0.0/16', 'fd00:192:168:0::/64'] },
      has: [
        'define ENDPOINT_ROUTES_V4 = [ 192.168.0.0/16{32,32} ];',
        'define ENDPOINT_ROUTES_V6 = [ fd00:192:168::/64{128,128} ];',
        'protocol kernel kernel6 {',
        'import where net ~ ENDPOINT_ROUTES_V6;',
        'export where source = RTS_INHERIT && net ~ ENDPOINT_ROUTES_V6;',
      ],
      sessions: { peer_instance_2: ['description "instance-2";', 'neighbor 10.240.0.2 as 64511;'] },
    },
    {
      name: 'custom AS, several prefixes (host bits cleared, duplicates dropped), log file, router id',
      input: { self: host(1), peers: [host(2)], asNumber: 65001, prefixes: ['10.65.0.0/16', '10.66.1.1/16', '10.66.0.0/16'], routerId: '1.2.3.4', logFile: '/var/log/bird/bird.log' },
      has: ['router id 1.2.3.4;', 'log "/var/log/bird/bird.log" 10000000 "/var/log/bird/bird.log.old" all;', 'local 10.240.0.1 as 65001;', 'define ENDPOINT_ROUTES_V4 = [ 10.65.0.0/16{32,32}, 10.66.0.0/16{32,32} ];'],
      hasNot: ['64511', '192.168.0.0'],
      sessions: { peer_instance_2: ['description "instance-2";', 'neighbor 10.240.0.2 as 65001;'] },
    },
    {
      name: 'IPv6 hosts, IPv6 prefix only',
      input: { self: { host: 'a', ip: 'fd00:198:18:0::1' }, peers: [{ host: 'b', ip: 'fd00:198:18::2' }], prefixes: ['fd00:192:168::/64'], routerId: '198.18.0.1' },
      has: ['router id 198.18.0.1;', 'local fd00:198:18::1 as 64511;', 'protocol kernel kernel6 {'],
      hasNot: ['protocol kernel kernel4 {', 'ipv4 {'],
      sessions: { peer_b: ['description "b";', 'neighbor fd00:198:18::2 as 64511;'] },
    },
    {
      name: 'host names made into distinct BIRD symbols',
      input: { self: host(1), peers: [{ host: 'web-2.example', ip: '10.240.0.2' }, { host: 'web_2_example', ip: '10.240.0.3' }] },
      has: [],
      sessions: {
        peer_web_2_example: ['description "web-2.example";', 'neighbor 10.240.0.2 as 64511;'],
        peer_web_2_example_2: ['description "web_2_example";', 'neighbor 10.240.0.3 as 64511;'],
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
    ['a peer of the other family', { self: host(1), peers: [{ host: 'b', ip: 'fd00::2' }] }, /host 'b' \(fd00::2\) is not in the address family/],
    ['an IPv6 host without router id', { self: { host: 'a', ip: 'fd00::1' }, peers: [], prefixes: ['fd00:1::/64'] }, /missing router id: 'a' has an IPv6 address/],
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
    ['two hosts', '[felix instance-1]\nip=10.240.0.2\nhost=instance-1\n\n[felix instance-2]\nip=10.240.0.3\nhost=instance-2\n', [{ host: 'instance-1', ip: '10.240.0.2' }, { host: 'instance-2', ip: '10.240.0.3' }], []],
    ['host= missing: the section name is the host, short and lower case', '[felix Instance-1.Example.com]\nip=10.240.0.2\n', [{ host: 'instance-1', ip: '10.240.0.2' }], []],
    ['endpoint sections are not hosts', '[felix a]\nip=10.0.0.1\n\n[endpoint 192_168_1_1]\nid=abc\nip=192.168.1.1\nmac=ee:ee:ee:ee:ee:01\nhost=a\n', [{ host: 'a', ip: '10.0.0.1' }], []],
    ['a bad address is a problem with file and line', '[felix a]\nip=10.0.0.1\n\n[felix b]\nip=10.0.0.256\n', [{ host: 'a', ip: '10.0.0.1' }], ['felix.txt:5: [felix] ip: not an IP address']],
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
