import { expect } from 'chai';
import {
  dispatchInterface, dispatchRules, renderDispatchChains, renderEndpointChains, renderHostChains, renderMetadataChain,
} from '../../../src/felix/dataplane/render/chains.js';
import { renderEndpointFilter } from '../../../src/felix/dataplane/render/endpoint.js';
import { aclMembers } from '../../../src/felix/dataplane/render/endpoint.js';

const MAC = 'EE:EE:EE:EE:EE:01';

describe('chain renderers (SPEC §6), golden rule lists in iptables-save form', () => {
  const rows: [string, 4 | 6, string[], { to: string[]; from: string[] }][] = [
    [
      'IPv4, one address',
      4,
      ['192.168.1.1'],
      {
        to: [
          '-m conntrack --ctstate INVALID -j DROP',
          '-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
          '-m set --match-set felix-to-port-abcdefghijk src,dst -j RETURN',
          '-m set --match-set felix-to-addr-abcdefghijk src -j RETURN',
          '-p icmp -m set --match-set felix-to-icmp-abcdefghijk src -j RETURN',
          '-j DROP',
        ],
        from: [
          '-m conntrack --ctstate INVALID -j DROP',
          '-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
          '-p udp -m udp --sport 68 --dport 67 -j RETURN',
          '-s 192.168.1.1/32 -m mac --mac-source ee:ee:ee:ee:ee:01 -j MARK --set-xmark 0x1/0xffffffff',
          '-m mark ! --mark 0x1 -j DROP',
          '-m set --match-set felix-from-port-abcdefghijk dst,dst -j RETURN',
          '-m set --match-set felix-from-addr-abcdefghijk dst -j RETURN',
          '-p icmp -m set --match-set felix-from-icmp-abcdefghijk dst -j RETURN',
          '-j DROP',
        ],
      },
    ],
    [
      'IPv6, two addresses',
      6,
      ['fd00::1', 'fd00::2'],
      {
        to: [
          '-p ipv6-icmp -m icmp6 --icmpv6-type 130 -j RETURN',
          '-p ipv6-icmp -m icmp6 --icmpv6-type 131 -j RETURN',
          '-p ipv6-icmp -m icmp6 --icmpv6-type 132 -j RETURN',
          '-p ipv6-icmp -m icmp6 --icmpv6-type 134 -j RETURN',
          '-p ipv6-icmp -m icmp6 --icmpv6-type 135 -j RETURN',
          '-p ipv6-icmp -m icmp6 --icmpv6-type 136 -j RETURN',
          '-m conntrack --ctstate INVALID -j DROP',
          '-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
          '-m set --match-set felix-6-to-port-abcdefghijk src,dst -j RETURN',
          '-m set --match-set felix-6-to-addr-abcdefghijk src -j RETURN',
          '-p ipv6-icmp -m set --match-set felix-6-to-icmp-abcdefghijk src -j RETURN',
          '-j DROP',
        ],
        from: [
          '-p ipv6-icmp -j RETURN',
          '-m conntrack --ctstate INVALID -j DROP',
          '-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN',
          '-p udp -m udp --sport 546 --dport 547 -j RETURN',
          '-s fd00::1/128 -m mac --mac-source ee:ee:ee:ee:ee:01 -j MARK --set-xmark 0x1/0xffffffff',
          '-s fd00::2/128 -m mac --mac-source ee:ee:ee:ee:ee:01 -j MARK --set-xmark 0x1/0xffffffff',
          '-m mark ! --mark 0x1 -j DROP',
          '-m set --match-set felix-6-from-port-abcdefghijk dst,dst -j RETURN',
          '-m set --match-set felix-6-from-addr-abcdefghijk dst -j RETURN',
          '-p ipv6-icmp -m set --match-set felix-6-from-icmp-abcdefghijk dst -j RETURN',
          '-j DROP',
        ],
      },
    ],
  ];
  for (const [name, family, addrs, expected] of rows) {
    it(`endpoint chains: ${name}`, () => {
      const chains = renderEndpointChains({ suffix: 'abcdefghijk', mac: MAC, addrs }, family);
      expect(chains).to.deep.equal([
        { name: 'felix-to-abcdefghijk', rules: expected.to },
        { name: 'felix-from-abcdefghijk', rules: expected.from },
      ]);
    });
  }

  it('host chains follow the interface prefix', () => {
    expect(renderHostChains('veth')).to.deep.equal([
      {
        name: 'felix-FORWARD',
        rules: ['-i veth+ -j felix-FROM-ENDPOINT', '-o veth+ -j felix-TO-ENDPOINT', '-i veth+ -j ACCEPT', '-o veth+ -j ACCEPT'],
      },
      { name: 'felix-INPUT', rules: ['-i veth+ -j felix-FROM-ENDPOINT', '-i veth+ -j ACCEPT'] },
    ]);
  });

  it('metadata DNAT', () => {
    expect(renderMetadataChain({ addr: '127.0.0.1', port: 9697 }).rules).to.deep.equal([
      '-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 127.0.0.1:9697',
    ]);
  });

  it('dispatch chains: goto per interface, sorted, ending with DROP; rules parse back to their interface', () => {
    const a = dispatchRules('tapb', 'bbbbbbbbbbb');
    const b = dispatchRules('tapa', 'aaaaaaaaaaa');
    const chains = renderDispatchChains(new Map([['tapb', a.from], ['tapa', b.from]]), new Map([['tapb', a.to], ['tapa', b.to]]));
    expect(chains).to.deep.equal([
      { name: 'felix-FROM-ENDPOINT', rules: ['-i tapa -g felix-from-aaaaaaaaaaa', '-i tapb -g felix-from-bbbbbbbbbbb', '-j DROP'] },
      { name: 'felix-TO-ENDPOINT', rules: ['-o tapa -g felix-to-aaaaaaaaaaa', '-o tapb -g felix-to-bbbbbbbbbbb', '-j DROP'] },
    ]);
    expect(dispatchInterface(a.from)).to.equal('tapb');
    expect(dispatchInterface(a.to)).to.equal('tapb');
    expect(dispatchInterface('-j DROP')).to.equal(null);
    expect(dispatchInterface('-i tapx -j felix-from-x')).to.equal(null);
  });
});

