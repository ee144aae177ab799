/**
 * The benchmark's endpoints and ACLs, in two shapes:
 *   distinct — N endpoints, each with its own ~35 ACL set entries (25 peers /32, 4 TCP ports, ICMP, outbound);
 *   group    — N endpoints in 10 groups, every member of a group with identical ACLs: inbound every member
 *              of its group (/32) plus tcp 22, 80, 443 from 10.0.0.0/8; outbound 0.0.0.0/0 (SPEC §4's shape).
 * Self-contained (only the wire types are imported), so it stays valid whatever the dataplane's layout.
 */
import type { Acls } from '../../src/common/wire/acl-api.js';
import type { Rule, Rules } from '../../src/common/wire/rules.js';
import { defaultInterfaceName } from '../../src/common/endpoint-names.js';

export type WorkloadKind = 'distinct' | 'group';
export const WORKLOAD_KINDS: readonly WorkloadKind[] = ['distinct', 'group'];

/** What Felix is told about an endpoint (ENDPOINTCREATED) and what the dataplane driver takes. */
export interface BenchEndpoint {
  id: string;
  ifname: string;
  mac: string;
  addrs: string[];
  enabled: boolean;
}

export interface Workload {
  spec: BenchEndpoint;
  acls: Acls;
  /** An entry (as `ipset save` prints it) that must be in one of the sets `felix-to-<suffix>` references once the ACLs are programmed. */
  expect: string;
}

const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');

export function endpointAddr(i: number): string {
  return `192.168.${1 + Math.floor(i / 200)}.${1 + (i % 200)}`;
}

const rule = (cidr: string, protocol: string | null = null, port: number | null = null): Rule => ({ group: null, cidr, protocol, port });
const EMPTY: Rules = { inbound: [], outbound: [], inbound_default: 'deny', outbound_default: 'deny' };
const v4 = (inbound: Rule[], outbound: Rule[]): Acls => ({ v4: { inbound, outbound, inbound_default: 'deny', outbound_default: 'deny' }, v6: EMPTY });

/** Rules of endpoint i: 25 peers (/32), 4 TCP ports, ICMP, the internet outbound, DNS: 35 set entries. */
export function aclsFor(i: number, n: number, extra = 0): Acls {
  const peers: Rule[] = Array.from({ length: 25 }, (_, k) => rule(`${endpointAddr((i + k + 1) % Math.max(n, 26))}/32`));
  const ports: Rule[] = [80, 443, 8080, 9000 + extra].map((port) => rule(`10.${i % 250}.0.0/16`, 'tcp', port));
  const icmp: Rule[] = [rule('198.18.0.0/24', 'icmp'), { ...rule('10.0.0.0/8', 'icmp'), icmp_type: 8 }];
  const outbound: Rule[] = [rule('0.0.0.0/0'), rule('10.0.0.0/8', 'udp', 53), rule('10.0.0.0/8', 'tcp', 53)];
  return v4([...peers, ...ports, ...icmp], outbound);
}

function endpoint(prefix: string, i: number): BenchEndpoint {
  const id = `${prefix}${hex(i, 6)}${hex((i * 2654435761) % 0xffffffff, 8)}`;
  return {
    id,
    ifname: defaultInterfaceName('tap', id),
    mac: `ee:ee:00:${hex(i >> 16, 2)}:${hex((i >> 8) & 255, 2)}:${hex(i & 255, 2)}`,
    addrs: [endpointAddr(i)],
    enabled: true,
  };
}

export function workload(n: number): Workload[] {
  return Array.from({ length: n }, (_, i) => ({ spec: endpoint('be', i), acls: aclsFor(i, n), expect: `10.${i % 250}.0.0/16,tcp:80` }));
}

export const GROUPS = 10;
const GROUP_PORTS = [22, 80, 443];

/** Group of endpoint i: contiguous blocks of N/10. */
export const groupOf = (i: number, n: number): number => Math.floor((i * GROUPS) / n);

export function groupAcls(members: string[], extraPort?: number): Acls {
  const inbound = [...members.map((a) => rule(`${a}/32`)), ...[...GROUP_PORTS, ...(extraPort ? [extraPort] : [])].map((p) => rule('10.0.0.0/8', 'tcp', p))];
  return v4(inbound, [rule('0.0.0.0/0')]);
}

export function groupWorkload(n: number): Workload[] {
  const members = new Map<number, string[]>();
  for (let i = 0; i < n; i++) {
    const g = groupOf(i, n);
    if (!members.has(g)) members.set(g, []);
    members.get(g)!.push(endpointAddr(i));
  }
  // Members of one group share one ACL object, as they share their ACLs.
  const acls = new Map([...members].map(([g, addrs]) => [g, groupAcls(addrs)]));
  return Array.from({ length: n }, (_, i) => ({ spec: endpoint('bg', i), acls: acls.get(groupOf(i, n))!, expect: '10.0.0.0/8,tcp:80' }));
}

export function workloadOf(kind: WorkloadKind, n: number): Workload[] {
  return kind === 'distinct' ? workload(n) : groupWorkload(n);
}

/** One ACL change for endpoint i: its new ACLs, and the set entry (as `ipset save` prints it) that shows it is in the kernel. */
export function aclChange(kind: WorkloadKind, w: Workload[], i: number): { acls: Acls; entry: string } {
  if (kind === 'distinct') return { acls: aclsFor(i, w.length, 1), entry: `10.${i % 250}.0.0/16,tcp:9001` };
  const n = w.length;
  const members = w.filter((_, j) => groupOf(j, n) === groupOf(i, n)).map((e) => e.spec.addrs[0]!);
  return { acls: groupAcls(members, 9001), entry: '10.0.0.0/8,tcp:9001' };
}

/** `ip -batch` lines creating every endpoint's veth pair (host end up, peer end up). */
export function vethBatch(w: Workload[]): string {
  return (
    w
      .map(
        ({ spec }) => `link add ${spec.ifname} type veth peer name p${spec.ifname.slice(3)}\nlink set ${spec.ifname} up\nlink set p${spec.ifname.slice(3)} up`,
      )
      .join('\n') + '\n'
  );
}
