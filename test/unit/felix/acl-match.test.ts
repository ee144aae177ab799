/**
 * `ruleMatches` (for `calico-status explain`, issue #16): does one rule of an
 * endpoint's ACLs let a packet through, exactly as Felix programs the rule
 * (SPEC §6 "ACL rule → set entry")? Each row is also checked against
 * `renderAclRules`: a rule `ruleMatches` calls invalid is one Felix skips,
 * with the same reason, and a rule it judges is one Felix programs.
 */
import { expect } from 'chai';
import type { Acls } from '../../../src/common/wire/acl-api.js';
import { emptyRules, type Rule } from '../../../src/common/wire/rules.js';
import { protocolNumberOf, renderAclRules, ruleMatches, type PacketQuery } from '../../../src/felix/dataplane/render/acl.js';
import type { Family } from '../../../src/felix/dataplane/render/names.js';

const r = (fields: Partial<Rule>): Rule => ({ group: null, cidr: null, protocol: null, port: null, ...fields });

const tcp = (peer: string, port: number): PacketQuery => ({ peer, protocol: 6, port, icmp: null });
const udp = (peer: string, port: number): PacketQuery => ({ peer, protocol: 17, port, icmp: null });
const sctp = (peer: string, port: number): PacketQuery => ({ peer, protocol: 132, port, icmp: null });
/** An ICMP (v4) packet; ping's echo request by default. */
const icmp = (peer: string, type = 8, code = 0): PacketQuery => ({ peer, protocol: 1, port: null, icmp: { type, code } });
/** An ICMPv6 packet; ping's echo request by default. */
const icmp6 = (peer: string, type = 128, code = 0): PacketQuery => ({ peer, protocol: 58, port: null, icmp: { type, code } });
const proto = (peer: string, protocol: number): PacketQuery => ({ peer, protocol, port: null, icmp: null });

interface Row {
  name: string;
  family: Family;
  rule: Rule;
  /** Each packet with whether the rule lets it through. */
  packets: Array<[PacketQuery, boolean]>;
}

const NET = '10.0.0.0/8';
const IN = '10.1.2.3';
const OUT = '11.0.0.1';
const NET6 = 'fd00::/48';
const IN6 = 'fd00::1:2';
const OUT6 = 'fd01::1';