describe('renderEndpointFilter', () => {
  const spec = { id: 'abcdefghijklmnop', ifname: 'tapabcdefghijk', mac: MAC, addrs: ['192.168.1.1'], enabled: true };
  const acls = {
    v4: { inbound: [{ group: null, cidr: '10.0.0.1/32', protocol: null, port: null }], outbound: [], inbound_default: 'deny' as const, outbound_default: 'deny' as const },
    v6: { inbound: [], outbound: [], inbound_default: 'deny' as const, outbound_default: 'deny' as const },
  };
  const members = (p: ReturnType<typeof renderEndpointFilter>, family: 4 | 6): Record<string, string[]> =>
    Object.fromEntries(p.get(family)!.sets.map((s) => [s.name, s.members]));

  const rows: [string, typeof spec, boolean, (4 | 6)[], Record<string, string[]>][] = [
    ['v4 only: no v6 chains or sets', spec, true, [4], { 'felix-to-addr-abcdefghijk': ['10.0.0.1/32'] }],
    ['no ACLs yet: empty sets', spec, false, [4], {}],
    ['disabled: empty sets', { ...spec, enabled: false }, true, [4], {}],
    ['dual stack', { ...spec, addrs: ['192.168.1.1', 'fd00::1'] }, true, [4, 6], { 'felix-to-addr-abcdefghijk': ['10.0.0.1/32'] }],
    ['v6 only', { ...spec, addrs: ['fd00::1'] }, true, [6], {}],
    ['no address: nothing', { ...spec, addrs: [] }, true, [], {}],
  ];
  for (const [name, s, withAcls, families, nonEmpty] of rows) {
    it(name, () => {
      const p = renderEndpointFilter(s, withAcls ? aclMembers(acls).members : null);
      expect([...p.keys()]).to.deep.equal(families);
      for (const f of families) {
        expect(p.get(f)!.sets).to.have.length(6);
        expect(p.get(f)!.chains.map((c) => c.name)).to.deep.equal(['felix-to-abcdefghijk', 'felix-from-abcdefghijk']);
        for (const [set, m] of Object.entries(members(p, f as 4 | 6))) expect(m, set).to.deep.equal(nonEmpty[set] ?? []);
      }
    });
  }
});
