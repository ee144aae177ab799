/**
 * An endpoint's ACLs → set members and endpoint-chain rules (SPEC §6 v2,
 * "ACL rule → set entry" and "Shared sets"). Pure: an invalid rule is
 * returned with its reason, the caller logs it; the other rules still apply.
 *
 * Why every string here is spelled the way the kernel tools print it: v2 sets
 * are named by the SHA-256 of their members, and at start-up Felix re-reads
 * them with `ipset save` and keeps a set only if its members hash to its name;
 * chain rules are compared with what `iptables-save` prints. So members are
 * written exactly as `ipset save` prints them (host without prefix, a port
 * range as one entry per port, ICMP by ipset's first name for the type/code)
 * and chain rules exactly as `iptables-save` prints them (address first,
 * host with /32 or /128, protocol by its /etc/protocols name).
 */
import ipaddr from 'ipaddr.js';
import type { Acls } from '../../../common/wire/acl-api.js';
import { canonicalCidr, ipFamily } from '../../../common/wire/codec.js';
import type { Rule, Rules } from '../../../common/wire/rules.js';
import type { Family } from './names.js';

/** protocol number → name as /etc/protocols gives it (undefined: print the number). */
export type ProtocolNames = (proto: number) => string | undefined;

export interface DirectionRules {
  /** hash:net members (protocol null rules), sorted, unique. */
  addr: string[];
  /** hash:net,port members (ports, ICMP types), sorted, unique. */
  port: string[];
  /** hash:net members for icmp/icmpv6 rules without a type, sorted, unique. */
  icmp: string[];
  /** Rules for the endpoint chain itself, iptables-save form, in ACL order, unique. */
  chain: string[];
}

export interface InvalidRule {
  family: Family;
  direction: 'inbound' | 'outbound';
  index: number;
  rule: Rule;
  reason: string;
}

export interface EndpointAclRules {
  4: { to: DirectionRules; from: DirectionRules };
  6: { to: DirectionRules; from: DirectionRules };
  invalid: InvalidRule[];
}

/**
 * Port entries one endpoint's rules may expand to, in all families and
 * directions (SPEC §6 v2). Counted as distinct set entries (an entry two rules
 * both produce is one kernel entry); ICMP type entries do not count.
 */
export const PORT_ENTRY_BUDGET = 65536;

// ---------------------------------------------------------------- protocols

interface ProtocolTable {
  names: Map<number, string>;
  numbers: Map<string, number>;
}

/** `name number [aliases…] [# comment]` per line; the first entry for a number wins, as getprotobynumber. */
function parseProtocolTable(text: string): ProtocolTable {
  const names = new Map<number, string>();
  const numbers = new Map<string, number>();
  for (const raw of text.split('\n')) {
    const hash = raw.indexOf('#');
    const fields = (hash >= 0 ? raw.slice(0, hash) : raw).trim().split(/\s+/);
    if (fields.length < 2 || !/^\d+$/.test(fields[1]!)) continue;
    const number = Number(fields[1]);
    if (!names.has(number)) names.set(number, fields[0]!);
    for (const name of [fields[0]!, ...fields.slice(2)]) {
      const key = name.toLowerCase();
      if (!numbers.has(key)) numbers.set(key, number);
    }
  }
  return { names, numbers };
}

/** Parses /etc/protocols text (comments, aliases) into a ProtocolNames; pure. */
export function parseProtocols(text: string): ProtocolNames {
  const { names } = parseProtocolTable(text);
  return (proto) => names.get(proto);
}

/** Debian netbase 6.4's /etc/protocols, without its comments. */
const NETBASE_PROTOCOLS = `
ip 0 IP
hopopt 0 HOPOPT
icmp 1 ICMP
igmp 2 IGMP
ggp 3 GGP
ipencap 4 IP-ENCAP
st 5 ST
tcp 6 TCP
egp 8 EGP
igp 9 IGP
pup 12 PUP
udp 17 UDP
hmp 20 HMP
xns-idp 22 XNS-IDP
rdp 27 RDP
iso-tp4 29 ISO-TP4
dccp 33 DCCP
xtp 36 XTP
ddp 37 DDP
idpr-cmtp 38 IDPR-CMTP
ipv6 41 IPv6
ipv6-route 43 IPv6-Route
ipv6-frag 44 IPv6-Frag
idrp 45 IDRP
rsvp 46 RSVP
gre 47 GRE
esp 50 IPSEC-ESP
ah 51 IPSEC-AH
skip 57 SKIP
ipv6-icmp 58 IPv6-ICMP
ipv6-nonxt 59 IPv6-NoNxt
ipv6-opts 60 IPv6-Opts
rspf 73 RSPF CPHB
vmtp 81 VMTP
eigrp 88 EIGRP
ospf 89 OSPFIGP
ax.25 93 AX.25
ipip 94 IPIP
etherip 97 ETHERIP
encap 98 ENCAP
pim 103 PIM
ipcomp 108 IPCOMP
vrrp 112 VRRP
l2tp 115 L2TP
isis 124 ISIS
sctp 132 SCTP
fc 133 FC
mobility-header 135 Mobility-Header
udplite 136 UDPLite
mpls-in-ip 137 MPLS-in-IP
manet 138
hip 139 HIP
shim6 140 Shim6
wesp 141 WESP
rohc 142 ROHC
ethernet 143 Ethernet
mptcp 262 MPTCP
`;

