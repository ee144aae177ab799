import { expect } from 'chai';
import type { Acls } from '../../../src/common/wire/acl-api.js';
import { emptyRules, type Rule } from '../../../src/common/wire/rules.js';
import {
  DEFAULT_PROTOCOL_NAMES,
  PORT_ENTRY_BUDGET,
  parseProtocols,
  renderAclRules,
  type DirectionRules,
  type EndpointAclRules,
  type ProtocolNames,
} from '../../../src/felix/dataplane/render/acl.js';
import type { Family } from '../../../src/felix/dataplane/render/names.js';

const r = (fields: Partial<Rule>): Rule => ({ group: null, cidr: null, protocol: null, port: null, ...fields });
const none = (): DirectionRules => ({ addr: [], port: [], icmp: [], chain: [] });

type Dir = 'inbound' | 'outbound';
interface Lists {
  v4?: { inbound?: Rule[]; outbound?: Rule[] };
  v6?: { inbound?: Rule[]; outbound?: Rule[] };
}
const acls = (l: Lists): Acls => ({
  v4: { ...emptyRules(), ...l.v4 },
  v6: { ...emptyRules(), ...l.v6 },
});

/** Every port from lo to hi for each cidr entry, as ipset prints them, sorted. */
const portEntries = (cidrs: string[], proto: string, lo: number, hi: number): string[] =>
  cidrs.flatMap((c) => Array.from({ length: hi - lo + 1 }, (_, i) => `${c},${proto}:${lo + i}`)).sort();

interface Row {
  name: string;
  family: Family;
  dir?: Dir;
  rules: Rule[];
  protocols?: ProtocolNames;
  /** The one direction the rules go to; every other list must come out empty. */
  want: Partial<DirectionRules>;
  /** [index, reason] of the invalid rules, in order. */
  invalid?: [number, RegExp][];
}

const T = '10.0.0.0/8';
const H = '10.0.0.1';
const T6 = 'fd00::/48';

