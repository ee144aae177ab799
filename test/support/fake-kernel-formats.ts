/**
 * How the fake kernel reads text the way the real tools do, checked against
 * iptables v1.8.9 (nf_tables) and ipset v7.17 in a throwaway namespace:
 * an iptables rule becomes the canonical text `iptables-save` would print
 * (address prefixes, protocol names, implicit `-m tcp`, marks in hex…) with
 * its target and referenced sets; an ipset element becomes the entries the
 * kernel would hold and print (network masked, `/32` dropped, port ranges
 * expanded, ICMP type/code by name). Forms not recognised are kept verbatim.
 * Used only by `fake-kernel.ts`.
 */
import ipaddr from 'ipaddr.js';
import type { Family } from '../../src/felix/dataplane/render/names.js';

export interface ParsedRule {
  /** As `iptables-save` prints it, without `-A CHAIN `. */
  text: string;
  target: { kind: 'jump' | 'goto'; name: string } | null;
  /** Every `--match-set` / `--add-set` / `--del-set` name, once per occurrence. */
  sets: string[];
  /** Match modules named with `-m` (after implicit protocol matches are made explicit). */
  matches: string[];
  /** Why iptables would refuse the rule while parsing it, if it would. */
  invalid: string | null;
}

/** Protocol numbers as Debian's /etc/protocols (netbase) names them, which is what iptables-save prints. */
const PROTOCOL_NAMES: Record<number, string> = {
  1: 'icmp',
  2: 'igmp',
  3: 'ggp',
  4: 'ipencap',
  5: 'st',
  6: 'tcp',
  8: 'egp',
  9: 'igp',
  12: 'pup',
  17: 'udp',
  20: 'hmp',
  22: 'xns-idp',
  27: 'rdp',
  29: 'iso-tp4',
  33: 'dccp',
  36: 'xtp',
  37: 'ddp',
  38: 'idpr-cmtp',
  41: 'ipv6',
  43: 'ipv6-route',
  44: 'ipv6-frag',
  45: 'idrp',
  46: 'rsvp',
  47: 'gre',
  50: 'esp',
  51: 'ah',
  57: 'skip',
  58: 'ipv6-icmp',
  59: 'ipv6-nonxt',
  60: 'ipv6-opts',
  73: 'rspf',
  81: 'vmtp',
  88: 'eigrp',
  89: 'ospf',
  93: 'ax.25',
  94: 'ipip',
  97: 'etherip',
  98: 'encap',
  103: 'pim',
  108: 'ipcomp',
  112: 'vrrp',
  115: 'l2tp',
  124: 'isis',
  132: 'sctp',
  133: 'fc',
  135: 'mobility-header',
  136: 'udplite',
  137: 'mpls-in-ip',
  138: 'manet',
  139: 'hip',
  140: 'shim6',
  141: 'wesp',
  142: 'rohc',
  143: 'ethernet',
};
const PROTOCOL_ALIASES: Record<string, string> = { icmpv6: 'ipv6-icmp' };

/** `-m NAME` loaded implicitly by a protocol's options, and those options. */
const IMPLICIT_MATCH: Record<string, { match: string; options: string[] }> = {
  tcp: { match: 'tcp', options: ['--dport', '--sport', '--destination-port', '--source-port', '--syn', '--tcp-flags', '--tcp-option'] },
  udp: { match: 'udp', options: ['--dport', '--sport', '--destination-port', '--source-port'] },
  sctp: { match: 'sctp', options: ['--dport', '--sport', '--destination-port', '--source-port', '--chunk-types'] },
  icmp: { match: 'icmp', options: ['--icmp-type'] },
  'ipv6-icmp': { match: 'icmp6', options: ['--icmpv6-type'] },
};