const DEFAULT_TABLE = parseProtocolTable(NETBASE_PROTOCOLS);

/** Built-in table equal to Debian netbase's /etc/protocols: used when /etc/protocols cannot be read. */
export const DEFAULT_PROTOCOL_NAMES: ProtocolNames = (proto) => DEFAULT_TABLE.names.get(proto);

/**
 * iptables-save asks getprotobynumber first and falls back to libxtables'
 * own list (xtables_chain_protos) before printing the number.
 */
const XTABLES_PROTOCOLS: ReadonlyMap<number, string> = new Map([
  [6, 'tcp'],
  [132, 'sctp'],
  [17, 'udp'],
  [136, 'udplite'],
  [1, 'icmp'],
  [58, 'ipv6-icmp'],
  [50, 'esp'],
  [51, 'ah'],
  [135, 'ipv6-mh'],
]);

/** The protocols whose rules may carry a port; as ipset prints them. */
const PORT_PROTOCOLS: ReadonlyMap<number, string> = new Map([
  [6, 'tcp'],
  [17, 'udp'],
  [132, 'sctp'],
  [136, 'udplite'],
]);

// --------------------------------------------------------------------- icmp

/** ipset's lib/icmp.c and lib/icmpv6.c, in their order: the first name of a (type, code) is the one `ipset save` prints. */
const ICMP_TABLES: Record<Family, readonly (readonly [string, number, number])[]> = {
  4: [
    ['echo-reply', 0, 0],
    ['pong', 0, 0],
    ['network-unreachable', 3, 0],
    ['host-unreachable', 3, 1],
    ['protocol-unreachable', 3, 2],
    ['port-unreachable', 3, 3],
    ['fragmentation-needed', 3, 4],
    ['source-route-failed', 3, 5],
    ['network-unknown', 3, 6],
    ['host-unknown', 3, 7],
    ['network-prohibited', 3, 9],
    ['host-prohibited', 3, 10],
    ['TOS-network-unreachable', 3, 11],
    ['TOS-host-unreachable', 3, 12],
    ['communication-prohibited', 3, 13],
    ['host-precedence-violation', 3, 14],
    ['precedence-cutoff', 3, 15],
    ['source-quench', 4, 0],
    ['network-redirect', 5, 0],
    ['host-redirect', 5, 1],
    ['TOS-network-redirect', 5, 2],
    ['TOS-host-redirect', 5, 3],
    ['echo-request', 8, 0],
    ['ping', 8, 0],
    ['router-advertisement', 9, 0],
    ['router-solicitation', 10, 0],
    ['ttl-zero-during-transit', 11, 0],
    ['ttl-zero-during-reassembly', 11, 1],
    ['ip-header-bad', 12, 0],
    ['required-option-missing', 12, 1],
    ['timestamp-request', 13, 0],
    ['timestamp-reply', 14, 0],
    ['address-mask-request', 17, 0],
    ['address-mask-reply', 18, 0],
  ],
  6: [
    ['no-route', 1, 0],
    ['communication-prohibited', 1, 1],
    ['address-unreachable', 1, 3],
    ['port-unreachable', 1, 4],
    ['packet-too-big', 2, 0],
    ['ttl-zero-during-transit', 3, 0],
    ['ttl-zero-during-reassembly', 3, 1],
    ['bad-header', 4, 0],
    ['unknown-header-type', 4, 1],
    ['unknown-option', 4, 2],
    ['echo-request', 128, 0],
    ['ping', 128, 0],
    ['echo-reply', 129, 0],
    ['pong', 129, 0],
    ['router-solicitation', 133, 0],
    ['router-advertisement', 134, 0],
    ['neighbour-solicitation', 135, 0],
    ['neigbour-solicitation', 135, 0],
    ['neighbour-advertisement', 136, 0],
    ['neigbour-advertisement', 136, 0],
    ['redirect', 137, 0],
  ],
};