const rows: Row[] = [
  // ------------------------------------------------------------ protocol null → addr
  { name: 'host cidr → address without prefix', family: 4, rules: [r({ cidr: '10.1.2.3/32' })], want: { addr: ['10.1.2.3'] } },
  { name: 'bare address → host', family: 4, rules: [r({ cidr: '10.1.2.3' })], want: { addr: ['10.1.2.3'] } },
  { name: 'network keeps its prefix, host bits cleared', family: 4, rules: [r({ cidr: '10.1.2.3/16' })], want: { addr: ['10.1.0.0/16'] } },
  { name: '/0 → two /1 halves', family: 4, rules: [r({ cidr: '0.0.0.0/0' })], want: { addr: ['0.0.0.0/1', '128.0.0.0/1'] } },
  { name: '/0 with host bits → two /1 halves', family: 4, rules: [r({ cidr: '10.9.9.9/0' })], want: { addr: ['0.0.0.0/1', '128.0.0.0/1'] } },
  { name: 'outbound fills from', family: 4, dir: 'outbound', rules: [r({ cidr: '10.1.2.3' })], want: { addr: ['10.1.2.3'] } },
  {
    name: 'deduplicated and sorted',
    family: 4,
    rules: [r({ cidr: '10.0.0.2' }), r({ cidr: '10.0.0.1/32' }), r({ cidr: '10.0.0.1' }), r({ cidr: '9.0.0.0/8' }), r({ cidr: '9.1.0.0/8' })],
    want: { addr: ['10.0.0.1', '10.0.0.2', '9.0.0.0/8'] },
  },
  { name: 'v6 host → compressed address without prefix', family: 6, rules: [r({ cidr: 'fd00:0:0::1/128' })], want: { addr: ['fd00::1'] } },
  { name: 'v6 bare upper-case address', family: 6, rules: [r({ cidr: 'FD00::A' })], want: { addr: ['fd00::a'] } },
  { name: 'v6 network, host bits cleared', family: 6, rules: [r({ cidr: 'fd00::1:2/48' })], want: { addr: ['fd00::/48'] } },
  { name: 'v6 /0 → two /1 halves', family: 6, rules: [r({ cidr: '::/0' })], want: { addr: ['8000::/1', '::/1'] } },
  {
    name: 'v6 first longest zero run compressed',
    family: 6,
    rules: [r({ cidr: '2001:db8:0:0:1:0:0:1' }), r({ cidr: '1:0:0:1:0:0:0:0/64' })],
    want: { addr: ['1:0:0:1::/64', '2001:db8::1:0:0:1'] },
  },
  { name: 'v6 single zero group not compressed', family: 6, rules: [r({ cidr: '1:0:1:1:1:1:1:1' })], want: { addr: ['1:0:1:1:1:1:1:1'] } },
  {
    name: 'v6 IPv4-mapped and -compatible addresses print dotted, as inet_ntop',
    family: 6,
    rules: [
      r({ cidr: '::ffff:10.0.0.1' }),
      r({ cidr: '::ffff:a00:0/104' }),
      r({ cidr: '::1.2.3.4' }),
      r({ cidr: '::2' }),
      r({ cidr: '::ffff:0:5' }),
      r({ cidr: '::/128' }),
    ],
    want: { addr: ['::', '::1.2.3.4', '::2', '::ffff:0.0.0.5', '::ffff:10.0.0.0/104', '::ffff:10.0.0.1'] },
  },
  {
    name: 'v6 IPv4-compatible network stays compatible (ipaddr.js would make it mapped); other embedded quads are hex',
    family: 6,
    rules: [r({ cidr: '::1.2.3.4/120' }), r({ cidr: '::1.2.3.4', protocol: 'gre' }), r({ cidr: '1::1.2.3.4' }), r({ cidr: '0:0:0:0:0:0:1.2.3.4/127' })],
    want: { addr: ['1::102:304', '::1.2.3.0/120', '::1.2.3.4/127'], chain: ['-s ::1.2.3.4/128 -p gre -j RETURN'] },
  },

  // ------------------------------------------------------------ cidr problems
  { name: 'no cidr', family: 4, rules: [r({ protocol: 'tcp', port: 80 })], want: {}, invalid: [[0, /^rule without cidr$/]] },
  { name: 'unresolved group', family: 6, rules: [r({ group: 'g1' })], want: {}, invalid: [[0, /^group rule without cidr$/]] },
  {
    name: 'bad cidr',
    family: 4,
    rules: [r({ cidr: '10.0.0.300/32' }), r({ cidr: '10.0.0.0/33' }), r({ cidr: '010.0.0.1' })],
    want: {},
    invalid: [
      [0, /bad cidr/],
      [1, /bad cidr/],
      [2, /bad cidr/],
    ],
  },
  { name: 'v6 cidr in the v4 list', family: 4, rules: [r({ cidr: 'fd00::/8' })], want: {}, invalid: [[0, /^cidr fd00::\/8 is not IPv4$/]] },
  {
    name: 'v4 cidr in the v6 list',
    family: 6,
    rules: [r({ cidr: '10.0.0.0/8', protocol: 'tcp' })],
    want: {},
    invalid: [[0, /^cidr 10.0.0.0\/8 is not IPv6$/]],
  },
  { name: 'port without protocol', family: 4, rules: [r({ cidr: T, port: 80 })], want: {}, invalid: [[0, /port without protocol/]] },
  {
    name: 'icmp fields without protocol',
    family: 4,
    rules: [r({ cidr: T, icmp_type: 8 }), r({ cidr: T, icmp_code: 0 })],
    want: {},
    invalid: [
      [0, /without protocol icmp/],
      [1, /without protocol icmp/],
    ],
  },

  // ------------------------------------------------------------ ports → port set
  { name: 'tcp port', family: 4, rules: [r({ cidr: T, protocol: 'tcp', port: 80 })], want: { port: ['10.0.0.0/8,tcp:80'] } },
  { name: 'udp numeric-string port on a host', family: 4, rules: [r({ cidr: H, protocol: 'udp', port: '53' })], want: { port: ['10.0.0.1,udp:53'] } },
  {
    name: 'port range → one entry per port',
    family: 4,
    rules: [r({ cidr: H, protocol: 'tcp', port: [80, 82] })],
    want: { port: ['10.0.0.1,tcp:80', '10.0.0.1,tcp:81', '10.0.0.1,tcp:82'] },
  },
  {
    name: 'port range × /0 halves',
    family: 4,
    rules: [r({ cidr: '0.0.0.0/0', protocol: 'sctp', port: [1, 2] })],
    want: { port: ['0.0.0.0/1,sctp:1', '0.0.0.0/1,sctp:2', '128.0.0.0/1,sctp:1', '128.0.0.0/1,sctp:2'] },
  },
  {
    name: 'port 0 and 65535',
    family: 4,
    rules: [r({ cidr: H, protocol: 'udplite', port: 0 }), r({ cidr: H, protocol: 'udplite', port: [65535, 65535] })],
    want: { port: ['10.0.0.1,udplite:0', '10.0.0.1,udplite:65535'] },
  },
  {
    name: 'protocol numbers 6, 17, 132, 136 are the named ones',
    family: 4,
    rules: [
      r({ cidr: H, protocol: '6', port: 1 }),
      r({ cidr: H, protocol: '17', port: 2 }),
      r({ cidr: H, protocol: '132', port: 3 }),
      r({ cidr: H, protocol: '136', port: 4 }),
    ],
    want: { port: ['10.0.0.1,sctp:3', '10.0.0.1,tcp:1', '10.0.0.1,udp:2', '10.0.0.1,udplite:4'] },
  },
  {
    name: 'sorted as strings, deduplicated across rules',
    family: 4,
    rules: [r({ cidr: H, protocol: 'tcp', port: 9 }), r({ cidr: H, protocol: 'tcp', port: [9, 10] }), r({ cidr: '10.0.0.1/32', protocol: 'tcp', port: '100' })],
    want: { port: ['10.0.0.1,tcp:10', '10.0.0.1,tcp:100', '10.0.0.1,tcp:9'] },
  },
  { name: 'v6 tcp port', family: 6, rules: [r({ cidr: 'fd00::/64', protocol: 'tcp', port: 443 })], want: { port: ['fd00::/64,tcp:443'] } },
  {
    name: 'v6 host port range, outbound',
    family: 6,
    dir: 'outbound',
    rules: [r({ cidr: 'fd00::1/128', protocol: 'udp', port: [1, 2] })],
    want: { port: ['fd00::1,udp:1', 'fd00::1,udp:2'] },
  },
  { name: 'v6 /0 port', family: 6, rules: [r({ cidr: '::/0', protocol: '6', port: 22 })], want: { port: ['8000::/1,tcp:22', '::/1,tcp:22'] } },
  {
    name: 'bad ports',
    family: 4,
    rules: [
      r({ cidr: T, protocol: 'tcp', port: 65536 }),
      r({ cidr: T, protocol: 'tcp', port: [90, 80] }),
      r({ cidr: T, protocol: 'tcp', port: 'http' }),
      r({ cidr: T, protocol: 'tcp', port: -1 }),
      r({ cidr: T, protocol: 'udp', port: [1.5, 2] }),
      r({ cidr: T, protocol: 'udp', port: '80-82' }),
      r({ cidr: T, protocol: 'udp', port: [0, 65536] }),
    ],
    want: {},
    invalid: [
      [0, /bad port/],
      [1, /bad port/],
      [2, /bad port/],
      [3, /bad port/],
      [4, /bad port/],
      [5, /bad port/],
      [6, /bad port/],
    ],
  },

  // ------------------------------------------------------------ chain rules
  { name: 'tcp all ports → chain rule', family: 4, rules: [r({ cidr: T, protocol: 'tcp' })], want: { chain: ['-s 10.0.0.0/8 -p tcp -j RETURN'] } },
  { name: 'host keeps /32 in the chain', family: 4, rules: [r({ cidr: '10.0.0.1', protocol: 'udp' })], want: { chain: ['-s 10.0.0.1/32 -p udp -j RETURN'] } },
  { name: '/0 in the chain: no -s, not split', family: 4, rules: [r({ cidr: '0.0.0.0/0', protocol: 'sctp' })], want: { chain: ['-p sctp -j RETURN'] } },
  {
    name: 'outbound chain rule matches -d',
    family: 4,
    dir: 'outbound',
    rules: [r({ cidr: '10.1.2.3/16', protocol: '136' })],
    want: { chain: ['-d 10.1.0.0/16 -p udplite -j RETURN'] },
  },
  { name: 'protocol "47" → gre', family: 4, rules: [r({ cidr: T, protocol: '47' })], want: { chain: ['-s 10.0.0.0/8 -p gre -j RETURN'] } },
  {
    name: 'other protocols by name, alias or number',
    family: 4,
    rules: [
      r({ cidr: T, protocol: 'gre' }),
      r({ cidr: '10.0.0.2', protocol: 'GRE' }),
      r({ cidr: T, protocol: 'ipsec-esp' }),
      r({ cidr: T, protocol: '41' }),
      r({ cidr: T, protocol: '4' }),
      r({ cidr: T, protocol: '047' }),
      r({ cidr: T, protocol: 'ospfigp' }),
      r({ cidr: T, protocol: '135' }),
    ],
    want: {
      chain: [
        '-s 10.0.0.0/8 -p gre -j RETURN',
        '-s 10.0.0.2/32 -p gre -j RETURN',
        '-s 10.0.0.0/8 -p esp -j RETURN',
        '-s 10.0.0.0/8 -p ipv6 -j RETURN',
        '-s 10.0.0.0/8 -p ipencap -j RETURN',
        '-s 10.0.0.0/8 -p ospf -j RETURN',
        '-s 10.0.0.0/8 -p mobility-header -j RETURN',
      ],
    },
  },
  { name: 'protocol 253 (no name) → the number', family: 4, rules: [r({ cidr: T, protocol: '253' })], want: { chain: ['-s 10.0.0.0/8 -p 253 -j RETURN'] } },
  {
    name: 'a given ProtocolNames is used',
    family: 4,
    protocols: parseProtocols('exp1 253 EXP1\n'),
    rules: [r({ cidr: T, protocol: '253' }), r({ cidr: T, protocol: 'gre' })],
    want: { chain: ['-s 10.0.0.0/8 -p exp1 -j RETURN', '-s 10.0.0.0/8 -p 47 -j RETURN'] },
  },
  {
    name: 'without /etc/protocols names, as iptables-save: libxtables names, else the number',
    family: 4,
    protocols: () => undefined,
    rules: [r({ cidr: T, protocol: 'tcp' }), r({ cidr: T, protocol: '50' }), r({ cidr: T, protocol: '135' }), r({ cidr: T, protocol: '47' })],
    want: {
      chain: ['-s 10.0.0.0/8 -p tcp -j RETURN', '-s 10.0.0.0/8 -p esp -j RETURN', '-s 10.0.0.0/8 -p ipv6-mh -j RETURN', '-s 10.0.0.0/8 -p 47 -j RETURN'],
    },
  },
  {
    name: 'chain rules in ACL order, unique',
    family: 4,
    rules: [
      r({ cidr: T, protocol: 'gre' }),
      r({ cidr: '10.1.1.1/8', protocol: 'tcp' }),
      r({ cidr: T, protocol: 'gre' }),
      r({ cidr: T, protocol: '47' }),
      r({ cidr: '9.0.0.0/8', protocol: 'gre' }),
    ],
    want: { chain: ['-s 10.0.0.0/8 -p gre -j RETURN', '-s 10.0.0.0/8 -p tcp -j RETURN', '-s 9.0.0.0/8 -p gre -j RETURN'] },
  },
  {
    name: 'v6 chain rules',
    family: 6,
    rules: [
      r({ cidr: 'fd00::1', protocol: 'tcp' }),
      r({ cidr: '::/0', protocol: 'udp' }),
      r({ cidr: T6, protocol: 'gre' }),
      r({ cidr: '::ffff:10.0.0.1', protocol: '2' }),
    ],
    want: { chain: ['-s fd00::1/128 -p tcp -j RETURN', '-p udp -j RETURN', '-s fd00::/48 -p gre -j RETURN', '-s ::ffff:10.0.0.1/128 -p igmp -j RETURN'] },
  },
  { name: 'v6 outbound chain rule', family: 6, dir: 'outbound', rules: [r({ cidr: T6, protocol: '253' })], want: { chain: ['-d fd00::/48 -p 253 -j RETURN'] } },
  {
    name: 'bad protocols',
    family: 4,
    rules: [
      r({ cidr: T, protocol: '0' }),
      r({ cidr: T, protocol: 'ip' }),
      r({ cidr: T, protocol: '256' }),
      r({ cidr: T, protocol: 'mptcp' }),
      r({ cidr: T, protocol: '-1' }),
      r({ cidr: T, protocol: 'bogus' }),
      r({ cidr: T, protocol: 'gre', port: 1 }),
      r({ cidr: T, protocol: 'gre', icmp_type: 8 }),
      r({ cidr: T, protocol: 'tcp', icmp_type: 8 }),
    ],
    want: {},
    invalid: [
      [0, /^protocol 0 means every protocol to iptables$/],
      [1, /^protocol 0 means every protocol/],
      [2, /not 1\.\.255/],
      [3, /not 1\.\.255/],
      [4, /unknown protocol/],
      [5, /unknown protocol "bogus"/],
      [6, /^port with protocol gre$/],
      [7, /^icmp type with protocol gre$/],
      [8, /^icmp type with protocol tcp$/],
    ],
  },

  // ------------------------------------------------------------ icmp
  {
    name: 'icmp without type → icmp set',
    family: 4,
    rules: [r({ cidr: T, protocol: 'icmp' }), r({ cidr: '0.0.0.0/0', protocol: 'icmp' })],
    want: { icmp: ['0.0.0.0/1', '10.0.0.0/8', '128.0.0.0/1'] },
  },
  { name: 'protocol 1 → icmp set', family: 4, rules: [r({ cidr: H, protocol: '1' })], want: { icmp: ['10.0.0.1'] } },
  {
    name: 'icmp 8, 8/0, "8", ping, PING, echo-request → one echo-request entry',
    family: 4,
    rules: [
      r({ cidr: T, protocol: 'icmp', icmp_type: 8 }),
      r({ cidr: T, protocol: 'icmp', icmp_type: 8, icmp_code: 0 }),
      r({ cidr: T, protocol: 'icmp', icmp_type: '8' }),
      r({ cidr: T, protocol: 'icmp', icmp_type: 'ping' }),
      r({ cidr: T, protocol: '1', icmp_type: 'PING' }),
      r({ cidr: T, protocol: 'icmp', icmp_type: 'echo-request', icmp_code: 0 }),
    ],
    want: { port: ['10.0.0.0/8,icmp:echo-request'] },
  },
  {
    name: 'icmp printed forms',
    family: 4,
    rules: [
      r({ cidr: H, protocol: 'icmp', icmp_type: 3, icmp_code: 4 }),
      r({ cidr: H, protocol: 'icmp', icmp_type: 200, icmp_code: 7 }),
      r({ cidr: H, protocol: 'icmp', icmp_type: 'pong' }),
      r({ cidr: H, protocol: 'icmp', icmp_type: 3, icmp_code: 8 }),
      r({ cidr: H, protocol: 'icmp', icmp_type: 'tos-host-redirect' }),
      r({ cidr: H, protocol: 'icmp', icmp_type: 255, icmp_code: 255 }),
    ],
    want: {
      port: [
        '10.0.0.1,icmp:200/7',
        '10.0.0.1,icmp:255/255',
        '10.0.0.1,icmp:3/8',
        '10.0.0.1,icmp:TOS-host-redirect',
        '10.0.0.1,icmp:echo-reply',
        '10.0.0.1,icmp:fragmentation-needed',
      ],
    },
  },
  {
    name: 'icmp type with /0',
    family: 4,
    rules: [r({ cidr: '0.0.0.0/0', protocol: 'icmp', icmp_type: 0 })],
    want: { port: ['0.0.0.0/1,icmp:echo-reply', '128.0.0.0/1,icmp:echo-reply'] },
  },
  {
    name: 'bad icmp',
    family: 4,
    rules: [
      r({ cidr: T, protocol: 'icmp', port: 80 }),
      r({ cidr: T, protocol: 'icmp', icmp_type: 'bogus' }),
      r({ cidr: T, protocol: 'icmp', icmp_type: 256 }),
      r({ cidr: T, protocol: 'icmp', icmp_type: 3, icmp_code: 256 }),
      r({ cidr: T, protocol: 'icmp', icmp_type: -1 }),
      r({ cidr: T, protocol: 'icmp', icmp_type: 1.5 }),
      r({ cidr: T, protocol: 'icmp', icmp_type: 'ping', icmp_code: 1 }),
      r({ cidr: T, protocol: 'icmp', icmp_code: 0 }),
      r({ cidr: T, protocol: 'icmp', icmp_type: 'neighbour-solicitation' }),
    ],
    want: {},
    invalid: [
      [0, /^port with icmp$/],
      [1, /unknown icmp type name "bogus"/],
      [2, /bad icmp type\/code/],
      [3, /bad icmp type\/code/],
      [4, /bad icmp type\/code/],
      [5, /bad icmp type\/code/],
      [6, /^icmp type ping has code 0, not 1$/],
      [7, /icmp_code without icmp_type/],
      [8, /unknown icmp type name/],
    ],
  },
  {
    name: 'icmpv6 in the v4 list',
    family: 4,
    rules: [r({ cidr: T, protocol: 'icmpv6' }), r({ cidr: T, protocol: 'ipv6-icmp' }), r({ cidr: T, protocol: '58' })],
    want: {},
    invalid: [
      [0, /IPv4 rules/],
      [1, /IPv4 rules/],
      [2, /IPv4 rules/],
    ],
  },
  {
    name: 'v6: icmpv6, ipv6-icmp, 58, and icmp (meaning icmpv6) without type → icmp set',
    family: 6,
    rules: [
      r({ cidr: 'fd00::1', protocol: 'icmpv6' }),
      r({ cidr: T6, protocol: 'ipv6-icmp' }),
      r({ cidr: 'fd01::/64', protocol: '58' }),
      r({ cidr: '::/0', protocol: 'icmp' }),
    ],
    want: { icmp: ['8000::/1', '::/1', 'fd00::/48', 'fd00::1', 'fd01::/64'] },
  },
  {
    name: 'v6 icmp types: first name, else type/code',
    family: 6,
    rules: [
      r({ cidr: T6, protocol: 'icmpv6', icmp_type: 128 }),
      r({ cidr: T6, protocol: 'icmp', icmp_type: 'ping' }),
      r({ cidr: T6, protocol: '58', icmp_type: 135 }),
      r({ cidr: T6, protocol: 'ipv6-icmp', icmp_type: 'neigbour-advertisement' }),
      r({ cidr: T6, protocol: 'icmpv6', icmp_type: 1, icmp_code: 2 }),
      r({ cidr: 'fd00::1', protocol: 'icmpv6', icmp_type: 200, icmp_code: 7 }),
      r({ cidr: T6, protocol: 'icmpv6', icmp_type: 'no-route', icmp_code: 0 }),
    ],
    want: {
      port: [
        'fd00::/48,ipv6-icmp:1/2',
        'fd00::/48,ipv6-icmp:echo-request',
        'fd00::/48,ipv6-icmp:neighbour-advertisement',
        'fd00::/48,ipv6-icmp:neighbour-solicitation',
        'fd00::/48,ipv6-icmp:no-route',
        'fd00::1,ipv6-icmp:200/7',
      ],
    },
  },
  {
    name: 'v6 icmp type with /0',
    family: 6,
    dir: 'outbound',
    rules: [r({ cidr: '::/0', protocol: 'icmpv6', icmp_type: 'echo-request' })],
    want: { port: ['8000::/1,ipv6-icmp:echo-request', '::/1,ipv6-icmp:echo-request'] },
  },
  {
    name: 'bad v6 icmp',
    family: 6,
    rules: [
      r({ cidr: T6, protocol: '1' }),
      r({ cidr: T6, protocol: 'icmpv6', icmp_type: 'source-quench' }),
      r({ cidr: T6, protocol: 'icmpv6', port: 1 }),
      r({ cidr: T6, protocol: 'icmpv6', icmp_type: 'ping', icmp_code: 3 }),
      r({ cidr: T6, protocol: 'icmpv6', icmp_type: 128, icmp_code: 300 }),
    ],
    want: {},
    invalid: [
      [0, /\(icmp\) in IPv6 rules/],
      [1, /unknown icmpv6 type name "source-quench"/],
      [2, /^port with icmp$/],
      [3, /has code 0, not 3/],
      [4, /bad icmp type\/code/],
    ],
  },

  // ------------------------------------------------------------ mixed
  {
    name: 'an invalid rule is skipped, the others apply',
    family: 4,
    rules: [
      r({ cidr: '10.0.0.2' }),
      r({ cidr: T, port: 1 }),
      r({ cidr: T, protocol: 'icmp' }),
      r({ cidr: T, protocol: 'tcp', port: 'x' }),
      r({ cidr: T, protocol: 'tcp', port: 22 }),
      r({ cidr: T, protocol: 'gre' }),
    ],
    want: { addr: ['10.0.0.2'], icmp: ['10.0.0.0/8'], port: ['10.0.0.0/8,tcp:22'], chain: ['-s 10.0.0.0/8 -p gre -j RETURN'] },
    invalid: [
      [1, /port without protocol/],
      [3, /bad port/],
    ],
  },
];

