/**
 * ACL rules → ipset members (SPEC §6, "ACL rule → ipset entry"). Pure: an
 * invalid rule is returned with its reason, the caller logs it; the other
 * rules still apply.
 */
import { canonicalCidr, ipFamily } from '../../../common/wire/codec.js';
import type { Rule, Rules } from '../../../common/wire/rules.js';
import type { Family, SetKind } from './names.js';

export type SetMembers = Record<SetKind, string[]>;

export interface InvalidRule {
  direction: 'inbound' | 'outbound';
  index: number;
  rule: Rule;
  reason: string;
}

/** Members of an endpoint's sets in one family: inbound rules fill `to`, outbound `from`. */
export interface AclSetMembers {
  to: SetMembers;
  from: SetMembers;
  invalid: InvalidRule[];
}

const PORT_PROTOCOLS = new Set(['tcp', 'udp', 'sctp', 'udplite']);

/** Protocol names ipset resolves itself (from /etc/protocols); others must be numbers. */
const PROTOCOL_NUMBERS: Record<string, number> = {
  icmp: 1, igmp: 2, ipip: 4, tcp: 6, egp: 8, udp: 17, ipv6: 41, rsvp: 46, gre: 47, esp: 50, ah: 51,
  'ipv6-icmp': 58, icmpv6: 58, ospf: 89, pim: 103, vrrp: 112, l2tp: 115, sctp: 132, udplite: 136,
};

/** The ICMP type names ipset understands (ipset's lib/icmp.c and lib/icmpv6.c). */
const ICMP_NAMES: Record<Family, ReadonlySet<string>> = {
  4: new Set([
    'echo-reply', 'pong', 'network-unreachable', 'host-unreachable', 'protocol-unreachable', 'port-unreachable',
    'fragmentation-needed', 'source-route-failed', 'network-unknown', 'host-unknown', 'network-prohibited',
    'host-prohibited', 'TOS-network-unreachable', 'TOS-host-unreachable', 'communication-prohibited',
    'host-precedence-violation', 'precedence-cutoff', 'source-quench', 'network-redirect', 'host-redirect',
    'TOS-network-redirect', 'TOS-host-redirect', 'echo-request', 'ping', 'router-advertisement',
    'router-solicitation', 'ttl-zero-during-transit', 'ttl-zero-during-reassembly', 'ip-header-bad',
    'required-option-missing', 'timestamp-request', 'timestamp-reply', 'address-mask-request', 'address-mask-reply',
  ]),
  6: new Set([
    'no-route', 'communication-prohibited', 'address-unreachable', 'port-unreachable', 'packet-too-big',
    'ttl-zero-during-transit', 'ttl-zero-during-reassembly', 'bad-header', 'unknown-header-type', 'unknown-option',
    'echo-request', 'ping', 'echo-reply', 'pong', 'router-solicitation', 'router-advertisement',
    'neighbour-solicitation', 'neigbour-solicitation', 'neighbour-advertisement', 'neigbour-advertisement', 'redirect',
  ]),
};

type Entry = { kind: SetKind; members: string[] } | { invalid: string };

const byteInRange = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 255;
const portInRange = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 65535;

/** The same cidrs recur across many endpoints' ACLs; parsing dominates rendering, so remember them (bounded). */
const canonicalCache = new Map<string, string | null>();
function canonicalCidrCached(cidr: string): string | null {
  let c = canonicalCache.get(cidr);
  if (c === undefined) {
    if (canonicalCache.size >= 100000) canonicalCache.clear();
    c = canonicalCidr(cidr);
    canonicalCache.set(cidr, c);
  }
  return c;
}

/** A `/0` cannot be stored in a hash:net set: it becomes the two halves. */
function cidrEntries(cidr: string, family: Family): string[] | string {
  const canonical = canonicalCidrCached(cidr);
  if (canonical === null) return `bad cidr ${JSON.stringify(cidr)}`;
  if (ipFamily(canonical) !== family) return `cidr ${canonical} is not IPv${family}`;
  if (canonical.endsWith('/0')) return family === 4 ? ['0.0.0.0/1', '128.0.0.0/1'] : ['::/1', '8000::/1'];
  return [canonical];
}