interface IcmpIndex {
  /** lower-case name → [type, code] */
  byName: Map<string, readonly [number, number]>;
  /** type * 256 + code → the printed name */
  printed: Map<number, string>;
}

function icmpIndex(family: Family): IcmpIndex {
  const byName = new Map<string, readonly [number, number]>();
  const printed = new Map<number, string>();
  for (const [name, type, code] of ICMP_TABLES[family]) {
    byName.set(name.toLowerCase(), [type, code]);
    if (!printed.has(type * 256 + code)) printed.set(type * 256 + code, name);
  }
  return { byName, printed };
}

const ICMP: Record<Family, IcmpIndex> = { 4: icmpIndex(4), 6: icmpIndex(6) };
/** The protocol word of an ICMP entry in a hash:net,port set. */
const ICMP_WORD: Record<Family, string> = { 4: 'icmp', 6: 'ipv6-icmp' };

const isByte = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 255;
const isPort = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 65535;

/** `icmp:NAME` / `icmp:T/C` (`ipv6-icmp:…` in v6) as ipset prints it, with the type and code, or why not. */
function icmpEntry(rule: Rule, family: Family): { entry: string; type: number; code: number } | { invalid: string } {
  const bad = { invalid: `bad icmp type/code ${JSON.stringify([rule.icmp_type ?? null, rule.icmp_code ?? null])}` };
  let t = rule.icmp_type;
  const code = rule.icmp_code;
  if (t === undefined) return { invalid: 'icmp_code without icmp_type' };
  if (typeof t === 'string' && /^\d+$/.test(t)) t = Number(t);
  let type: number;
  let c: number;
  if (typeof t === 'string') {
    const named = ICMP[family].byName.get(t.toLowerCase());
    if (named === undefined) return { invalid: `unknown icmp${family === 6 ? 'v6' : ''} type name ${JSON.stringify(t)}` };
    [type, c] = named;
    if (code !== undefined && code !== c) return { invalid: `icmp type ${t} has code ${c}, not ${code}` };
  } else {
    type = t;
    c = code ?? 0;
    if (!isByte(type) || !isByte(c)) return bad;
  }
  return { entry: `${ICMP_WORD[family]}:${ICMP[family].printed.get(type * 256 + c) ?? `${type}/${c}`}`, type, code: c };
}

// -------------------------------------------------------------------- cidrs

/** A cidr in the forms the kernel tools print it. */
interface CidrForms {
  family: Family;
  /** hash:net entries: host without prefix, /0 as its two halves. */
  set: readonly string[];
  /** `-s`/`-d` argument as iptables-save prints it; null for /0 (no match printed). */
  chain: string | null;
}

/**
 * IPv6 text as glibc's inet_ntop writes it (ipset and iptables both print
 * through it): the first longest run of two or more zero groups compressed,
 * lower-case hex; but an address whose first six groups are exactly the zero
 * run (`::1.2.3.4`) or an IPv4-mapped one (`::ffff:1.2.3.4`) ends in a dotted
 * quad, where ipaddr.js would print `::102:304`.
 */
function ntop6(words: readonly number[]): string {
  let bestBase = -1;
  let bestLen = 0;
  let curBase = -1;
  for (let i = 0; i < 8; i++) {
    if (words[i] === 0) {
      if (curBase < 0) curBase = i;
      if (i - curBase + 1 > bestLen) {
        bestBase = curBase;
        bestLen = i - curBase + 1;
      }
    } else curBase = -1;
  }
  if (bestLen < 2) bestBase = -1;
  let out = '';
  for (let i = 0; i < 8; i++) {
    if (bestBase >= 0 && i >= bestBase && i < bestBase + bestLen) {
      if (i === bestBase) out += ':';
      continue;
    }
    if (i !== 0) out += ':';
    if (i === 6 && bestBase === 0 && (bestLen === 6 || (bestLen === 5 && words[5] === 0xffff))) {
      const [a, b] = [words[6]!, words[7]!];
      return `${out}${a >> 8}.${a & 255}.${b >> 8}.${b & 255}`;
    }
    out += words[i]!.toString(16);
  }
  if (bestBase >= 0 && bestBase + bestLen === 8) out += ':';
  return out;
}