describe('ACL rules → set members and chain rules (SPEC §6 v2)', () => {
  for (const row of rows) {
    const dir = row.dir ?? 'inbound';
    it(`v${row.family} ${dir}: ${row.name}`, () => {
      const list = { [dir]: row.rules };
      const got = renderAclRules(acls(row.family === 4 ? { v4: list } : { v6: list }), row.protocols);
      for (const f of [4, 6] as const) {
        for (const d of ['to', 'from'] as const) {
          const isRow = f === row.family && d === (dir === 'inbound' ? 'to' : 'from');
          expect(got[f][d], `v${f} ${d}`).to.deep.equal(isRow ? { ...none(), ...row.want } : none());
        }
      }
      const invalid = row.invalid ?? [];
      expect(got.invalid.map((i) => [i.family, i.direction, i.index])).to.deep.equal(invalid.map(([index]) => [row.family, dir, index]));
      got.invalid.forEach((i, n) => {
        expect(i.rule).to.equal(row.rules[i.index]);
        expect(i.reason).to.match(invalid[n]![1]);
      });
    });
  }

  it('no ACLs yet → every list empty (deny all)', () => {
    expect(renderAclRules(null)).to.deep.equal({ 4: { to: none(), from: none() }, 6: { to: none(), from: none() }, invalid: [] });
  });

  it('both families and directions at once; invalid rules listed v4 in, v4 out, v6 in, v6 out with their index', () => {
    const bad4in = r({ cidr: 'fd00::1' });
    const bad4out = r({ cidr: T, protocol: '0' });
    const bad6in = r({ cidr: T6, protocol: 'icmpv6', icmp_type: 'bogus' });
    const bad6out = r({});
    const got: EndpointAclRules = renderAclRules(
      acls({
        v4: {
          inbound: [r({ cidr: H }), bad4in, r({ cidr: T, protocol: 'udp', port: 53 })],
          outbound: [bad4out, r({ cidr: '0.0.0.0/0', protocol: 'tcp' }), r({ cidr: T, protocol: 'icmp' })],
        },
        v6: {
          inbound: [bad6in, r({ cidr: 'fd00::1', protocol: 'icmpv6', icmp_type: 128 }), r({ cidr: T6, protocol: 'gre' })],
          outbound: [r({ cidr: '::/0' }), bad6out],
        },
      }),
    );
    expect(got).to.deep.equal({
      4: {
        to: { addr: ['10.0.0.1'], port: ['10.0.0.0/8,udp:53'], icmp: [], chain: [] },
        from: { addr: [], port: [], icmp: ['10.0.0.0/8'], chain: ['-p tcp -j RETURN'] },
      },
      6: {
        to: { addr: [], port: ['fd00::1,ipv6-icmp:echo-request'], icmp: [], chain: ['-s fd00::/48 -p gre -j RETURN'] },
        from: { addr: ['8000::/1', '::/1'], port: [], icmp: [], chain: [] },
      },
      invalid: [
        { family: 4, direction: 'inbound', index: 1, rule: bad4in, reason: 'cidr fd00::1 is not IPv4' },
        { family: 4, direction: 'outbound', index: 0, rule: bad4out, reason: 'protocol 0 means every protocol to iptables' },
        { family: 6, direction: 'inbound', index: 0, rule: bad6in, reason: 'unknown icmpv6 type name "bogus"' },
        { family: 6, direction: 'outbound', index: 1, rule: bad6out, reason: 'rule without cidr' },
      ],
    });
  });
});