/** iptables' ICMP type names (libxt_icmp), printed as numbers. */
const ICMP_TYPES: Record<string, string> = {
  'echo-reply': '0',
  'destination-unreachable': '3',
  'network-unreachable': '3/0',
  'host-unreachable': '3/1',
  'protocol-unreachable': '3/2',
  'port-unreachable': '3/3',
  'fragmentation-needed': '3/4',
  'source-route-failed': '3/5',
  'network-unknown': '3/6',
  'host-unknown': '3/7',
  'network-prohibited': '3/9',
  'host-prohibited': '3/10',
  'TOS-network-unreachable': '3/11',
  'TOS-host-unreachable': '3/12',
  'communication-prohibited': '3/13',
  'host-precedence-violation': '3/14',
  'precedence-cutoff': '3/15',
  'source-quench': '4',
  redirect: '5',
  'network-redirect': '5/0',
  'host-redirect': '5/1',
  'TOS-network-redirect': '5/2',
  'TOS-host-redirect': '5/3',
  'echo-request': '8',
  'router-advertisement': '9',
  'router-solicitation': '10',
  'time-exceeded': '11',
  'ttl-zero-during-transit': '11/0',
  'ttl-zero-during-reassembly': '11/1',
  'parameter-problem': '12',
  'ip-header-bad': '12/0',
  'required-option-missing': '12/1',
  'timestamp-request': '13',
  'timestamp-reply': '14',
  'address-mask-request': '17',
  'address-mask-reply': '18',
};
const ICMP6_TYPES: Record<string, string> = {
  'destination-unreachable': '1',
  'no-route': '1/0',
  'communication-prohibited': '1/1',
  'beyond-scope': '1/2',
  'address-unreachable': '1/3',
  'port-unreachable': '1/4',
  'failed-policy': '1/5',
  'reject-route': '1/6',
  'packet-too-big': '2',
  'time-exceeded': '3',
  'ttl-exceeded': '3',
  'ttl-zero-during-transit': '3/0',
  'ttl-zero-during-reassembly': '3/1',
  'parameter-problem': '4',
  'bad-header': '4/0',
  'unknown-header-type': '4/1',
  'unknown-option': '4/2',
  'echo-request': '128',
  ping: '128',
  'echo-reply': '129',
  pong: '129',
  'mld-listener-query': '130',
  'mld-listener-report': '131',
  'mld-listener-done': '132',
  'router-solicitation': '133',
  'router-advertisement': '134',
  'neighbour-solicitation': '135',
  'neighbor-solicitation': '135',
  'neighbour-advertisement': '136',
  'neighbor-advertisement': '136',
  redirect: '137',
};
const CT_STATES = ['INVALID', 'NEW', 'RELATED', 'ESTABLISHED', 'UNTRACKED', 'SNAT', 'DNAT'];

/** Splits on blanks, keeping a double-quoted string (quotes included) as one token. */
export function tokenize(text: string): { tokens: string[]; offsets: number[] } {
  const tokens: string[] = [];
  const offsets: number[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i]!)) i++;
    if (i >= text.length) break;
    const start = i;
    let quoted = false;
    while (i < text.length && (quoted || !/\s/.test(text[i]!))) {
      if (text[i] === '"') quoted = !quoted;
      i++;
    }
    tokens.push(text.slice(start, i));
    offsets.push(start);
  }
  return { tokens, offsets };
}

const BASIC: Record<string, 's' | 'd' | 'i' | 'o' | 'p'> = {
  '-s': 's',
  '--source': 's',
  '--src': 's',
  '-d': 'd',
  '--destination': 'd',
  '--dst': 'd',
  '-i': 'i',
  '--in-interface': 'i',
  '-o': 'o',
  '--out-interface': 'o',
  '-p': 'p',
  '--protocol': 'p',
};
const LONG_ALIASES: Record<string, string> = {
  '--jump': '-j',
  '--goto': '-g',
  '--match': '-m',
  '--destination-port': '--dport',
  '--source-port': '--sport',
};