/** `::` followed by a dotted quad and nothing else (ipaddr.js's "deprecatedTransitional"). */
const DEPRECATED_COMPATIBLE = /^::[0-9a-fx]*\.[0-9a-fx.]*$/i;

const V4_HALVES = ['0.0.0.0/1', '128.0.0.0/1'] as const;
const V6_HALVES = ['::/1', '8000::/1'] as const;

function cidrForms(cidr: string): CidrForms | string {
  const canonical = canonicalCidr(cidr);
  if (canonical === null) return `bad cidr ${JSON.stringify(cidr)}`;
  const family: Family = ipFamily(canonical);
  const slash = canonical.lastIndexOf('/');
  const len = Number(canonical.slice(slash + 1));
  if (len === 0) return { family, set: family === 4 ? V4_HALVES : V6_HALVES, chain: null };
  let addr = canonical.slice(0, slash);
  if (family === 6) {
    const words = ipaddr.IPv6.parse(addr).parts.slice();
    // ipaddr.js reads the deprecated IPv4-compatible `::1.2.3.4` as the mapped
    // `::ffff:1.2.3.4` (and so does canonicalCidr): undo that here.
    if (DEPRECATED_COMPATIBLE.test(cidr.trim().split('/')[0]!)) words[5] = 0;
    addr = ntop6(words);
  }
  const host = len === (family === 4 ? 32 : 128);
  return { family, set: [host ? addr : `${addr}/${len}`], chain: `${addr}/${len}` };
}

/** The same cidrs recur across many endpoints' ACLs; parsing dominates rendering, so remember them (bounded). */
const CIDR_CACHE_LIMIT = 100000;
const cidrCache = new Map<string, CidrForms | string>();
function cidrFormsCached(cidr: string): CidrForms | string {
  let forms = cidrCache.get(cidr);
  if (forms === undefined) {
    if (cidrCache.size >= CIDR_CACHE_LIMIT) cidrCache.clear();
    forms = cidrForms(cidr);
    cidrCache.set(cidr, forms);
  }
  return forms;
}

// -------------------------------------------------------------------- rules

/** Where one rule goes. */
type Placement =
  | { kind: 'addr' | 'icmp'; cidr: CidrForms }
  | { kind: 'icmpType'; cidr: CidrForms; entry: string; type: number; code: number }
  | { kind: 'ports'; cidr: CidrForms; proto: string; number: number; lo: number; hi: number }
  | { kind: 'chain'; cidr: CidrForms; proto: string; number: number }
  | { invalid: string };

function portRange(port: Rule['port']): [number, number] | null {
  if (port === null) return null;
  if (Array.isArray(port)) {
    const [lo, hi] = port;
    return isPort(lo) && isPort(hi) && lo <= hi ? [lo, hi] : null;
  }
  const n = typeof port === 'number' ? port : /^\d+$/.test(port.trim()) ? Number(port.trim()) : NaN;
  return isPort(n) ? [n, n] : null;
}

/** Rules name few distinct protocols: remember each one's verdict per family (bounded). */
const protocolCache: Record<Family, Map<string, number | { invalid: string }>> = { 4: new Map(), 6: new Map() };
function protocolNumberCached(protocol: string, family: Family): number | { invalid: string } {
  const cache = protocolCache[family];
  let n = cache.get(protocol);
  if (n === undefined) {
    if (cache.size >= 1000) cache.clear();
    n = protocolNumber(protocol, family);
    cache.set(protocol, n);
  }
  return n;
}

/** The protocol as a number, or why it is not one Felix can program in this family. */
function protocolNumber(protocol: string, family: Family): number | { invalid: string } {
  const p = protocol.trim().toLowerCase();
  let n: number | undefined;
  if (/^\d+$/.test(p)) n = Number(p);
  else if (p === 'icmp')
    n = family === 4 ? 1 : 58; // in a v6 list `icmp` means ICMPv6, as the prototype had it
  else if (p === 'icmpv6') n = 58;
  else n = DEFAULT_TABLE.numbers.get(p);
  if (n === undefined) return { invalid: `unknown protocol ${JSON.stringify(protocol)}` };
  if (n === 0) return { invalid: 'protocol 0 means every protocol to iptables' };
  if (n > 255) return { invalid: `protocol ${protocol} is not 1..255` };
  if (family === 6 && n === 1) return { invalid: `protocol ${protocol} (icmp) in IPv6 rules: use icmpv6` };
  if (family === 4 && n === 58) return { invalid: `protocol ${protocol} (ipv6-icmp) in IPv4 rules` };
  return n;
}