describe('port entry budget (SPEC §6 v2): 65536 entries per endpoint, all families and directions', () => {
  const tcpAll = (cidr: string): Rule => r({ cidr, protocol: 'tcp', port: [0, 65535] });
  const ip = (n: number): string => `10.0.0.${n}`;

  it('is 65536', () => expect(PORT_ENTRY_BUDGET).to.equal(65536));

  it('16 hosts × [0, 65535]: the first rule fits exactly, the other 15 are refused', () => {
    const rules = Array.from({ length: 16 }, (_, i) => tcpAll(ip(i + 1)));
    const got = renderAclRules(acls({ v4: { inbound: rules } }));
    expect(got[4].to.port).to.deep.equal(portEntries([ip(1)], 'tcp', 0, 65535));
    expect(got[4].to.port).to.have.length(65536);
    expect(got.invalid.map((i) => [i.index, i.reason])).to.deep.equal(
      Array.from({ length: 15 }, (_, i) => [i + 1, 'port entries over budget: rule expands to 65536, 0 of 65536 left']),
    );
  });

  it('a /0 × [0, 65535] is two halves: 131072 entries, refused; a host rule after it still fits', () => {
    const got = renderAclRules(acls({ v4: { inbound: [tcpAll('0.0.0.0/0'), tcpAll(ip(1)), tcpAll(ip(2))] } }));
    expect(got[4].to.port).to.deep.equal(portEntries([ip(1)], 'tcp', 0, 65535));
    expect(got.invalid.map((i) => [i.index, i.reason])).to.deep.equal([
      [0, 'port entries over budget: rule expands to 131072, 65536 of 65536 left'],
      [2, 'port entries over budget: rule expands to 65536, 0 of 65536 left'],
    ]);
  });

  it('a /0 × [0, 32767] is exactly 65536 entries: accepted; × [0, 32768] is 65538: refused', () => {
    const half = renderAclRules(acls({ v4: { inbound: [r({ cidr: '0.0.0.0/0', protocol: 'udp', port: [0, 32767] })] } }));
    expect(half[4].to.port).to.deep.equal(portEntries(['0.0.0.0/1', '128.0.0.0/1'], 'udp', 0, 32767));
    expect(half.invalid).to.deep.equal([]);
    const over = renderAclRules(acls({ v4: { inbound: [r({ cidr: '0.0.0.0/0', protocol: 'udp', port: [0, 32768] })] } }));
    expect(over[4].to.port).to.deep.equal([]);
    expect(over.invalid.map((i) => i.reason)).to.deep.equal(['port entries over budget: rule expands to 65538, 65536 of 65536 left']);
  });

  it('across families and directions: a rule of exactly the remaining budget is accepted, one more entry is refused', () => {
    const got = renderAclRules(
      acls({
        v4: { inbound: [r({ cidr: ip(1), protocol: 'tcp', port: [0, 65525] })], outbound: [r({ cidr: ip(2), protocol: 'udp', port: [1, 10] })] },
        v6: { inbound: [r({ cidr: 'fd00::1', protocol: 'tcp', port: 80 })] },
      }),
    );
    expect(got[4].to.port).to.deep.equal(portEntries([ip(1)], 'tcp', 0, 65525));
    expect(got[4].from.port).to.deep.equal(portEntries([ip(2)], 'udp', 1, 10));
    expect(got[6].to.port).to.deep.equal([]);
    expect(got.invalid.map((i) => [i.family, i.direction, i.index, i.reason])).to.deep.equal([
      [6, 'inbound', 0, 'port entries over budget: rule expands to 1, 0 of 65536 left'],
    ]);
  });

  it('a refused rule spends nothing: the rules after it still fit, up to the last entry', () => {
    const got = renderAclRules(
      acls({
        v4: { inbound: [r({ cidr: ip(1), protocol: 'tcp', port: [0, 65525] })], outbound: [r({ cidr: ip(2), protocol: 'udp', port: [1, 11] })] },
        v6: {
          inbound: [r({ cidr: 'fd00::1', protocol: 'tcp', port: 80 })],
          outbound: [r({ cidr: T6, protocol: 'sctp', port: [1, 9] }), r({ cidr: T6, protocol: 'tcp', port: 1 })],
        },
      }),
    );
    expect(got[4].from.port).to.deep.equal([]);
    expect(got[6].to.port).to.deep.equal(['fd00::1,tcp:80']);
    expect(got[6].from.port).to.deep.equal(portEntries([T6], 'sctp', 1, 9));
    expect(got.invalid.map((i) => [i.family, i.direction, i.index, i.reason])).to.deep.equal([
      [4, 'outbound', 0, 'port entries over budget: rule expands to 11, 10 of 65536 left'],
      [6, 'outbound', 1, 'port entries over budget: rule expands to 1, 0 of 65536 left'],
    ]);
  });

  it('counts distinct set entries: entries already in the set cost nothing', () => {
    const got = renderAclRules(
      acls({
        v4: {
          inbound: [
            r({ cidr: ip(1), protocol: 'tcp', port: [0, 65534] }), // 65535: one left
            r({ cidr: ip(1), protocol: 'tcp', port: [65530, 65535] }), // 6 entries, 1 new: fits
            r({ cidr: '10.0.0.1/32', protocol: 'tcp', port: '80' }), // nothing new: fits
            r({ cidr: ip(1), protocol: 'udp', port: 1 }), // 1 new: refused
          ],
        },
      }),
    );
    expect(got[4].to.port).to.deep.equal(portEntries([ip(1)], 'tcp', 0, 65535));
    expect(got.invalid.map((i) => [i.index, i.reason])).to.deep.equal([[3, 'port entries over budget: rule expands to 1, 0 of 65536 left']]);
  });

  it('icmp types, addresses and chain rules do not count', () => {
    const got = renderAclRules(
      acls({
        v4: { inbound: [tcpAll(ip(1)), r({ cidr: ip(1), protocol: 'icmp', icmp_type: 8 }), r({ cidr: ip(2) }), r({ cidr: ip(2), protocol: 'udp' })] },
      }),
    );
    expect(got[4].to.port).to.deep.equal([...portEntries([ip(1)], 'tcp', 0, 65535), '10.0.0.1,icmp:echo-request'].sort());
    expect(got[4].to.addr).to.deep.equal([ip(2)]);
    expect(got[4].to.chain).to.deep.equal(['-s 10.0.0.2/32 -p udp -j RETURN']);
    expect(got.invalid).to.deep.equal([]);
  });

  it('is per call: a second endpoint gets its own budget', () => {
    const a = acls({ v4: { inbound: [tcpAll(ip(1))] } });
    renderAclRules(a);
    expect(renderAclRules(a)[4].to.port).to.have.length(65536);
  });
});

