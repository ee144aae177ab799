import { expect } from 'chai';
import { aclSetMembers, ruleEntry } from '../../../src/felix/dataplane/render/acl.js';
import type { Rule } from '../../../src/common/wire/rules.js';
import type { Family } from '../../../src/felix/dataplane/render/names.js';

const r = (fields: Partial<Rule>): Rule => ({ group: null, cidr: null, protocol: null, port: null, ...fields });

describe('ACL rule → ipset entry (SPEC §6)', () => {
  const rows: [string, Family, Rule, { kind: string; members: string[] } | { invalid: RegExp }][] = [
    ['all protocols → addr', 4, r({ cidr: '10.1.2.3/32' }), { kind: 'addr', members: ['10.1.2.3/32'] }],
    ['bare address → /32', 4, r({ cidr: '10.1.2.3' }), { kind: 'addr', members: ['10.1.2.3/32'] }],
    ['host bits cleared', 4, r({ cidr: '10.1.2.3/8' }), { kind: 'addr', members: ['10.0.0.0/8'] }],
    ['v4 /0 → two /1', 4, r({ cidr: '0.0.0.0/0' }), { kind: 'addr', members: ['0.0.0.0/1', '128.0.0.0/1'] }],
    ['v6 /0 → two /1', 6, r({ cidr: '::/0' }), { kind: 'addr', members: ['::/1', '8000::/1'] }],
    ['v6 address canonical', 6, r({ cidr: 'fd00:0:0::1/128' }), { kind: 'addr', members: ['fd00::1/128'] }],
    ['tcp port', 4, r({ cidr: '10.0.0.0/8', protocol: 'tcp', port: 80 }), { kind: 'port', members: ['10.0.0.0/8,tcp:80'] }],
    ['numeric string port', 4, r({ cidr: '10.0.0.0/8', protocol: 'udp', port: '53' }), { kind: 'port', members: ['10.0.0.0/8,udp:53'] }],
    ['port range', 4, r({ cidr: '10.0.0.0/8', protocol: 'sctp', port: [1000, 1010] }), { kind: 'port', members: ['10.0.0.0/8,sctp:1000-1010'] }],
    ['port null → 0', 4, r({ cidr: '10.0.0.0/8', protocol: 'udplite', port: null }), { kind: 'port', members: ['10.0.0.0/8,udplite:0'] }],
    ['/0 with port', 4, r({ cidr: '0.0.0.0/0', protocol: 'tcp', port: 22 }), { kind: 'port', members: ['0.0.0.0/1,tcp:22', '128.0.0.0/1,tcp:22'] }],
    ['v6 tcp', 6, r({ cidr: 'fd00::/64', protocol: 'tcp', port: 443 }), { kind: 'port', members: ['fd00::/64,tcp:443'] }],
    ['icmp without type → icmp set', 4, r({ cidr: '10.0.0.0/8', protocol: 'icmp' }), { kind: 'icmp', members: ['10.0.0.0/8'] }],
    ['icmp type, code default 0', 4, r({ cidr: '10.0.0.0/8', protocol: 'icmp', icmp_type: 8 }), { kind: 'port', members: ['10.0.0.0/8,icmp:8/0'] }],
    ['icmp type and code', 4, r({ cidr: '10.0.0.0/8', protocol: 'icmp', icmp_type: 3, icmp_code: 4 }), { kind: 'port', members: ['10.0.0.0/8,icmp:3/4'] }],
    ['icmp named type stays a name', 4, r({ cidr: '10.0.0.0/8', protocol: 'icmp', icmp_type: 'echo-request' }), { kind: 'port', members: ['10.0.0.0/8,icmp:echo-request'] }],
    ['icmpv6 without type', 6, r({ cidr: 'fd00::/8', protocol: 'icmpv6' }), { kind: 'icmp', members: ['fd00::/8'] }],
    ['icmpv6 type', 6, r({ cidr: 'fd00::/8', protocol: 'icmpv6', icmp_type: 128 }), { kind: 'port', members: ['fd00::/8,icmpv6:128/0'] }],
    ['icmpv6 name', 6, r({ cidr: 'fd00::/8', protocol: 'icmpv6', icmp_type: 'echo-request' }), { kind: 'port', members: ['fd00::/8,icmpv6:echo-request'] }],
    ['icmp in a v6 list means icmpv6', 6, r({ cidr: 'fd00::/8', protocol: 'icmp', icmp_type: 129 }), { kind: 'port', members: ['fd00::/8,icmpv6:129/0'] }],
    ['other protocol by name', 4, r({ cidr: '10.0.0.0/8', protocol: 'gre' }), { kind: 'port', members: ['10.0.0.0/8,47:0'] }],
    ['other protocol by number', 4, r({ cidr: '10.0.0.0/8', protocol: '50' }), { kind: 'port', members: ['10.0.0.0/8,50:0'] }],
    ['no cidr', 4, r({ protocol: 'tcp', port: 80 }), { invalid: /without cidr/ }],
    ['unresolved group', 4, r({ group: 'g1' }), { invalid: /group rule without cidr/ }],
    ['bad cidr', 4, r({ cidr: '10.0.0.300/32' }), { invalid: /bad cidr/ }],
    ['v6 cidr in v4 rules', 4, r({ cidr: 'fd00::/8' }), { invalid: /not IPv4/ }],
    ['v4 cidr in v6 rules', 6, r({ cidr: '10.0.0.0/8' }), { invalid: /not IPv6/ }],
    ['port without protocol', 4, r({ cidr: '10.0.0.0/8', port: 80 }), { invalid: /port without protocol/ }],
    ['port with icmp', 4, r({ cidr: '10.0.0.0/8', protocol: 'icmp', port: 80 }), { invalid: /port with icmp/ }],
    ['port out of range', 4, r({ cidr: '10.0.0.0/8', protocol: 'tcp', port: 65536 }), { invalid: /bad port/ }],
    ['reversed range', 4, r({ cidr: '10.0.0.0/8', protocol: 'tcp', port: [90, 80] }), { invalid: /bad port/ }],
    ['non-numeric port', 4, r({ cidr: '10.0.0.0/8', protocol: 'tcp', port: 'http' }), { invalid: /bad port/ }],
    ['unknown icmp name', 4, r({ cidr: '10.0.0.0/8', protocol: 'icmp', icmp_type: 'bogus' }), { invalid: /bad icmp/ }],
    ['icmp type out of range', 4, r({ cidr: '10.0.0.0/8', protocol: 'icmp', icmp_type: 256 }), { invalid: /bad icmp/ }],
    ['icmpv6 in v4 rules', 4, r({ cidr: '10.0.0.0/8', protocol: 'icmpv6' }), { invalid: /unknown protocol icmpv6|icmpv6/ }],
    ['icmp type with tcp', 4, r({ cidr: '10.0.0.0/8', protocol: 'tcp', icmp_type: 8 }), { invalid: /icmp type with protocol tcp/ }],
    ['icmp type without protocol', 4, r({ cidr: '10.0.0.0/8', icmp_type: 8 }), { invalid: /without protocol icmp/ }],
    ['port with other protocol', 4, r({ cidr: '10.0.0.0/8', protocol: 'gre', port: 1 }), { invalid: /port with protocol gre/ }],
    ['unknown protocol name', 4, r({ cidr: '10.0.0.0/8', protocol: 'bogus' }), { invalid: /unknown protocol/ }],
    ['protocol number out of range', 4, r({ cidr: '10.0.0.0/8', protocol: '300' }), { invalid: /unknown protocol/ }],
  ];
  for (const [name, family, rule, expected] of rows) {
    it(`v${family}: ${name}`, () => {
      const got = ruleEntry(rule, family);
      if ('invalid' in expected) {
        expect(got).to.have.property('invalid').that.matches(expected.invalid);
      } else {
        expect(got).to.deep.equal(expected);
      }
    });
  }

  it('fills to-sets from inbound and from-sets from outbound, deduplicated and sorted; skips invalid rules but keeps the rest', () => {
    const got = aclSetMembers(
      {
        inbound: [r({ cidr: '10.0.0.2/32' }), r({ cidr: '10.0.0.1' }), r({ cidr: '10.0.0.1/32' }), r({ cidr: '10.0.0.0/8', port: 1 }), r({ cidr: '10.0.0.0/8', protocol: 'icmp' })],
        outbound: [r({ cidr: '0.0.0.0/0', protocol: 'tcp', port: 80 }), r({})],
        inbound_default: 'deny',
        outbound_default: 'deny',
      },
      4,
    );
    expect(got.to).to.deep.equal({ addr: ['10.0.0.1/32', '10.0.0.2/32'], port: [], icmp: ['10.0.0.0/8'] });
    expect(got.from).to.deep.equal({ addr: [], port: ['0.0.0.0/1,tcp:80', '128.0.0.0/1,tcp:80'], icmp: [] });
    expect(got.invalid.map((i) => [i.direction, i.index])).to.deep.equal([['inbound', 3], ['outbound', 1]]);
  });

  it('no ACLs yet → every set empty (deny all)', () => {
    const empty = { addr: [], port: [], icmp: [] };
    expect(aclSetMembers(null, 6)).to.deep.equal({ to: empty, from: empty, invalid: [] });
  });
});
