/**
 * The version-1 dataplane layout (IPv4), rendered here on its own as a fixed
 * historical reference for the benchmark's baselines — deliberately not
 * imported from src/felix/dataplane/render, which moves on. Its exact shape
 * is the one test/integration/felix-dataplane.test.ts pinned down for
 * version 1:
 *   * host chains felix-FORWARD / felix-INPUT (endpoint traffic → dispatch, then ACCEPT),
 *     jumped to from FORWARD / INPUT;
 *   * flat dispatch chains felix-FROM-ENDPOINT / felix-TO-ENDPOINT: one `-i/-o IF -g felix-from/to-S`
 *     per endpoint, sorted by interface, then DROP;
 *   * per endpoint chains felix-to-S / felix-from-S with the conntrack rules, anti-spoofing MARK and
 *     six per-endpoint sets felix-{to,from}-{addr,port,icmp}-S;
 *   * a route (scope link) and a permanent neighbour per address; sysctls proxy_arp, route_localnet, proxy_delay.
 * Only what the benchmark's workloads use is rendered (IPv4; no metadata DNAT: the benchmark runs with MetadataAddr None).
 */
import type { Rule } from '../../src/common/wire/rules.js';
import type { Workload } from './workload.js';

export interface V1Chain {
  name: string;
  /** Rules as `iptables-save` prints them, without `-A <chain>`. */
  rules: string[];
}

export interface V1Set {
  name: string;
  type: 'hash:net' | 'hash:net,port';
  members: string[];
}

export interface V1Layout {
  chains: V1Chain[];
  sets: V1Set[];
  /** Built-in chain → rule inserted at its top. */
  jumps: Array<{ from: string; rule: string }>;
  routes: Array<{ addr: string; ifname: string; mac: string }>;
  ifnames: string[];
}

type Kind = 'addr' | 'port' | 'icmp';
const PORT_PROTOCOLS = new Set(['tcp', 'udp', 'sctp', 'udplite']);

/** A rule's set entries in version 1 (only the rule shapes the workloads use; anything else is skipped). */
function entries(r: Rule): { kind: Kind; members: string[] } | null {
  if (r.cidr === null) return null;
  const cidrs = r.cidr.endsWith('/0') ? ['0.0.0.0/1', '128.0.0.0/1'] : [r.cidr.endsWith('/32') ? r.cidr.slice(0, -3) : r.cidr];
  if (r.protocol === null) return { kind: 'addr', members: cidrs };
  if (r.protocol === 'icmp') {
    if (r.icmp_type === undefined) return { kind: 'icmp', members: cidrs };
    const t = typeof r.icmp_type === 'string' ? r.icmp_type : `${r.icmp_type}/${r.icmp_code ?? 0}`;
    return { kind: 'port', members: cidrs.map((c) => `${c},icmp:${t}`) };
  }
  if (PORT_PROTOCOLS.has(r.protocol)) {
    const p = r.port === null ? '0' : Array.isArray(r.port) ? `${r.port[0]}-${r.port[1]}` : String(r.port);
    return { kind: 'port', members: cidrs.map((c) => `${c},${r.protocol}:${p}`) };
  }
  return null;
}

function members(rules: Rule[]): Record<Kind, string[]> {
  const out = { addr: new Set<string>(), port: new Set<string>(), icmp: new Set<string>() };
  for (const r of rules) {
    const e = entries(r);
    if (e) for (const m of e.members) out[e.kind].add(m);
  }
  return { addr: [...out.addr].sort(), port: [...out.port].sort(), icmp: [...out.icmp].sort() };
}

