/**
 * `calico-status explain`: why a packet from one endpoint to another is
 * allowed or denied (issue #16). Pure: the daemons' documents in, the path
 * and a verdict out. The verdict follows what Felix programs — its ACLs for
 * each endpoint, the rules it skipped, whether the endpoint is programmed —
 * and the reasons come from the ACL manager (which group rule made each
 * rule, which groups the peer is in). A packet of an established flow is
 * accepted before any of this (SPEC §6 fast path): this explains a new one.
 */
import type { EndpointStatus } from '../common/metrics.js';
import type { AclEndpointView, FelixEndpointView, RouteView, RuleDirection, RuleSource } from '../common/status-api.js';
import { type Rule, ruleKey } from '../common/wire/rules.js';
import { ipFamily } from '../common/wire/codec.js';
import { formatAge } from './format.js';
import { PacketQuery, protocolNumberOf, ruleMatches } from '../felix/dataplane/render/acl.js';

/** What the operator asked: `--protocol tcp|udp|icmp|N`, `--port P`. */
export interface PacketSpec {
  protocol: string;
  port: number | null;
}

/** One end of the path, as the daemons report it. */
export interface ExplainEnd {
  addr: string;
  felix: FelixEndpointView;
  /** Null when the ACL manager knows the endpoint in no group (or was not asked). */
  acl: AclEndpointView | null;
}

export interface ExplainInputs {
  family: 4 | 6;
  src: ExplainEnd;
  dst: ExplainEnd;
  /** The route from SRC's host to DST's address. */
  route: RouteView;
  packet: PacketSpec;
}

export type HopName = 'source' | 'outbound' | 'route' | 'destination' | 'inbound';

export interface Hop {
  hop: HopName;
  host: string;
  /** pass: the packet goes on; deny: it stops here; note: a fact, no decision. */
  result: 'pass' | 'deny' | 'note';
  lines: string[];
}

export interface Explanation {
  family: 4 | 6;
  src: { endpoint: string; addr: string; host: string };
  dst: { endpoint: string; addr: string; host: string };
  packet: PacketSpec;
  hops: Hop[];
  verdict: 'ALLOW' | 'DENY';
  /** Where it is denied; null when allowed. */
  deniedAt: { host: string; hop: HopName } | null;
  /** The one-line answer. */
  summary: string;
}

const PORT_PROTOCOLS = new Set([6, 17, 132, 136]);

/** The packet in the terms Felix's rules match on, or why the spec cannot be one. */
export function packetQuery(spec: PacketSpec, family: 4 | 6, peer: string): PacketQuery | { error: string } {
  const protocol = protocolNumberOf(spec.protocol, family);
  if (protocol === undefined) return { error: `unknown protocol ${JSON.stringify(spec.protocol)}` };
  const icmp = protocol === 1 || protocol === 58;
  // `calico-lab explain` passes --port unchecked: a port no packet can carry would be judged (and allowed) as if real.
  if (spec.port !== null && !(Number.isInteger(spec.port) && spec.port >= 0 && spec.port <= 65535)) return { error: '--port must be 0..65535' };
  if (PORT_PROTOCOLS.has(protocol) && spec.port === null) return { error: `--port is needed with protocol ${spec.protocol}` };
  if (!PORT_PROTOCOLS.has(protocol) && spec.port !== null) return { error: `--port makes no sense with protocol ${spec.protocol}` };
  // ICMP as ping sends it: an echo request.
  return { peer, protocol, port: spec.port, icmp: icmp ? { type: family === 4 ? 8 : 128, code: 0 } : null };
}

export const describePacket = (spec: PacketSpec): string => (spec.port === null ? spec.protocol : `${spec.protocol} port ${spec.port}`);

/** Ids as the operator knows them from `calico-status`: long ones cut at 12 characters. */
export const shortId = (id: string): string => (id.length > 12 ? `${id.slice(0, 11)}…` : id);