function canonicalAddress(value: string, family: Family): string | null {
  const [addr, prefix, ...extra] = value.split('/');
  if (extra.length || addr === undefined) return null;
  const max = family === 4 ? 32 : 128;
  try {
    const ip =
      family === 4 ? (ipaddr.IPv4.isValidFourPartDecimal(addr) ? ipaddr.IPv4.parse(addr) : null) : ipaddr.IPv6.isValid(addr) ? ipaddr.IPv6.parse(addr) : null;
    if (!ip) return null;
    let bits = max;
    if (prefix !== undefined) {
      if (/^\d+$/.test(prefix)) bits = Number(prefix);
      else if (family === 4 && ipaddr.IPv4.isValidFourPartDecimal(prefix)) bits = ipaddr.IPv4.parse(prefix).prefixLengthFromSubnetMask() ?? -1;
      else return null;
    }
    if (bits < 0 || bits > max) return null;
    const net = family === 4 ? ipaddr.IPv4.networkAddressFromCIDR(`${addr}/${bits}`) : ipaddr.IPv6.networkAddressFromCIDR(`${addr}/${bits}`);
    return `${net.toString()}/${bits}`;
  } catch {
    return null;
  }
}

function canonicalProtocol(value: string): string {
  const v = value.toLowerCase();
  if (/^\d+$/.test(v)) return Number(v) === 0 ? 'all' : (PROTOCOL_NAMES[Number(v)] ?? String(Number(v)));
  return PROTOCOL_ALIASES[v] ?? v;
}

const hex = (n: number): string => `0x${n.toString(16)}`;
function parseNumber(s: string): number | null {
  if (/^0x[0-9a-f]+$/i.test(s)) return parseInt(s.slice(2), 16);
  if (/^\d+$/.test(s)) return Number(s);
  return null;
}
/** `N[/M]` as the mark match prints it. */
function canonicalMark(value: string): string {
  const [v, m] = value.split('/');
  const nv = parseNumber(v ?? '');
  const nm = m === undefined ? null : parseNumber(m);
  if (nv === null || (m !== undefined && nm === null)) return value;
  return m === undefined ? hex(nv) : `${hex(nv)}/${hex(nm!)}`;
}

function unquote(s: string): string {
  return s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s;
}