function place(rule: Rule, family: Family, protocols: ProtocolNames): Placement {
  if (rule.cidr === null) return { invalid: rule.group !== null ? 'group rule without cidr' : 'rule without cidr' };
  const cidr = cidrFormsCached(rule.cidr);
  if (typeof cidr === 'string') return { invalid: cidr };
  if (cidr.family !== family) return { invalid: `cidr ${rule.cidr} is not IPv${family}` };
  const hasIcmp = rule.icmp_type !== undefined || rule.icmp_code !== undefined;
  if (rule.protocol === null) {
    if (rule.port !== null) return { invalid: 'port without protocol' };
    if (hasIcmp) return { invalid: 'icmp type without protocol icmp' };
    return { kind: 'addr', cidr };
  }
  const n = protocolNumberCached(rule.protocol, family);
  if (typeof n !== 'number') return n;
  if (n === 1 || n === 58) {
    if (rule.port !== null) return { invalid: 'port with icmp' };
    if (!hasIcmp) return { kind: 'icmp', cidr };
    const entry = icmpEntry(rule, family);
    return 'invalid' in entry ? entry : { kind: 'icmpType', cidr, ...entry };
  }
  if (hasIcmp) return { invalid: `icmp type with protocol ${rule.protocol}` };
  const portProto = PORT_PROTOCOLS.get(n);
  if (portProto !== undefined && rule.port !== null) {
    const range = portRange(rule.port);
    if (range === null) return { invalid: `bad port ${JSON.stringify(rule.port)}` };
    return { kind: 'ports', cidr, proto: portProto, number: n, lo: range[0], hi: range[1] };
  }
  if (rule.port !== null) return { invalid: `port with protocol ${rule.protocol}` };
  return { kind: 'chain', cidr, proto: protocols(n) ?? XTABLES_PROTOCOLS.get(n) ?? String(n), number: n };
}

/**
 * The entries of one cidr entry × port range. Endpoints in the same group
 * expand the same ranges, so the strings are built once and shared (bounded
 * by the number of strings held).
 */
const RANGE_CACHE_LIMIT = 1 << 20;
const rangeCache = new Map<string, readonly string[]>();
let rangeCacheStrings = 0;
function rangeEntries(cidr: string, proto: string, lo: number, hi: number): readonly string[] {
  if (lo === hi) return [`${cidr},${proto}:${lo}`]; // as cheap to build as to look up
  const key = `${cidr},${proto}:${lo}-${hi}`;
  let entries = rangeCache.get(key);
  if (entries === undefined) {
    const prefix = `${cidr},${proto}:`;
    const list = new Array<string>(hi - lo + 1);
    for (let p = lo; p <= hi; p++) list[p - lo] = `${prefix}${p}`;
    if (rangeCacheStrings + list.length > RANGE_CACHE_LIMIT) {
      rangeCache.clear();
      rangeCacheStrings = 0;
    }
    rangeCache.set(key, list);
    rangeCacheStrings += list.length;
    entries = list;
  }
  return entries;
}

/**
 * Adds a port range's entries to `port` if the distinct new ones fit in what
 * is left of the budget; returns how many were added, or null (nothing added).
 */
function addPorts(port: Set<string>, cidrs: readonly string[], proto: string, lo: number, hi: number, left: number): number | null {
  const raw = cidrs.length * (hi - lo + 1);
  // At least raw - |port| entries are new: too many for sure, and nothing built.
  if (raw - port.size > left) return null;
  const lists = cidrs.map((c) => rangeEntries(c, proto, lo, hi));
  if (raw > left) {
    let fresh = 0;
    for (const list of lists) for (const e of list) if (!port.has(e) && ++fresh > left) return null;
  }
  const before = port.size;
  for (const list of lists) for (const e of list) port.add(e);
  return port.size - before;
}

interface Budget {
  left: number;
}