/** `cidr 10.0.0.0/8 tcp port 80`, `members of group1 tcp`, `icmp type 8`. */
function describeRule(r: Rule): string {
  const parts = [r.group !== null ? `members of ${r.group}` : `${r.cidr}`];
  if (r.protocol !== null) parts.push(r.protocol);
  if (r.port !== null) parts.push(`port ${Array.isArray(r.port) ? r.port.join('-') : r.port}`);
  if (r.icmp_type !== undefined) parts.push(`type ${r.icmp_type}${r.icmp_code !== undefined ? `/${r.icmp_code}` : ''}`);
  return parts.join(' ');
}

/** `group1 inbound rule 0 (members of group1: 192.168.1.1/32)`, `group1 outbound rule 1 (0.0.0.0/0)`. */
const describeSource = (s: RuleSource, rule: Rule): string =>
  `${s.group} ${s.direction} rule ${s.index} (${s.via !== null ? `members of ${s.via}: ` : ''}${describeRule(rule)})`;

/** The rule's cidr alone: does the peer fall in it at all? */
const peerOnly = (r: Rule): Rule => ({ group: r.group, cidr: r.cidr, protocol: null, port: null });

/** The group rules behind one of an endpoint's rules, from the ACL manager's view. */
function sourcesOf(acl: AclEndpointView | null, family: 4 | 6, dir: RuleDirection, rule: Rule): RuleSource[] {
  if (!acl) return [];
  const fam = family === 4 ? 'v4' : 'v6';
  const i = acl.acls[fam][dir].findIndex((r) => ruleKey(r) === ruleKey(rule));
  return i < 0 ? [] : (acl.sources[fam][dir][i] ?? []);
}

/** `group1 allows only members of group1`, per group, for one direction and family (cidrs of the other family left out). */
function groupsAllow(acl: AclEndpointView | null, dir: RuleDirection, family: 4 | 6): string[] {
  if (!acl) return [];
  return acl.groups.map((g) => {
    const rules = g.rules[dir].filter((r) => r.cidr === null || ipFamily(r.cidr.split('/')[0]!) === family);
    return rules.length === 0 ? `${g.group} allows nothing ${dir} in IPv${family}` : `${g.group} allows only ${rules.map(describeRule).join(', ')}`;
  });
}

/** Why an endpoint's chain drops everything regardless of rules, or null. */
function programmingProblem(e: EndpointStatus, view: FelixEndpointView): string | null {
  if (!e.enabled) return 'the endpoint is disabled: its chains allow nothing';
  if (e.error !== null) return `programming failed (${e.error}): the endpoint is out of dispatch until a retry succeeds`;
  if (view.acls === null) return 'no ACLs have arrived yet: everything is denied until the first ACLUPDATE';
  if (!e.interfaceUp) return `its interface ${e.ifname} is down or missing`;
  return null;
}

/** What Felix has programmed for the endpoint, in words. */
function programmedState(end: ExplainEnd): string {
  const e = end.felix.endpoint;
  const age = e.aclAgeSeconds === null ? 'no ACLs yet' : `ACLs ${formatAge(e.aclAgeSeconds)} old`;
  const state = e.programmed ? 'programmed' : e.error !== null ? 'FAILED' : 'pending (the kernel may still hold the previous rules)';
  let agreement = '';
  if (end.acl && end.felix.acls) {
    agreement =
      JSON.stringify(end.felix.acls) === JSON.stringify(end.acl.acls)
        ? ', same as the ACL manager computes'
        : ', NOT what the ACL manager computes now (an update is on its way)';
  }
  return `${state}, ${age}${agreement}`;
}

interface DirectionVerdict {
  allowed: boolean;
  hop: Hop;
  /** The reason for a denial, for the summary. */
  why: string;
  /** The allowing rule's description, for the summary. */
  by: string;
}