/** Reads one rule (the text after `-A CHAIN`) as iptables would. */
export function parseRule(text: string, family: Family): ParsedRule {
  const { tokens } = tokenize(text);
  const basic: Partial<Record<'s' | 'd' | 'i' | 'o' | 'p', { neg: boolean; value: string }>> = {};
  const rest: string[] = [];
  // A word where an option belongs: iptables stops at it.
  let invalid: string | null = tokens[0] !== undefined && !tokens[0].startsWith('-') && tokens[0] !== '!' ? `Bad argument \`${tokens[0]}'` : null;
  for (let i = 0; i < tokens.length; i++) {
    const tok = tokens[i]!;
    const negBasic = tok === '!' && BASIC[tokens[i + 1] ?? ''] !== undefined;
    const key = BASIC[negBasic ? tokens[i + 1]! : tok];
    if (key !== undefined && basic[key] === undefined && (negBasic ? tokens[i + 2] : tokens[i + 1]) !== undefined) {
      const value = negBasic ? tokens[i + 2]! : tokens[i + 1]!;
      // The old `-s ! ADDR` form: today's iptables reads `!` as the address.
      if (value === '!') invalid ??= `Bad argument \`${tokens[i + 2] ?? ''}'`;
      basic[key] = { neg: negBasic, value };
      i += negBasic ? 2 : 1;
      continue;
    }
    rest.push(LONG_ALIASES[tok] ?? tok);
  }

  const out: string[] = [];
  for (const key of ['s', 'd'] as const) {
    const b = basic[key];
    if (!b) continue;
    const addr = canonicalAddress(b.value, family) ?? b.value;
    if (!b.neg && /\/0$/.test(addr)) continue; // matches everything: iptables drops it
    out.push(...(b.neg ? ['!'] : []), `-${key}`, addr);
  }
  for (const key of ['i', 'o'] as const) {
    const b = basic[key];
    if (b) out.push(...(b.neg ? ['!'] : []), `-${key}`, b.value);
  }
  const proto = basic.p ? { neg: basic.p.neg, value: canonicalProtocol(basic.p.value) } : null;
  if (proto && !(proto.value === 'all' && !proto.neg)) out.push(...(proto.neg ? ['!'] : []), '-p', proto.value);

  // The match a protocol's options load implicitly is printed explicitly, where its first option stood.
  const implicit = proto && !proto.neg ? IMPLICIT_MATCH[proto.value] : undefined;
  if (implicit && !rest.some((t, i) => t === '-m' && rest[i + 1] === implicit.match)) {
    const at = rest.findIndex((t) => implicit.options.includes(t));
    if (at >= 0) rest.splice(at > 0 && rest[at - 1] === '!' ? at - 1 : at, 0, '-m', implicit.match);
  }

  let target: ParsedRule['target'] = null;
  const sets: string[] = [];
  const matches: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const tok = rest[i]!;
    const next = rest[i + 1];
    if (next === undefined) {
      out.push(tok === '--syn' ? '--tcp-flags FIN,SYN,RST,ACK SYN' : tok);
      continue;
    }
    switch (tok) {
      case '-m':
        matches.push(next);
        out.push(tok, next);
        i++;
        continue;
      case '-j':
      case '-g':
        target = { kind: tok === '-j' ? 'jump' : 'goto', name: next };
        out.push(tok, next);
        i++;
        continue;
      case '--match-set':
      case '--add-set':
      case '--del-set':
        sets.push(next);
        out.push(tok, next);
        i++;
        continue;
      case '--syn':
        out.push('--tcp-flags', 'FIN,SYN,RST,ACK', 'SYN');
        continue;
      case '--icmp-type':
        out.push(tok, ICMP_TYPES[next] ?? next);
        i++;
        continue;
      case '--icmpv6-type':
        out.push(tok, ICMP6_TYPES[next] ?? next);
        i++;
        continue;
      case '--ctstate':
      case '--state': {
        const states = next.split(',');
        const known = states.every((s) => CT_STATES.includes(s));
        out.push(tok, known ? CT_STATES.filter((s) => states.includes(s)).join(',') : next);
        i++;
        continue;
      }
      case '--mac-source':
        out.push(tok, next.toLowerCase());
        i++;
        continue;
      case '--mark':
        out.push(tok, canonicalMark(next));
        i++;
        continue;
      case '--set-mark':
      case '--set-xmark': {
        const [v, m] = next.split('/');
        const nv = parseNumber(v ?? '');
        const nm = m === undefined ? 0xffffffff : parseNumber(m);
        if (nv === null || nm === null) out.push(tok, next);
        else out.push('--set-xmark', `${hex(nv)}/${hex(tok === '--set-mark' && m !== undefined ? (nm | nv) >>> 0 : nm)}`);
        i++;
        continue;
      }
      case '--comment': {
        const c = unquote(next);
        out.push(tok, c === '' || /[\s"'\\]/.test(c) ? `"${c}"` : c);
        i++;
        continue;
      }
      default:
        out.push(tok);
    }
  }
  if (target?.name === 'REJECT' && !rest.includes('--reject-with')) {
    out.push('--reject-with', family === 4 ? 'icmp-port-unreachable' : 'icmp6-port-unreachable');
  }
  return { text: out.join(' '), target, sets, matches, invalid };
}

// ---- ipset elements ----

/** An element the real `ipset` would refuse; the message is what it prints after `Error in line N: `. */
export class IpsetSyntaxError extends Error {}

/** The set types the fake models, with the revision `ipset list` prints for them (ipset v7.17). */
export const SET_TYPE_REVISIONS: Record<string, number> = { 'hash:ip': 6, 'hash:net': 7, 'hash:net,port': 8 };

/** ipset's ICMP names (lib/icmp.c, lib/icmpv6.c) in table order: input matches a case-insensitive prefix, output is the name. */
const IPSET_ICMP: Array<[string, string]> = [
  ['echo-reply', '0/0'],
  ['network-unreachable', '3/0'],
  ['host-unreachable', '3/1'],
  ['protocol-unreachable', '3/2'],
  ['port-unreachable', '3/3'],
  ['fragmentation-needed', '3/4'],
  ['source-route-failed', '3/5'],
  ['network-unknown', '3/6'],
  ['host-unknown', '3/7'],
  ['network-prohibited', '3/9'],
  ['host-prohibited', '3/10'],
  ['TOS-network-unreachable', '3/11'],
  ['TOS-host-unreachable', '3/12'],
  ['communication-prohibited', '3/13'],
  ['host-precedence-violation', '3/14'],
  ['precedence-cutoff', '3/15'],
  ['source-quench', '4/0'],
  ['network-redirect', '5/0'],
  ['host-redirect', '5/1'],
  ['TOS-network-redirect', '5/2'],
  ['TOS-host-redirect', '5/3'],
  ['echo-request', '8/0'],
  ['router-advertisement', '9/0'],
  ['router-solicitation', '10/0'],
  ['ttl-zero-during-transit', '11/0'],
  ['ttl-zero-during-reassembly', '11/1'],
  ['ip-header-bad', '12/0'],
  ['required-option-missing', '12/1'],
  ['timestamp-request', '13/0'],
  ['timestamp-reply', '14/0'],
  ['address-mask-request', '17/0'],
  ['address-mask-reply', '18/0'],
];
const IPSET_ICMP6: Array<[string, string]> = [
  ['no-route', '1/0'],
  ['communication-prohibited', '1/1'],
  ['address-unreachable', '1/3'],
  ['port-unreachable', '1/4'],
  ['packet-too-big', '2/0'],
  ['ttl-zero-during-transit', '3/0'],
  ['ttl-zero-during-reassembly', '3/1'],
  ['bad-header', '4/0'],
  ['unknown-header-type', '4/1'],
  ['unknown-option', '4/2'],
  ['echo-request', '128/0'],
  ['echo-reply', '129/0'],
  ['router-solicitation', '133/0'],
  ['router-advertisement', '134/0'],
  ['neighbour-solicitation', '135/0'],
  ['neighbour-advertisement', '136/0'],
  ['redirect', '137/0'],
];
const PORT_PROTOCOLS = new Set(['tcp', 'udp', 'sctp', 'udplite']);
const PROTOCOL_NUMBERS = new Map(Object.entries(PROTOCOL_NAMES).map(([n, name]) => [name, Number(n)]));

function inRange(text: string, max: number): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > max) throw new IpsetSyntaxError(`Syntax error: '${text}' is out of range 0-${max}`);
  return n;
}

