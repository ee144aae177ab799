import { expect } from 'chai';
import type { DirectionRules } from '../../../src/felix/dataplane/render/acl.js';
import { renderDhcpChain, renderEndpointFilter, renderHostChains, renderMetadataChain, renderRpfChain } from '../../../src/felix/dataplane/render/chains.js';
import { contentSetName } from '../../../src/felix/dataplane/render/names.js';

const MAC = 'EE:EE:EE:EE:EE:01';
const none = (): DirectionRules => ({ addr: [], port: [], icmp: [], chain: [] });

describe('chain renderers (SPEC §6 v2), golden rule lists in iptables-save form', () => {
  it('IPv4 endpoint chains: anti-spoofing, chain rules before set rules, content-named sets, DROP', () => {
    const to: DirectionRules = { addr: ['10.0.0.1'], port: ['10.0.0.0/8,tcp:80'], icmp: ['10.0.0.0/8'], chain: ['-s 10.0.0.0/8 -p gre -j RETURN'] };
    const from: DirectionRules = { addr: ['0.0.0.0/1', '128.0.0.0/1'], port: [], icmp: [], chain: [] };
    const f = renderEndpointFilter({ suffix: 'abcdefghijk', mac: MAC, addrs: ['192.168.1.1'] }, 4, { to, from });
    const port = contentSetName(4, 'port', to.port);
    const addr = contentSetName(4, 'addr', to.addr);
    const icmp = contentSetName(4, 'icmp', to.icmp);
    const out = contentSetName(4, 'addr', from.addr);
    expect(f.chains).to.deep.equal([
      {
        name: 'felix-to-abcdefghijk',
        rules: [
          '-s 10.0.0.0/8 -p gre -j RETURN',
          `-m set --match-set ${port} src,dst -j RETURN`,
          `-m set --match-set ${addr} src -j RETURN`,
          `-p icmp -m set --match-set ${icmp} src -j RETURN`,
          '-j DROP',
        ],
      },
      {
        name: 'felix-from-abcdefghijk',
        rules: [
          '-s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m mac --mac-source ee:ee:ee:ee:ee:01 -g felix-DHCP',
          '-s 192.168.1.1/32 -m mac --mac-source ee:ee:ee:ee:ee:01 -j MARK --set-xmark 0x1/0xffffffff',
          '-m mark ! --mark 0x1 -j DROP',
          `-m set --match-set ${out} dst -j RETURN`,
          '-j DROP',
        ],
      },
    ]);
    expect(f.sets.map((s) => [s.name, s.type, s.family, s.members])).to.deep.equal([
      [port, 'hash:net,port', 4, to.port],
      [addr, 'hash:net', 4, to.addr],
      [icmp, 'hash:net', 4, to.icmp],
      [out, 'hash:net', 4, from.addr],
    ]);
    expect(port).to.match(/^felix-4p-[0-9a-f]{16}$/);
    expect(icmp).to.match(/^felix-4i-[0-9a-f]{16}$/);
  });

  it('IPv6 endpoint chains: discovery with hop limit 255 only, DHCPv6 as before an address, two addresses', () => {
    const f = renderEndpointFilter({ suffix: 'abcdefghijk', mac: MAC, addrs: ['fd00::1', 'fd00::2'] }, 6, null);
    expect(f.chains).to.deep.equal([
      {
        name: 'felix-to-abcdefghijk',
        rules: [...[130, 131, 132, 134, 135, 136].map((t) => `-p ipv6-icmp -m icmp6 --icmpv6-type ${t} -j RETURN`), '-j DROP'],
      },
      {
        name: 'felix-from-abcdefghijk',
        rules: [
          ...[133, 135, 136].map((t) => `-p ipv6-icmp -m icmp6 --icmpv6-type ${t} -m hl --hl-eq 255 -j RETURN`),
          '-s fe80::/10 -d ff02::1:2/128 -p udp -m mac --mac-source ee:ee:ee:ee:ee:01 -g felix-DHCP',
          '-s fd00::1/128 -m mac --mac-source ee:ee:ee:ee:ee:01 -j MARK --set-xmark 0x1/0xffffffff',
          '-s fd00::2/128 -m mac --mac-source ee:ee:ee:ee:ee:01 -j MARK --set-xmark 0x1/0xffffffff',
          '-m mark ! --mark 0x1 -j DROP',
          '-j DROP',
        ],
      },
    ]);
    expect(f.sets).to.deep.equal([], 'no ACLs: no sets at all');
  });

  it('empty member lists make neither a set nor a rule; equal lists share one set name', () => {
    const a = renderEndpointFilter({ suffix: 'a', mac: MAC, addrs: ['192.168.1.1'] }, 4, { to: { ...none(), addr: ['192.168.1.2'] }, from: none() });
    const b = renderEndpointFilter({ suffix: 'b', mac: MAC, addrs: ['192.168.1.2'] }, 4, { to: { ...none(), addr: ['192.168.1.2'] }, from: none() });
    expect(a.sets.map((s) => s.name)).to.deep.equal(b.sets.map((s) => s.name));
    expect(a.chains[0]!.rules.filter((r) => r.includes('--match-set'))).to.have.length(1);
    expect(a.chains[1]!.rules.filter((r) => r.includes('--match-set'))).to.have.length(0);
    const v6 = contentSetName(6, 'addr', ['192.168.1.2']);
    expect(v6).not.to.equal(a.sets[0]!.name, 'the family is part of the name');
  });

  it('host chains: fast path first, then dispatch; INPUT lets only DHCP, discovery and metadata reach the host', () => {
    const [fwd, input] = renderHostChains(4, { interfacePrefix: 'tap', metadata: { addr: '127.0.0.1', port: 9697 }, endpointToHost: 'DROP' });
    expect(fwd).to.deep.equal({
      name: 'felix-FORWARD',
      rules: [
        '-i tap+ -m conntrack --ctstate INVALID -j DROP',
        '-o tap+ -m conntrack --ctstate INVALID -j DROP',
        '-i tap+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-o tap+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-i tap+ -j felix-FROM-ENDPOINT',
        '-o tap+ -j felix-TO-ENDPOINT',
        '-i tap+ -j ACCEPT',
        '-o tap+ -j ACCEPT',
      ],
    });
    expect(input).to.deep.equal({
      name: 'felix-INPUT',
      rules: [
        '-i tap+ -m conntrack --ctstate INVALID -j DROP',
        '-i tap+ -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
        '-i tap+ -j felix-FROM-ENDPOINT',
        '-i tap+ -p udp -m udp --sport 68 --dport 67 -j ACCEPT',
        '-i tap+ -p tcp -m tcp --dport 9697 -j ACCEPT',
        '-i tap+ -j DROP',
      ],
    });
    const [, input6] = renderHostChains(6, { interfacePrefix: 'veth', metadata: null, endpointToHost: 'ACCEPT' });
    expect(input6!.rules.slice(3)).to.deep.equal([
      '-i veth+ -p udp -m udp --sport 546 --dport 547 -j ACCEPT',
      '-i veth+ -p ipv6-icmp -m icmp6 --icmpv6-type 133 -j ACCEPT',
      '-i veth+ -p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT',
      '-i veth+ -p ipv6-icmp -m icmp6 --icmpv6-type 136 -j ACCEPT',
      '-i veth+ -j ACCEPT',
    ]);
  });

  it('raw reverse-path check, the shared DHCP port check, metadata DNAT', () => {
    expect(renderDhcpChain(4).rules).to.deep.equal(['-p udp -m udp --sport 68 --dport 67 -j RETURN', '-j DROP']);
    expect(renderDhcpChain(6).rules).to.deep.equal(['-p udp -m udp --sport 546 --dport 547 -j RETURN', '-j DROP']);
    expect(renderRpfChain('tap')).to.deep.equal({ name: 'felix-RPF', rules: ['-i tap+ -m rpfilter --invert -j DROP'] });
    expect(renderMetadataChain({ addr: '10.0.0.1', port: 8775 }).rules).to.deep.equal([
      '-d 169.254.169.254/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.0.0.1:8775',
    ]);
  });
});