const rows: Row[] = [
  // ------------------------------------------------------------ protocol null: every protocol to the cidr
  {
    name: 'protocol null cidr rule: any protocol to an address inside, nothing outside',
    family: 4,
    rule: r({ cidr: NET }),
    packets: [
      [tcp(IN, 80), true],
      [udp(IN, 53), true],
      [icmp(IN), true],
      [proto(IN, 47), true],
      [sctp(IN, 9), true],
      [tcp('10.0.0.0', 1), true],
      [tcp('10.255.255.255', 1), true],
      [tcp(OUT, 80), false],
      [icmp(OUT), false],
      [tcp('9.255.255.255', 80), false],
    ],
  },
  {
    name: 'host cidr given as a bare address matches that address only',
    family: 4,
    rule: r({ cidr: '192.168.1.1' }),
    packets: [
      [tcp('192.168.1.1', 22), true],
      [tcp('192.168.1.2', 22), false],
    ],
  },
  {
    name: 'IPv4 /0 matches every IPv4 address',
    family: 4,
    rule: r({ cidr: '0.0.0.0/0' }),
    packets: [
      [tcp('0.0.0.0', 80), true],
      [tcp('8.8.8.8', 443), true],
      [icmp('127.0.0.1'), true],
      [proto('255.255.255.255', 47), true],
    ],
  },
  {
    name: 'IPv6 ::/0 matches every IPv6 address',
    family: 6,
    rule: r({ cidr: '::/0' }),
    packets: [
      [tcp('::', 80), true],
      [tcp('2001:db8::1', 443), true],
      [icmp6('fe80::1'), true],
      [tcp('ffff::1', 1), true],
    ],
  },
  {
    name: 'IPv6 cidr rule: inside yes, outside no',
    family: 6,
    rule: r({ cidr: NET6 }),
    packets: [
      [tcp(IN6, 80), true],
      [icmp6(IN6), true],
      [tcp(OUT6, 80), false],
    ],
  },

  // ------------------------------------------------------------ ports
  {
    name: 'tcp port 80 matches tcp to port 80 only',
    family: 4,
    rule: r({ cidr: NET, protocol: 'tcp', port: 80 }),
    packets: [
      [tcp(IN, 80), true],
      [tcp(IN, 79), false],
      [tcp(IN, 81), false],
      [tcp(OUT, 80), false],
      [udp(IN, 80), false],
      [sctp(IN, 80), false],
      [icmp(IN), false],
    ],
  },
  {
    name: 'tcp port range [1000, 2000] includes both bounds',
    family: 4,
    rule: r({ cidr: NET, protocol: 'tcp', port: [1000, 2000] }),
    packets: [
      [tcp(IN, 999), false],
      [tcp(IN, 1000), true],
      [tcp(IN, 1500), true],
      [tcp(IN, 2000), true],
      [tcp(IN, 2001), false],
      [udp(IN, 1500), false],
    ],
  },
  {
    name: 'a one-port range [22, 22]',
    family: 4,
    rule: r({ cidr: NET, protocol: 'tcp', port: [22, 22] }),
    packets: [
      [tcp(IN, 22), true],
      [tcp(IN, 23), false],
    ],
  },
  {
    name: 'port as the string "80"',
    family: 4,
    rule: r({ cidr: NET, protocol: 'tcp', port: '80' }),
    packets: [
      [tcp(IN, 80), true],
      [tcp(IN, 8080), false],
    ],
  },
  {
    name: 'tcp without a port (a chain rule) matches every tcp port, nothing else',
    family: 4,
    rule: r({ cidr: NET, protocol: 'tcp' }),
    packets: [
      [tcp(IN, 1), true],
      [tcp(IN, 65535), true],
      [udp(IN, 53), false],
      [icmp(IN), false],
      [tcp(OUT, 1), false],
    ],
  },
  {
    name: 'udp port 53 does not match tcp port 53',
    family: 4,
    rule: r({ cidr: NET, protocol: 'udp', port: 53 }),
    packets: [
      [udp(IN, 53), true],
      [tcp(IN, 53), false],
      [udp(IN, 54), false],
    ],
  },
  {
    name: 'sctp port 9',
    family: 4,
    rule: r({ cidr: NET, protocol: 'sctp', port: 9 }),
    packets: [
      [sctp(IN, 9), true],
      [tcp(IN, 9), false],
    ],
  },
  {
    name: 'tcp given as the number "6" with a port',
    family: 4,
    rule: r({ cidr: NET, protocol: '6', port: 22 }),
    packets: [
      [tcp(IN, 22), true],
      [tcp(IN, 23), false],
      [udp(IN, 22), false],
    ],
  },
  {
    name: 'IPv6 tcp port 443',
    family: 6,
    rule: r({ cidr: NET6, protocol: 'tcp', port: 443 }),
    packets: [
      [tcp(IN6, 443), true],
      [tcp(IN6, 80), false],
      [tcp(OUT6, 443), false],
    ],
  },

  // ------------------------------------------------------------ icmp
  {
    name: 'icmp without a type matches any icmp (echo request, echo reply), nothing else',
    family: 4,
    rule: r({ cidr: NET, protocol: 'icmp' }),
    packets: [
      [icmp(IN), true],
      [icmp(IN, 0), true],
      [icmp(IN, 3, 1), true],
      [tcp(IN, 80), false],
      [icmp(OUT), false],
    ],
  },
  {
    name: 'icmp type 8 (v4) matches echo request (code 0 by default), not echo reply nor code 1',
    family: 4,
    rule: r({ cidr: NET, protocol: 'icmp', icmp_type: 8 }),
    packets: [
      [icmp(IN, 8, 0), true],
      [icmp(IN, 0, 0), false],
      [icmp(IN, 8, 1), false],
      [tcp(IN, 8), false],
    ],
  },
  {
    name: 'icmp named type "echo-request" is 8/0',
    family: 4,
    rule: r({ cidr: NET, protocol: 'icmp', icmp_type: 'echo-request' }),
    packets: [
      [icmp(IN, 8, 0), true],
      [icmp(IN, 0, 0), false],
    ],
  },
  {
    name: 'icmp named type "echo-reply" does not match an echo request',
    family: 4,
    rule: r({ cidr: NET, protocol: 'icmp', icmp_type: 'echo-reply' }),
    packets: [
      [icmp(IN, 8, 0), false],
      [icmp(IN, 0, 0), true],
    ],
  },
  {
    name: 'icmp type 3 code 1 (host-unreachable)',
    family: 4,
    rule: r({ cidr: NET, protocol: 'icmp', icmp_type: 3, icmp_code: 1 }),
    packets: [
      [icmp(IN, 3, 1), true],
      [icmp(IN, 3, 0), false],
    ],
  },
  {
    name: '`icmp` in an IPv6 rule is ICMPv6 (58): matches an ICMPv6 echo request',
    family: 6,
    rule: r({ cidr: NET6, protocol: 'icmp' }),
    packets: [
      [icmp6(IN6), true],
      [proto(IN6, 1), false],
      [tcp(IN6, 80), false],
    ],
  },
  {
    name: 'IPv6 icmpv6 named type "echo-request" is 128',
    family: 6,
    rule: r({ cidr: NET6, protocol: 'icmpv6', icmp_type: 'echo-request' }),
    packets: [
      [icmp6(IN6, 128), true],
      [icmp6(IN6, 129), false],
    ],
  },
  {
    name: 'IPv6 icmp type 8 is not an ICMPv6 echo request',
    family: 6,
    rule: r({ cidr: NET6, protocol: 'ipv6-icmp', icmp_type: 8 }),
    packets: [
      [icmp6(IN6, 128), false],
      [icmp6(IN6, 8), true],
    ],
  },

  // ------------------------------------------------------------ other protocols by number or name
  {
    name: 'protocol 47 (gre) matches protocol 47 only',
    family: 4,
    rule: r({ cidr: NET, protocol: '47' }),
    packets: [
      [proto(IN, 47), true],
      [proto(IN, 46), false],
      [tcp(IN, 47), false],
      [proto(OUT, 47), false],
    ],
  },
  {
    name: 'protocol "gre" by name is 47',
    family: 4,
    rule: r({ cidr: NET, protocol: 'gre' }),
    packets: [
      [proto(IN, 47), true],
      [tcp(IN, 80), false],
    ],
  },
  {
    name: 'IPv6 protocol 47',
    family: 6,
    rule: r({ cidr: NET6, protocol: '47' }),
    packets: [
      [proto(IN6, 47), true],
      [icmp6(IN6), false],
    ],
  },

  // ------------------------------------------------------------ the other family's peer
  {
    name: 'an IPv4 peer never matches an IPv6 cidr of an IPv6 list, not even ::/0: false (not invalid)',
    family: 6,
    rule: r({ cidr: '::/0' }),
    packets: [
      [tcp('10.0.0.1', 80), false],
      [icmp('10.0.0.1'), false],
    ],
  },
  {
    name: 'an IPv6 peer (even IPv4-mapped) never matches an IPv4 cidr: false',
    family: 4,
    rule: r({ cidr: '0.0.0.0/0' }),
    packets: [
      [tcp('fd00::1', 80), false],
      [tcp('::ffff:10.0.0.1', 80), false],
    ],
  },
];