/** One address or network of an element, as the kernel prints it (several for a hash:ip CIDR). */
function ipsetAddresses(text: string, family: Family, type: string): string[] {
  if (text.includes('-')) throw new IpsetSyntaxError(`fake kernel: address ranges are not modelled ('${text}')`);
  const max = family === 4 ? 32 : 128;
  const [addr, prefix, ...extra] = text.split('/');
  const valid = family === 4 ? ipaddr.IPv4.isValidFourPartDecimal(addr ?? '') : ipaddr.IPv6.isValid(addr ?? '');
  const bits = prefix === undefined ? max : inRange(prefix, max);
  if (extra.length || !valid) throw new IpsetSyntaxError(`Syntax error: cannot parse ${addr}: resolving to IPv${family} address failed`);
  if (bits === 0) throw new IpsetSyntaxError('The value of the CIDR parameter of the IP address is invalid');
  const net = family === 4 ? ipaddr.IPv4.networkAddressFromCIDR(`${addr}/${bits}`) : ipaddr.IPv6.networkAddressFromCIDR(`${addr}/${bits}`);
  if (bits === max) return [net.toString()];
  if (type !== 'hash:ip') return [`${net.toString()}/${bits}`];
  // hash:ip stores every address of a CIDR.
  if (max - bits > 16) throw new IpsetSyntaxError(`fake kernel: hash:ip CIDR ${text} is too large to model`);
  const bytes = net.toByteArray();
  const out: string[] = [];
  for (let k = 0; k < 2 ** (max - bits); k++) {
    const b = [...bytes];
    b[b.length - 1] = (b[b.length - 1]! + (k & 0xff)) & 0xff;
    b[b.length - 2] = (b[b.length - 2]! + (k >> 8)) & 0xff;
    out.push(ipaddr.fromByteArray(b).toString());
  }
  return out;
}