describe('protocol names (/etc/protocols)', () => {
  const SAMPLE = [
    '# Internet (IP) protocols',
    '#',
    'ip\t0\tIP\t\t# internet protocol, pseudo protocol number',
    'hopopt\t0\tHOPOPT\t\t# IPv6 Hop-by-Hop Option [RFC1883]',
    'tcp\t6\tTCP\t\t# transmission control protocol',
    '   # an indented comment 17',
    'rspf\t73\tRSPF CPHB\t# Radio Shortest Path First (officially CPHB)',
    'manet\t138\t\t\t# MANET Protocols [RFC5498]',
    'gre 47 GRE# no space before the comment',
    'notanumber x',
    'lonely',
    '',
  ].join('\n');

  it('parseProtocols: first name per number, comments and aliases ignored for printing', () => {
    const names = parseProtocols(SAMPLE);
    const got = [0, 1, 6, 17, 47, 73, 138, 253].map((n) => [n, names(n)]);
    expect(got).to.deep.equal([
      [0, 'ip'],
      [1, undefined],
      [6, 'tcp'],
      [17, undefined],
      [47, 'gre'],
      [73, 'rspf'],
      [138, 'manet'],
      [253, undefined],
    ]);
  });

  it('parseProtocols of empty text names nothing', () => {
    expect(parseProtocols('')(6)).to.equal(undefined);
  });

  it('DEFAULT_PROTOCOL_NAMES is Debian netbase', () => {
    const want: [number, string | undefined][] = [
      [0, 'ip'],
      [1, 'icmp'],
      [2, 'igmp'],
      [4, 'ipencap'],
      [6, 'tcp'],
      [8, 'egp'],
      [17, 'udp'],
      [41, 'ipv6'],
      [43, 'ipv6-route'],
      [44, 'ipv6-frag'],
      [46, 'rsvp'],
      [47, 'gre'],
      [50, 'esp'],
      [51, 'ah'],
      [58, 'ipv6-icmp'],
      [59, 'ipv6-nonxt'],
      [60, 'ipv6-opts'],
      [89, 'ospf'],
      [94, 'ipip'],
      [103, 'pim'],
      [112, 'vrrp'],
      [115, 'l2tp'],
      [132, 'sctp'],
      [135, 'mobility-header'],
      [136, 'udplite'],
      [143, 'ethernet'],
      [253, undefined],
      [255, undefined],
    ];
    expect(want.map(([n]) => [n, DEFAULT_PROTOCOL_NAMES(n)])).to.deep.equal(want);
  });
});