/** One endpoint's chain (outbound for SRC, inbound for DST) against the packet. */
function judgeDirection(end: ExplainEnd, other: ExplainEnd, dir: RuleDirection, family: 4 | 6, packet: PacketQuery, chainName: string): DirectionVerdict {
  const e = end.felix.endpoint;
  const host = end.felix.host;
  const denied = e.deniedPackets ? `; ${e.deniedPackets[dir]} packets denied ${dir} so far` : '';
  const lines = [`${chainName}: ${programmedState(end)}${denied}`];
  const hopName: HopName = dir === 'outbound' ? 'outbound' : 'inbound';
  const problem = programmingProblem(e, end.felix);
  if (problem) {
    lines.push(`DENY: ${problem}`);
    return { allowed: false, hop: { hop: hopName, host, result: 'deny', lines }, why: problem, by: '' };
  }
  const fam = family === 4 ? 'v4' : 'v6';
  const rules = end.felix.acls![fam][dir];
  const skipped = new Map(end.felix.skipped.filter((s) => s.family === family && s.direction === dir).map((s) => [s.index, s.reason]));
  const sameCidr: string[] = [];
  /** Rules that would let the packet through but that Felix did not program, and why not. */
  const unprogrammed: Array<{ rule: string; why: string }> = [];
  for (let i = 0; i < rules.length; i++) {
    const rule = rules[i]!;
    const m = ruleMatches(rule, family, packet);
    const skippedWhy = skipped.get(i) ?? (typeof m === 'object' ? m.invalid : undefined);
    if (skippedWhy !== undefined) {
      const forPeer = ruleMatches(peerOnly(rule), family, packet) === true;
      // A rule Felix skipped for the budget is valid: it would match only if the packet matches it all, not just its cidr.
      if (m === true || (typeof m === 'object' && forPeer)) {
        lines.push(`rule ${i} (${describeRule(rule)}) would match but is not programmed: ${skippedWhy}`);
        unprogrammed.push({ rule: describeRule(rule), why: skippedWhy });
      } else if (forPeer) lines.push(`rule ${i} (${describeRule(rule)}) is not programmed: ${skippedWhy}`);
      continue;
    }
    if (m === true) {
      const sources = sourcesOf(end.acl, family, dir, rule);
      const by = sources.length ? sources.map((src) => describeSource(src, rule)).join('; ') : `rule ${i} (${describeRule(rule)})`;
      lines.push(`ALLOW by rule ${i} of ${rules.length}: ${describeRule(rule)}${sources.length ? `, from ${by}` : ''}`);
      return { allowed: true, hop: { hop: hopName, host, result: 'pass', lines }, why: '', by };
    }
    // Same peer, other protocol or port: worth saying.
    if (ruleMatches(peerOnly(rule), family, packet) === true) sameCidr.push(describeRule(rule));
  }
  const peer = other.addr;
  const reasons = [
    unprogrammed.length
      ? `${peer} would be allowed by ${unprogrammed.map((u) => u.rule).join(', ')}, which Felix has not programmed (${[...new Set(unprogrammed.map((u) => u.why))].join('; ')})`
      : sameCidr.length
        ? `${peer} is allowed only for ${sameCidr.join(', ')}`
        : `${peer} is not in any allowed cidr`,
  ];
  if (other.acl) reasons.push(`it is in ${other.acl.groups.map((g) => g.group).join(', ')}`);
  else reasons.push('the ACL manager knows it in no group');
  reasons.push(...groupsAllow(end.acl, dir, family));
  const why = reasons.join('; ');
  lines.push(`DENY: no rule of ${rules.length} allows it (default deny): ${why}`);
  return { allowed: false, hop: { hop: hopName, host, result: 'deny', lines }, why, by: '' };
}

function endHop(hop: 'source' | 'destination', end: ExplainEnd): Hop {
  const e = end.felix.endpoint;
  const groups = end.acl ? end.acl.groups.map((g) => g.group).join(', ') : 'none the ACL manager knows';
  return {
    hop,
    host: end.felix.host,
    result: 'note',
    lines: [`endpoint ${e.id}, interface ${e.ifname}, ${e.addrs.join(' ')}; groups: ${groups}`],
  };
}