interface InvalidRow {
  name: string;
  family: Family;
  rule: Rule;
  reason: RegExp;
}

const invalidRows: InvalidRow[] = [
  { name: 'port without protocol', family: 4, rule: r({ cidr: NET, port: 80 }), reason: /^port without protocol$/ },
  { name: 'port with icmp', family: 4, rule: r({ cidr: NET, protocol: 'icmp', port: 8 }), reason: /^port with icmp$/ },
  { name: 'port with IPv6 icmp', family: 6, rule: r({ cidr: NET6, protocol: 'icmp', port: 8 }), reason: /^port with icmp$/ },
  { name: 'protocol 0', family: 4, rule: r({ cidr: NET, protocol: '0' }), reason: /^protocol 0 means every protocol/ },
  { name: 'a v6 cidr in the v4 list', family: 4, rule: r({ cidr: 'fd00::/8' }), reason: /^cidr fd00::\/8 is not IPv4$/ },
  { name: 'a v4 cidr in the v6 list', family: 6, rule: r({ cidr: '0.0.0.0/0' }), reason: /^cidr 0\.0\.0\.0\/0 is not IPv6$/ },
  { name: 'unknown protocol name', family: 4, rule: r({ cidr: NET, protocol: 'nosuchproto' }), reason: /^unknown protocol "nosuchproto"$/ },
  { name: 'protocol over 255', family: 4, rule: r({ cidr: NET, protocol: '256' }), reason: /is not 1\.\.255/ },
  { name: 'protocol 1 in IPv6', family: 6, rule: r({ cidr: NET6, protocol: '1' }), reason: /use icmpv6/ },
  { name: 'icmpv6 in IPv4', family: 4, rule: r({ cidr: NET, protocol: 'icmpv6' }), reason: /ipv6-icmp\) in IPv4 rules/ },
  { name: 'port with gre', family: 4, rule: r({ cidr: NET, protocol: 'gre', port: 80 }), reason: /^port with protocol gre$/ },
  { name: 'port out of range', family: 4, rule: r({ cidr: NET, protocol: 'tcp', port: 70000 }), reason: /^bad port 70000$/ },
  { name: 'reversed range', family: 4, rule: r({ cidr: NET, protocol: 'udp', port: [2000, 1000] }), reason: /^bad port \[2000,1000\]$/ },
  { name: 'icmp type with tcp', family: 4, rule: r({ cidr: NET, protocol: 'tcp', icmp_type: 8 }), reason: /^icmp type with protocol tcp$/ },
  { name: 'unknown icmp type name', family: 4, rule: r({ cidr: NET, protocol: 'icmp', icmp_type: 'nosuchtype' }), reason: /^unknown icmp type name/ },
  { name: 'no cidr', family: 4, rule: r({ protocol: 'tcp', port: 80 }), reason: /^rule without cidr$/ },
  { name: 'an unresolved group rule', family: 4, rule: r({ group: 'group1' }), reason: /^group rule without cidr$/ },
  { name: 'bad cidr', family: 4, rule: r({ cidr: '10.0.0.300/32' }), reason: /^bad cidr/ },
];