export function renderV1(w: Workload[], prefix = 'tap'): V1Layout {
  const any = `${prefix}+`;
  const chains: V1Chain[] = [
    { name: 'felix-FORWARD', rules: [`-i ${any} -j felix-FROM-ENDPOINT`, `-o ${any} -j felix-TO-ENDPOINT`, `-i ${any} -j ACCEPT`, `-o ${any} -j ACCEPT`] },
    { name: 'felix-INPUT', rules: [`-i ${any} -j felix-FROM-ENDPOINT`, `-i ${any} -j ACCEPT`] },
  ];
  const sets: V1Set[] = [];
  const byIf = [...w].sort((a, b) => (a.spec.ifname < b.spec.ifname ? -1 : a.spec.ifname > b.spec.ifname ? 1 : 0));
  chains.push(
    { name: 'felix-FROM-ENDPOINT', rules: [...byIf.map(({ spec }) => `-i ${spec.ifname} -g felix-from-${spec.id.slice(0, 11)}`), '-j DROP'] },
    { name: 'felix-TO-ENDPOINT', rules: [...byIf.map(({ spec }) => `-o ${spec.ifname} -g felix-to-${spec.id.slice(0, 11)}`), '-j DROP'] },
  );
  for (const { spec, acls } of w) {
    const S = spec.id.slice(0, 11);
    const set = (dir: 'to' | 'from', kind: Kind): string => `felix-${dir}-${kind}-${S}`;
    const to = members(acls.v4.inbound);
    const from = members(acls.v4.outbound);
    for (const [dir, m] of [
      ['to', to],
      ['from', from],
    ] as const)
      for (const kind of ['addr', 'port', 'icmp'] as const)
        sets.push({ name: set(dir, kind), type: kind === 'port' ? 'hash:net,port' : 'hash:net', members: m[kind] });
    chains.push(
      {
        name: `felix-to-${S}`,
        rules: [
          '-m conntrack --ctstate INVALID -j DROP',
          '-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
          `-m set --match-set ${set('to', 'port')} src,dst -j RETURN`,
          `-m set --match-set ${set('to', 'addr')} src -j RETURN`,
          `-p icmp -m set --match-set ${set('to', 'icmp')} src -j RETURN`,
          '-j DROP',
        ],
      },
      {
        name: `felix-from-${S}`,
        rules: [
          '-m conntrack --ctstate INVALID -j DROP',
          '-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
          '-p udp -m udp --sport 68 --dport 67 -j RETURN',
          ...spec.addrs.map((a) => `-s ${a}/32 -m mac --mac-source ${spec.mac.toLowerCase()} -j MARK --set-xmark 0x1/0xffffffff`),
          '-m mark ! --mark 0x1 -j DROP',
          `-m set --match-set ${set('from', 'port')} dst,dst -j RETURN`,
          `-m set --match-set ${set('from', 'addr')} dst -j RETURN`,
          `-p icmp -m set --match-set ${set('from', 'icmp')} dst -j RETURN`,
          '-j DROP',
        ],
      },
    );
  }
  return {
    chains,
    sets,
    jumps: [
      { from: 'FORWARD', rule: '-j felix-FORWARD' },
      { from: 'INPUT', rule: '-j felix-INPUT' },
    ],
    routes: w.flatMap(({ spec }) => spec.addrs.map((addr) => ({ addr, ifname: spec.ifname, mac: spec.mac }))),
    ifnames: w.map(({ spec }) => spec.ifname),
  };
}

const MAXELEM = 1048576;

/** Input for `ipset restore`: every set created and filled. */
export function ipsetRestoreText(l: V1Layout): string {
  const out: string[] = [];
  for (const s of l.sets) {
    out.push(`create ${s.name} ${s.type} family inet maxelem ${MAXELEM}`);
    for (const m of s.members) out.push(`add ${s.name} ${m}`);
  }
  return out.join('\n') + '\n';
}

/** Input for `iptables-restore --noflush`: one filter transaction with every chain and the jumps. */
export function iptablesRestoreText(l: V1Layout): string {
  const out = ['*filter'];
  for (const c of l.chains) out.push(`:${c.name} - [0:0]`);
  for (const c of l.chains) for (const r of c.rules) out.push(`-A ${c.name} ${r}`);
  for (const j of l.jumps) out.push(`-I ${j.from} 1 ${j.rule}`);
  out.push('COMMIT');
  return out.join('\n') + '\n';
}

/** Input for `ip -batch -`: routes and permanent neighbours. */
export function ipBatchText(l: V1Layout): string {
  return (
    l.routes.map((r) => `route add ${r.addr}/32 dev ${r.ifname} scope link\nneigh add ${r.addr} lladdr ${r.mac} dev ${r.ifname} nud permanent`).join('\n') +
    '\n'
  );
}

/** iptables rules + ipset entries in the layout. */
export function ruleCount(l: V1Layout): number {
  return l.chains.reduce((a, c) => a + c.rules.length, 0) + l.sets.reduce((a, s) => a + s.members.length, 0);
}
