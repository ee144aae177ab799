/** The benchmark's endpoints and ACLs: N endpoints, each with ~35 ACL set entries. */
import type { Acls } from '../../src/common/wire/acl-api.js';
import type { Rule } from '../../src/common/wire/rules.js';
import type { EndpointSpec } from '../../src/felix/dataplane/index.js';

export interface Workload {
  spec: EndpointSpec;
  acls: Acls;
}

const hex = (n: number, width: number): string => n.toString(16).padStart(width, '0');

export function endpointAddr(i: number): string {
  return `192.168.${1 + Math.floor(i / 200)}.${1 + (i % 200)}`;
}

/** Rules of endpoint i: 25 peers (/32), 4 TCP ports, ICMP, the internet outbound, DNS: 35 set entries. */
export function aclsFor(i: number, n: number, extra = 0): Acls {
  const peers: Rule[] = Array.from({ length: 25 }, (_, k) => ({ group: null, cidr: `${endpointAddr((i + k + 1) % Math.max(n, 26))}/32`, protocol: null, port: null }));
  const ports: Rule[] = [80, 443, 8080, 9000 + extra].map((port) => ({ group: null, cidr: `10.${i % 250}.0.0/16`, protocol: 'tcp', port }));
  const icmp: Rule[] = [
    { group: null, cidr: '198.18.0.0/24', protocol: 'icmp', port: null },
    { group: null, cidr: '10.0.0.0/8', protocol: 'icmp', port: null, icmp_type: 8 },
  ];
  const outbound: Rule[] = [
    { group: null, cidr: '0.0.0.0/0', protocol: null, port: null },
    { group: null, cidr: '10.0.0.0/8', protocol: 'udp', port: 53 },
    { group: null, cidr: '10.0.0.0/8', protocol: 'tcp', port: 53 },
  ];
  const empty = { inbound: [], outbound: [], inbound_default: 'deny' as const, outbound_default: 'deny' as const };
  return { v4: { inbound: [...peers, ...ports, ...icmp], outbound, inbound_default: 'deny', outbound_default: 'deny' }, v6: empty };
}

export function workload(n: number): Workload[] {
  return Array.from({ length: n }, (_, i) => {
    const id = `be${hex(i, 6)}${hex(i * 2654435761 % 0xffffffff, 8)}`;
    const suffix = id.slice(0, 11);
    return {
      spec: { id, ifname: `tap${suffix}`, mac: `ee:ee:00:${hex(i >> 16, 2)}:${hex((i >> 8) & 255, 2)}:${hex(i & 255, 2)}`, addrs: [endpointAddr(i)], enabled: true },
      acls: aclsFor(i, n),
    };
  });
}

/** `ip -batch` lines creating every endpoint's veth pair (host end up, peer end up). */
export function vethBatch(w: Workload[]): string {
  return w
    .map(({ spec }) => `link add ${spec.ifname} type veth peer name p${spec.ifname.slice(3)}\nlink set ${spec.ifname} up\nlink set p${spec.ifname.slice(3)} up`)
    .join('\n') + '\n';
}