/** The rule alone as the endpoint's inbound ACLs of that family, as Felix renders them. */
function rendered(rule: Rule, family: Family) {
  const acls: Acls = { v4: emptyRules(), v6: emptyRules() };
  acls[family === 4 ? 'v4' : 'v6'].inbound = [rule];
  return renderAclRules(acls);
}

describe('ruleMatches: does one ACL rule let a packet through, as Felix programs it', () => {
  for (const row of rows) {
    describe(`IPv${row.family} ${row.name}`, () => {
      for (const [packet, want] of row.packets) {
        const what = `${packet.protocol}${packet.port !== null ? ` port ${packet.port}` : ''}${packet.icmp ? ` type ${packet.icmp.type}/${packet.icmp.code}` : ''} peer ${packet.peer}`;
        it(`${want ? 'matches' : 'does not match'} ${what}`, () => expect(ruleMatches(row.rule, row.family, packet)).to.equal(want));
      }
      it('is a rule Felix programs (not skipped)', () => expect(rendered(row.rule, row.family).invalid).to.deep.equal([]));
    });
  }

  for (const row of invalidRows) {
    it(`IPv${row.family}: ${row.name} is invalid, with the reason Felix logs when it skips it`, () => {
      const got = ruleMatches(row.rule, row.family, row.family === 4 ? tcp(IN, 80) : tcp(IN6, 80));
      expect(got).to.be.an('object').with.property('invalid').that.matches(row.reason);
      const skipped = rendered(row.rule, row.family).invalid;
      expect(skipped.map((s) => s.reason)).to.deep.equal([(got as { invalid: string }).invalid]);
    });
  }

  it('judges the rule, not the peer: an invalid rule is invalid whatever the packet', () => {
    const rule = r({ cidr: NET, port: 80 });
    for (const packet of [tcp(IN, 80), tcp(OUT, 80), icmp(IN), tcp('fd00::1', 80)])
      expect(ruleMatches(rule, 4, packet)).to.deep.equal({ invalid: 'port without protocol' });
  });
});

describe('protocolNumberOf: --protocol and rule protocols as numbers', () => {
  const cases: Array<[string, Family, number | undefined]> = [
    ['icmp', 4, 1],
    ['icmp', 6, 58],
    ['ICMP', 4, 1],
    ['icmpv6', 6, 58],
    ['ipv6-icmp', 6, 58],
    ['tcp', 4, 6],
    ['tcp', 6, 6],
    [' TCP ', 4, 6],
    ['udp', 4, 17],
    ['udp', 6, 17],
    ['sctp', 4, 132],
    ['udplite', 6, 136],
    ['gre', 4, 47],
    ['47', 4, 47],
    ['47', 6, 47],
    ['6', 4, 6],
    ['255', 4, 255],
    // not something Felix can program in that family
    ['icmpv6', 4, undefined],
    ['ipv6-icmp', 4, undefined],
    ['1', 6, undefined],
    ['0', 4, undefined],
    ['ip', 4, undefined],
    ['256', 4, undefined],
    ['nosuchproto', 4, undefined],
    ['', 4, undefined],
    ['-1', 4, undefined],
  ];
  for (const [name, family, want] of cases)
    it(`${JSON.stringify(name)} in IPv${family} → ${want ?? 'undefined'}`, () => expect(protocolNumberOf(name, family)).to.equal(want));
});
