/**
 * Chains as data (SPEC §6). Rules are written exactly as `iptables-save`
 * prints them, without the leading `-A <chain>`, so that desired and actual
 * chains compare as plain strings.
 */
import {
  CHAIN_FORWARD, CHAIN_FROM_ENDPOINT, CHAIN_INPUT, CHAIN_PREROUTING, CHAIN_TO_ENDPOINT,
  Family, IpSetType, chainName, setName,
} from './names.js';
import type { SetMembers } from './acl.js';

export type Table = 'filter' | 'nat';

export interface Chain {
  name: string;
  rules: string[];
}

/** A built-in chain's jump to one of ours, e.g. FORWARD → felix-FORWARD. */
export interface Jump {
  from: string;
  rule: string;
}

export interface IpSet {
  name: string;
  type: IpSetType;
  family: Family;
  members: string[];
}

const icmpProto = (family: Family): string => (family === 4 ? 'icmp' : 'ipv6-icmp');
const hostMask = (family: Family): number => (family === 4 ? 32 : 128);

/** felix-FORWARD and felix-INPUT: send endpoint traffic through the dispatch chains. */
export function renderHostChains(interfacePrefix: string): Chain[] {
  const any = `${interfacePrefix}+`;
  return [
    {
      name: CHAIN_FORWARD,
      rules: [`-i ${any} -j ${CHAIN_FROM_ENDPOINT}`, `-o ${any} -j ${CHAIN_TO_ENDPOINT}`, `-i ${any} -j ACCEPT`, `-o ${any} -j ACCEPT`],
    },
    { name: CHAIN_INPUT, rules: [`-i ${any} -j ${CHAIN_FROM_ENDPOINT}`, `-i ${any} -j ACCEPT`] },
  ];
}

export function hostJumps(): Jump[] {
  return [
    { from: 'FORWARD', rule: `-j ${CHAIN_FORWARD}` },
    { from: 'INPUT', rule: `-j ${CHAIN_INPUT}` },
  ];
}

export const metadataJump: Jump = { from: 'PREROUTING', rule: `-j ${CHAIN_PREROUTING}` };

/** nat felix-PREROUTING: the metadata service's well-known address, DNATed to the local one. */
export function renderMetadataChain(metadata: { addr: string; port: number }): Chain {
  return {
    name: CHAIN_PREROUTING,
    rules: [`-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination ${metadata.addr}:${metadata.port}`],
  };
}

/** One endpoint's entries in the dispatch chains: goto, so its RETURN goes back to felix-FORWARD / felix-INPUT. */
export function dispatchRules(ifname: string, suffix: string): { from: string; to: string } {
  return { from: `-i ${ifname} -g ${chainName('from', suffix)}`, to: `-o ${ifname} -g ${chainName('to', suffix)}` };
}

const DISPATCH_RE = /^-[io] (\S+) -g felix-(?:from|to)-\S+$/;

/** The interface a dispatch rule is for, or null if it is not one of ours. */
export function dispatchInterface(rule: string): string | null {
  return DISPATCH_RE.exec(rule)?.[1] ?? null;
}

/** felix-FROM-ENDPOINT and felix-TO-ENDPOINT from per-interface rules (sorted by interface), ending with DROP. */
export function renderDispatchChains(from: Map<string, string>, to: Map<string, string>): Chain[] {
  const ordered = (m: Map<string, string>): string[] => [...m.keys()].sort().map((k) => m.get(k)!);
  return [
    { name: CHAIN_FROM_ENDPOINT, rules: [...ordered(from), '-j DROP'] },
    { name: CHAIN_TO_ENDPOINT, rules: [...ordered(to), '-j DROP'] },
  ];
}

export interface EndpointFamily {
  suffix: string;
  mac: string;
  /** The endpoint's addresses in this family (bare, canonical). */
  addrs: string[];
}

/** felix-to-S and felix-from-S for one family. */
export function renderEndpointChains(ep: EndpointFamily, family: Family): Chain[] {
  const S = ep.suffix;
  const set = (dir: 'to' | 'from', kind: 'addr' | 'port' | 'icmp'): string => setName(family, dir, kind, S);
  const icmp = icmpProto(family);
  const to: string[] = [
    ...(family === 6 ? [130, 131, 132, 134, 135, 136].map((t) => `-p ipv6-icmp -m icmp6 --icmpv6-type ${t} -j RETURN`) : []),
    '-m conntrack --ctstate INVALID -j DROP',
    '-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
    `-m set --match-set ${set('to', 'port')} src,dst -j RETURN`,
    `-m set --match-set ${set('to', 'addr')} src -j RETURN`,
    `-p ${icmp} -m set --match-set ${set('to', 'icmp')} src -j RETURN`,
    '-j DROP',
  ];
  const [client, server] = family === 4 ? [68, 67] : [546, 547];
  const from: string[] = [
    ...(family === 6 ? ['-p ipv6-icmp -j RETURN'] : []),
    '-m conntrack --ctstate INVALID -j DROP',
    '-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
    `-p udp -m udp --sport ${client} --dport ${server} -j RETURN`,
    ...ep.addrs.map((a) => `-s ${a}/${hostMask(family)} -m mac --mac-source ${ep.mac.toLowerCase()} -j MARK --set-xmark 0x1/0xffffffff`),
    '-m mark ! --mark 0x1 -j DROP',
    `-m set --match-set ${set('from', 'port')} dst,dst -j RETURN`,
    `-m set --match-set ${set('from', 'addr')} dst -j RETURN`,
    `-p ${icmp} -m set --match-set ${set('from', 'icmp')} dst -j RETURN`,
    '-j DROP',
  ];
  return [
    { name: chainName('to', S), rules: to },
    { name: chainName('from', S), rules: from },
  ];
}

/** The six sets of one endpoint in one family. */
export function renderEndpointSets(suffix: string, family: Family, members: { to: SetMembers; from: SetMembers }): IpSet[] {
  return (['to', 'from'] as const).flatMap((dir) =>
    (['addr', 'port', 'icmp'] as const).map((kind) => ({
      name: setName(family, dir, kind, suffix),
      type: (kind === 'port' ? 'hash:net,port' : 'hash:net') as IpSetType,
      family,
      members: members[dir][kind],
    })),
  );
}