function ipsetIcmp(spec: string, table: Array<[string, string]>, proto: string): string {
  const m = /^(\d+)\/(\d+)$/.exec(spec);
  if (m) {
    const code = `${inRange(m[1]!, 255)}/${inRange(m[2]!, 255)}`;
    return `${proto}:${table.find(([, tc]) => tc === code)?.[0] ?? code}`;
  }
  const named = /^\d+$/.test(spec) ? undefined : table.find(([name]) => name.toLowerCase().startsWith(spec.toLowerCase()));
  if (!named) throw new IpsetSyntaxError(`Cannot parse ${spec} as an ${proto === 'icmp' ? 'ICMP' : 'ICMPv6'} type/code.`);
  return `${proto}:${named[0]}`;
}

/** The `proto:port` part of a hash:net,port element, as the kernel prints it (a port range expands). */
function ipsetPorts(text: string, family: Family): string[] {
  const colon = text.indexOf(':');
  const [rawProto, spec] = /^\d+(-\d+)?$/.test(text) ? ['tcp', text] : colon < 0 ? [text, ''] : [text.slice(0, colon), text.slice(colon + 1)];
  if (spec === '') throw new IpsetSyntaxError(`Syntax error: '${text}' is invalid as number`);
  let proto = rawProto.toLowerCase();
  if (/^\d+$/.test(proto)) proto = PROTOCOL_NAMES[Number(proto)] ?? proto;
  if (proto === 'icmpv6') proto = 'ipv6-icmp';
  if (!PROTOCOL_NUMBERS.has(proto) && !/^\d+$/.test(proto)) throw new IpsetSyntaxError(`Syntax error: cannot parse '${rawProto}' as a protocol`);
  if (proto === 'icmp' || proto === 'ipv6-icmp') {
    if ((proto === 'icmp') !== (family === 4))
      throw new IpsetSyntaxError(`Syntax error: protocol ${proto} is not valid in a family ${family === 4 ? 'inet' : 'inet6'} set`);
    return [ipsetIcmp(spec, proto === 'icmp' ? IPSET_ICMP : IPSET_ICMP6, proto)];
  }
  const range = /^(\w+)(?:-(\w+))?$/.exec(spec);
  if (!range) throw new IpsetSyntaxError(`Syntax error: cannot parse '${spec}' as a ${proto} port`);
  for (const p of [range[1]!, range[2]].filter((x): x is string => x !== undefined)) {
    if (!/^\d+$/.test(p)) throw new IpsetSyntaxError(`fake kernel: service names are not modelled ('${p}')`);
  }
  let lo = inRange(range[1]!, 65535);
  let hi = range[2] === undefined ? lo : inRange(range[2], 65535);
  if (lo > hi) [lo, hi] = [hi, lo];
  if (!PORT_PROTOCOLS.has(proto)) return [`${proto}:${lo}`];
  const out: string[] = [];
  for (let p = lo; p <= hi; p++) out.push(`${proto}:${p}`);
  return out;
}

/** The entries that `add`/`del SET ELEMENT` means for a set of this type and family, in the form `ipset list` prints. */
export function ipsetEntries(element: string, type: string, family: Family): string[] {
  const comma = element.indexOf(',');
  if (type === 'hash:net,port') {
    if (comma < 0 || comma === element.length - 1) throw new IpsetSyntaxError(`Syntax error: Second element is missing from ${element}.`);
    const nets = ipsetAddresses(element.slice(0, comma), family, type);
    const ports = ipsetPorts(element.slice(comma + 1), family);
    return nets.flatMap((n) => ports.map((p) => `${n},${p}`));
  }
  if (comma >= 0) throw new IpsetSyntaxError(`Syntax error: Elem separator in ${element}, but settype ${type} supports none.`);
  return ipsetAddresses(element, family, type);
}