function routeHop(inputs: ExplainInputs): { hop: Hop; ok: boolean; why: string } {
  const { route, src, dst } = inputs;
  const host = src.felix.host;
  const local = src.felix.host === dst.felix.host;
  const say = (ok: boolean, line: string, why = '') => ({
    hop: { hop: 'route' as const, host, result: ok ? ('pass' as const) : ('deny' as const), lines: [line] },
    ok,
    why,
  });
  if (route.error !== null || route.dev === null)
    return say(false, `no route to ${dst.addr}: ${route.error ?? 'none'}`, `no route to ${dst.addr} (${route.error ?? 'none'})`);
  const how = `${dst.addr}${route.gateway ? ` via ${route.gateway}` : ''} dev ${route.dev}${route.protocol ? ` proto ${route.protocol}` : ''}`;
  if (route.endpoint !== null && route.endpoint !== dst.felix.endpoint.id)
    return say(
      false,
      `${how}: the interface of endpoint ${route.endpoint}, not of ${dst.felix.endpoint.id}`,
      `the route to ${dst.addr} leads to another endpoint's interface`,
    );
  if (local) {
    if (route.endpoint === null)
      return say(false, `${how}: not ${dst.felix.endpoint.ifname}, the destination's interface`, `the route to ${dst.addr} does not lead to its interface`);
    return say(true, `${how} (local)`);
  }
  if (route.endpoint !== null || route.gateway === null) return say(true, `${how} (towards ${dst.felix.host})`);
  return say(true, `${how} (next hop towards ${dst.felix.host}${route.protocol === 'bird' ? ', learned over BGP' : ''})`);
}

/** The whole path, hop by hop, and the verdict. */
export function explain(inputs: ExplainInputs): Explanation | { error: string } {
  const { src, dst, family } = inputs;
  const out = packetQuery(inputs.packet, family, dst.addr);
  if ('error' in out) return out;
  const inbound: PacketQuery = { ...out, peer: src.addr };
  const summaryOf = (e: ExplainEnd) => ({ endpoint: e.felix.endpoint.id, addr: e.addr, host: e.felix.host });
  const base = { family, src: summaryOf(src), dst: summaryOf(dst), packet: inputs.packet };
  const what = `${src.addr} → ${dst.addr} ${describePacket(inputs.packet)}`;
  const hops: Hop[] = [endHop('source', src)];
  const deny = (hop: Hop, why: string, to: string): Explanation => ({
    ...base,
    hops,
    verdict: 'DENY',
    deniedAt: { host: hop.host, hop: hop.hop },
    summary: `DENY at ${hop.host} ${hop.hop} ${to}: ${why}`,
  });

  const outbound = judgeDirection(src, dst, 'outbound', family, out, `felix-from chain of ${shortId(src.felix.endpoint.id)}`);
  hops.push(outbound.hop);
  if (!outbound.allowed) return deny(outbound.hop, outbound.why, `from ${shortId(src.felix.endpoint.id)}`);
  const route = routeHop(inputs);
  hops.push(route.hop);
  if (!route.ok) return deny(route.hop, route.why, `from ${shortId(src.felix.endpoint.id)}`);
  hops.push(endHop('destination', dst));
  const into = judgeDirection(dst, src, 'inbound', family, inbound, `felix-to chain of ${shortId(dst.felix.endpoint.id)}`);
  hops.push(into.hop);
  if (!into.allowed) return deny(into.hop, into.why, `to ${shortId(dst.felix.endpoint.id)}`);
  return {
    ...base,
    hops,
    verdict: 'ALLOW',
    deniedAt: null,
    summary: `ALLOW ${what}: out of ${shortId(src.felix.endpoint.id)} by ${outbound.by}; into ${shortId(dst.felix.endpoint.id)} by ${into.by}`,
  };
}

/** The explanation as the command prints it. */
export function formatExplanation(x: Explanation): string {
  const head = `explain IPv${x.family} ${x.src.addr} (${shortId(x.src.endpoint)} on ${x.src.host}) → ${x.dst.addr} (${shortId(x.dst.endpoint)} on ${x.dst.host}), ${describePacket(x.packet)}, a new connection`;
  const width = Math.max(...x.hops.map((h) => h.hop.length));
  const rows = x.hops.flatMap((h) => h.lines.map((line, i) => `  ${(i === 0 ? h.hop : '').padEnd(width)}  ${i === 0 ? `[${h.host}] ` : '  '}${line}`));
  return [head, ...rows, x.summary].join('\n');
}