function portText(port: Rule['port']): string | null {
  if (port === null) return '0';
  if (Array.isArray(port)) {
    const [lo, hi] = port;
    return portInRange(lo) && portInRange(hi) && lo <= hi ? `${lo}-${hi}` : null;
  }
  const n = typeof port === 'number' ? port : /^\d+$/.test(port.trim()) ? Number(port.trim()) : NaN;
  return portInRange(n) ? String(n) : null;
}

function icmpText(rule: Rule, family: Family): string | null {
  const type = rule.icmp_type;
  // A name already implies its code.
  if (typeof type === 'string') return ICMP_NAMES[family].has(type) ? type : null;
  const code = rule.icmp_code ?? 0;
  return type !== undefined && byteInRange(type) && byteInRange(code) ? `${type}/${code}` : null;
}

/** Where one rule goes, or why it cannot go anywhere. */
export function ruleEntry(rule: Rule, family: Family): Entry {
  if (rule.cidr === null) return { invalid: rule.group !== null ? 'group rule without cidr' : 'rule without cidr' };
  const cidrs = cidrEntries(rule.cidr, family);
  if (typeof cidrs === 'string') return { invalid: cidrs };
  const protocol = rule.protocol;
  const hasIcmp = rule.icmp_type !== undefined || rule.icmp_code !== undefined;
  if (protocol === null) {
    if (rule.port !== null) return { invalid: 'port without protocol' };
    if (hasIcmp) return { invalid: 'icmp type without protocol icmp' };
    return { kind: 'addr', members: cidrs };
  }
  const isIcmp = family === 4 ? protocol === 'icmp' : protocol === 'icmpv6' || protocol === 'ipv6-icmp' || protocol === 'icmp';
  if (isIcmp) {
    if (rule.port !== null) return { invalid: 'port with icmp' };
    if (!hasIcmp) return { kind: 'icmp', members: cidrs };
    const icmp = icmpText(rule, family);
    if (icmp === null) return { invalid: `bad icmp type/code ${JSON.stringify([rule.icmp_type, rule.icmp_code])}` };
    const proto = family === 4 ? 'icmp' : 'icmpv6';
    return { kind: 'port', members: cidrs.map((c) => `${c},${proto}:${icmp}`) };
  }
  if (hasIcmp) return { invalid: `icmp type with protocol ${protocol}` };
  if (family === 4 && (protocol === 'icmpv6' || protocol === 'ipv6-icmp')) return { invalid: `${protocol} in IPv4 rules` };
  if (PORT_PROTOCOLS.has(protocol)) {
    const port = portText(rule.port);
    if (port === null) return { invalid: `bad port ${JSON.stringify(rule.port)}` };
    return { kind: 'port', members: cidrs.map((c) => `${c},${protocol}:${port}`) };
  }
  if (rule.port !== null) return { invalid: `port with protocol ${protocol}` };
  const number = /^\d+$/.test(protocol) ? Number(protocol) : PROTOCOL_NUMBERS[protocol];
  if (number === undefined || !byteInRange(number)) return { invalid: `unknown protocol ${protocol}` };
  return { kind: 'port', members: cidrs.map((c) => `${c},${number}:0`) };
}

const emptyMembers = (): SetMembers => ({ addr: [], port: [], icmp: [] });

function fill(rules: Rule[], family: Family, direction: InvalidRule['direction'], invalid: InvalidRule[]): SetMembers {
  const sets = { addr: new Set<string>(), port: new Set<string>(), icmp: new Set<string>() };
  rules.forEach((rule, index) => {
    const entry = ruleEntry(rule, family);
    if ('invalid' in entry) invalid.push({ direction, index, rule, reason: entry.invalid });
    else for (const m of entry.members) sets[entry.kind].add(m);
  });
  const sorted = (s: Set<string>): string[] => [...s].sort();
  return { addr: sorted(sets.addr), port: sorted(sets.port), icmp: sorted(sets.icmp) };
}

/** The set members for one family's rules; `null` rules (no ACLs yet) give empty sets: deny all. */
export function aclSetMembers(rules: Rules | null, family: Family): AclSetMembers {
  if (rules === null) return { to: emptyMembers(), from: emptyMembers(), invalid: [] };
  const invalid: InvalidRule[] = [];
  const to = fill(rules.inbound, family, 'inbound', invalid);
  const from = fill(rules.outbound, family, 'outbound', invalid);
  return { to, from, invalid };
}