function renderDirection(
  rules: Rule[],
  family: Family,
  direction: InvalidRule['direction'],
  protocols: ProtocolNames,
  budget: Budget,
  invalid: InvalidRule[],
): DirectionRules {
  const addr = new Set<string>();
  const port = new Set<string>();
  const icmp = new Set<string>();
  const chain = new Set<string>();
  const match = direction === 'inbound' ? '-s' : '-d';
  rules.forEach((rule, index) => {
    const p = place(rule, family, protocols);
    if ('invalid' in p) {
      invalid.push({ family, direction, index, rule, reason: p.invalid });
      return;
    }
    switch (p.kind) {
      case 'addr':
      case 'icmp': {
        const into = p.kind === 'addr' ? addr : icmp;
        for (const c of p.cidr.set) into.add(c);
        break;
      }
      case 'icmpType':
        for (const c of p.cidr.set) port.add(`${c},${p.entry}`);
        break;
      case 'ports': {
        const added = addPorts(port, p.cidr.set, p.proto, p.lo, p.hi, budget.left);
        if (added === null) {
          const want = p.cidr.set.length * (p.hi - p.lo + 1);
          invalid.push({
            family,
            direction,
            index,
            rule,
            reason: `port entries over budget: rule expands to ${want}, ${budget.left} of ${PORT_ENTRY_BUDGET} left`,
          });
        } else budget.left -= added;
        break;
      }
      case 'chain':
        chain.add(p.cidr.chain === null ? `-p ${p.proto} -j RETURN` : `${match} ${p.cidr.chain} -p ${p.proto} -j RETURN`);
        break;
    }
  });
  return { addr: [...addr].sort(), port: [...port].sort(), icmp: [...icmp].sort(), chain: [...chain] };
}

const emptyDirection = (): DirectionRules => ({ addr: [], port: [], icmp: [], chain: [] });

/**
 * The whole endpoint's ACLs (both families) → set members and chain rules.
 * `acls` null (no ACLs yet) → everything empty (deny all). The port budget is
 * spent in the order v4 inbound, v4 outbound, v6 inbound, v6 outbound.
 */
export function renderAclRules(acls: Acls | null, protocols: ProtocolNames = DEFAULT_PROTOCOL_NAMES): EndpointAclRules {
  if (acls === null) {
    return { 4: { to: emptyDirection(), from: emptyDirection() }, 6: { to: emptyDirection(), from: emptyDirection() }, invalid: [] };
  }
  const invalid: InvalidRule[] = [];
  const budget: Budget = { left: PORT_ENTRY_BUDGET };
  const family = (f: Family, rules: Rules): { to: DirectionRules; from: DirectionRules } => {
    const to = renderDirection(rules.inbound, f, 'inbound', protocols, budget, invalid);
    const from = renderDirection(rules.outbound, f, 'outbound', protocols, budget, invalid);
    return { to, from };
  };
  const v4 = family(4, acls.v4);
  const v6 = family(6, acls.v6);
  return { 4: v4, 6: v6, invalid };
}

// ------------------------------------------------------------------ explain

/** One packet as `calico-status explain` asks about it, seen from one endpoint's chain. */
export interface PacketQuery {
  /** The other end: the source of an inbound packet, the destination of an outbound one. */
  peer: string;
  /** IP protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6, …). */
  protocol: number;
  /** Destination port (tcp, udp, sctp, udplite); null for other protocols. */
  port: number | null;
  /** ICMP type and code; null for other protocols. */
  icmp: { type: number; code: number } | null;
}

/**
 * Whether one rule of an endpoint's ACLs lets the packet through, exactly as
 * Felix programs it ({@link renderAclRules}): `{invalid}` when Felix skips
 * the rule. Rules skipped for the port budget are not known here; the caller
 * has Felix's list of them.
 */
export function ruleMatches(rule: Rule, family: Family, packet: PacketQuery, protocols: ProtocolNames = DEFAULT_PROTOCOL_NAMES): boolean | { invalid: string } {
  const p = place(rule, family, protocols);
  if ('invalid' in p) return p;
  const range = ipaddr.parseCIDR(canonicalCidr(rule.cidr!)!);
  const peer = ipaddr.parse(packet.peer);
  if (peer.kind() !== range[0].kind() || !peer.match(range)) return false;
  const icmpProtocol = family === 4 ? 1 : 58;
  switch (p.kind) {
    case 'addr':
      return true;
    case 'icmp':
      return packet.protocol === icmpProtocol;
    case 'icmpType':
      return packet.protocol === icmpProtocol && packet.icmp !== null && packet.icmp.type === p.type && packet.icmp.code === p.code;
    case 'ports':
      return packet.protocol === p.number && packet.port !== null && packet.port >= p.lo && packet.port <= p.hi;
    case 'chain':
      return packet.protocol === p.number;
  }
}

/** The protocol number of a name or number as rules and `--protocol` give it (`icmp` is ICMPv6 in IPv6), or undefined. */
export function protocolNumberOf(protocol: string, family: Family): number | undefined {
  const n = protocolNumber(protocol, family);
  return typeof n === 'number' ? n : undefined;
}
