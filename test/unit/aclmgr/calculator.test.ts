/**
 * The ACL calculation of SPEC §5: table-driven expansion cases, then
 * state sequences (add, change, remove in varied and reversed orders, with
 * repeats) checked against a naive full recomputation.
 */
import { expect } from 'chai';
import { AclCalculator, GroupState } from '../../../src/aclmgr/calculator.js';
import type { Acls } from '../../../src/common/wire/acl-api.js';
import type { Members } from '../../../src/common/wire/network-api.js';
import { Rule, Rules, emptyRules } from '../../../src/common/wire/rules.js';

const fromGroup = (group: string, extra: Partial<Rule> = {}): Rule => ({ group, cidr: null, protocol: null, port: null, ...extra });
const fromCidr = (cidr: string, extra: Partial<Rule> = {}): Rule => ({ group: null, cidr, protocol: null, port: null, ...extra });
const out = (cidr: string, extra: Partial<Rule> = {}): Rule => ({ group: null, cidr, protocol: null, port: null, ...extra });

function group(id: string, members: Members, inbound: Rule[] = [], outbound: Rule[] = []): GroupState {
  return { group: id, members, rules: { inbound, outbound, inbound_default: 'deny', outbound_default: 'deny' } };
}
const deleted = (id: string): GroupState => group(id, {});

/** The prototype plugin's shape (SPEC §4). */
const prototype = (id: string, members: Members): GroupState => group(id, members, [fromGroup(id)], [fromGroup(id), fromCidr('0.0.0.0/0')]);

function acls(v4: Partial<Rules> = {}, v6: Partial<Rules> = {}): Acls {
  return { v4: { ...emptyRules(), ...v4 }, v6: { ...emptyRules(), ...v6 } };
}

/** Order-free view of ACLs, for comparing with expectations written in any order. */
function normal(a: Acls | undefined): unknown {
  if (!a) return undefined;
  const sort = (rs: Rule[]) => rs.map((r) => JSON.stringify(r)).sort();
  return { v4: [sort(a.v4.inbound), sort(a.v4.outbound)], v6: [sort(a.v6.inbound), sort(a.v6.outbound)] };
}

describe('AclCalculator: expansion (SPEC §5)', () => {
  const rows: Array<{ name: string; updates: GroupState[]; endpoint: string; expected: Acls | undefined; invalid?: number }> = [
    {
      name: 'group rule → one /32 per member address',
      updates: [group('A', { e1: ['10.0.0.1'], e2: ['10.0.0.2'] }, [fromGroup('A')])],
      endpoint: 'e1',
      expected: acls({ inbound: [out('10.0.0.1/32'), out('10.0.0.2/32')] }),
    },
    {
      name: 'IPv6 members → /128 in v6',
      updates: [group('A', { e1: ['fd00::1'], e2: ['fd00::2'] }, [fromGroup('A')])],
      endpoint: 'e1',
      expected: acls({}, { inbound: [out('fd00::1/128'), out('fd00::2/128')] }),
    },
    {
      name: 'dual-stack member splits by family',
      updates: [group('A', { e1: ['10.0.0.1', 'fd00::1'] }, [], [fromGroup('A')])],
      endpoint: 'e1',
      expected: acls({ outbound: [out('10.0.0.1/32')] }, { outbound: [out('fd00::1/128')] }),
    },
    {
      name: 'cidr rules go to v4 or v6 by family, canonicalised',
      updates: [group('A', { e1: ['10.0.0.1'] }, [fromCidr('10.1.2.3/16'), fromCidr('FD00:0::/8')], [fromCidr('0.0.0.0/0'), fromCidr('::/0')])],
      endpoint: 'e1',
      expected: acls({ inbound: [out('10.1.0.0/16')], outbound: [out('0.0.0.0/0')] }, { inbound: [out('fd00::/8')], outbound: [out('::/0')] }),
    },
    {
      name: 'protocol, port, icmp_type and icmp_code are kept; group becomes null',
      updates: [
        group(
          'A',
          { e1: ['10.0.0.1'] },
          [fromGroup('A', { protocol: 'tcp', port: [80, 90] }), fromGroup('A', { protocol: 'icmp', icmp_type: 8, icmp_code: 0 })],
          [fromCidr('10.9.0.0/16', { protocol: 'udp', port: '53' })],
        ),
      ],
      endpoint: 'e1',
      expected: acls({
        inbound: [out('10.0.0.1/32', { protocol: 'tcp', port: [80, 90] }), out('10.0.0.1/32', { protocol: 'icmp', icmp_type: 8, icmp_code: 0 })],
        outbound: [out('10.9.0.0/16', { protocol: 'udp', port: '53' })],
      }),
    },
    {
      name: 'endpoint in two groups gets the union',
      updates: [group('A', { e1: ['10.0.0.1'] }, [fromCidr('10.1.0.0/16')]), group('B', { e1: ['10.0.0.1'], e2: ['10.0.0.2'] }, [fromGroup('B')])],
      endpoint: 'e1',
      expected: acls({ inbound: [out('10.1.0.0/16'), out('10.0.0.1/32'), out('10.0.0.2/32')] }),
    },
    {
      name: 'duplicates are dropped, within a group and across groups',
      updates: [
        group('A', { e1: ['10.0.0.1'] }, [fromCidr('10.0.0.1/32'), fromCidr('10.0.0.1'), fromGroup('A')]),
        group('B', { e1: ['10.0.0.1'] }, [fromGroup('A'), fromGroup('B')]),
      ],
      endpoint: 'e1',
      expected: acls({ inbound: [out('10.0.0.1/32')] }),
    },
    {
      name: 'a rule naming a group that has no members contributes nothing',
      updates: [group('A', { e1: ['10.0.0.1'] }, [fromGroup('NOBODY')], [fromCidr('0.0.0.0/0')])],
      endpoint: 'e1',
      expected: acls({ outbound: [out('0.0.0.0/0')] }),
    },
    {
      name: 'bad cidr, both, or neither of group/cidr: dropped and reported, the rest kept',
      updates: [
        group('A', { e1: ['10.0.0.1'] }, [
          fromCidr('10.0.0.300/32'),
          { group: 'A', cidr: '10.0.0.0/8', protocol: null, port: null },
          { group: null, cidr: null, protocol: null, port: null },
          fromCidr('192.168.0.0/16'),
        ]),
      ],
      endpoint: 'e1',
      expected: acls({ inbound: [out('192.168.0.0/16')] }),
      invalid: 3,
    },
    {
      name: 'the prototype shape',
      updates: [prototype('g1', { e1: ['192.168.1.1'], e2: ['192.168.1.2'] }), prototype('g2', { e3: ['192.168.1.3'] })],
      endpoint: 'e1',
      expected: acls({ inbound: [out('192.168.1.1/32'), out('192.168.1.2/32')], outbound: [out('192.168.1.1/32'), out('192.168.1.2/32'), out('0.0.0.0/0')] }),
    },
    {
      name: 'an endpoint in no group has no ACLs',
      updates: [prototype('g1', { e1: ['192.168.1.1'] })],
      endpoint: 'e9',
      expected: undefined,
    },
  ];

  for (const row of rows) {
    it(row.name, () => {
      const calc = new AclCalculator();
      let invalid = 0;
      for (const u of row.updates) invalid += calc.applyGroupUpdate(u).invalidRules.length;
      expect(normal(calc.aclsFor(row.endpoint))).to.deep.equal(normal(row.expected));
      expect(invalid).to.equal(row.invalid ?? 0);
    });
  }

  it('orders rules deterministically whatever order they came in', () => {
    const a = new AclCalculator();
    const b = new AclCalculator();
    a.applyGroupUpdate(group('A', { e1: ['10.0.0.2'], e2: ['10.0.0.1'] }, [fromCidr('10.5.0.0/16'), fromGroup('A')]));
    b.applyGroupUpdate(group('A', { e2: ['10.0.0.1'], e1: ['10.0.0.2'] }, [fromGroup('A'), fromCidr('10.5.0.0/16')]));
    expect(a.aclsFor('e1')).to.deep.equal(b.aclsFor('e1'));
    expect(JSON.stringify(a.aclsFor('e1'))).to.equal(JSON.stringify(b.aclsFor('e1')));
  });
});

/** What every endpoint's ACLs should be, computed from scratch (the 2014 way), as a test oracle. */
function naive(groups: Map<string, GroupState>): Map<string, unknown> {
  const result = new Map<string, Acls>();
  for (const g of groups.values()) {
    for (const ep of Object.keys(g.members)) {
      const a = result.get(ep) ?? acls();
      for (const dir of ['inbound', 'outbound'] as const) {
        for (const r of g.rules[dir]) {
          const cidrs =
            r.cidr !== null
              ? [r.cidr]
              : Object.values(groups.get(r.group!)?.members ?? {})
                  .flat()
                  .map((x) => (x.includes(':') ? `${x}/128` : `${x}/32`));
          for (const cidr of cidrs) {
            const fam = cidr.includes(':') ? 'v6' : 'v4';
            const rule = out(cidr, { protocol: r.protocol, port: r.port });
            if (!a[fam][dir].some((x) => JSON.stringify(x) === JSON.stringify(rule))) a[fam][dir].push(rule);
          }
        }
      }
      result.set(ep, a);
    }
  }
  return new Map([...result].map(([k, v]) => [k, normal(v)]));
}

describe('AclCalculator: state sequences', () => {
  /** Applies `u`, returning the ids reported changed, and checks the state against the oracle. */
  function step(calc: AclCalculator, model: Map<string, GroupState>, u: GroupState): string[] {
    const before = naive(model);
    if (Object.keys(u.members).length === 0) model.delete(u.group);
    else model.set(u.group, u);
    const after = naive(model);
    const { changes } = calc.applyGroupUpdate(u);
    const ids = changes.map((c) => c.endpoint).sort();
    // Exactly the endpoints whose ACLs differ are reported; the left ones with empty ACLs.
    const differ = [...new Set([...before.keys(), ...after.keys()])].filter((ep) => JSON.stringify(before.get(ep)) !== JSON.stringify(after.get(ep))).sort();
    expect(ids, `changed after ${u.group}`).to.deep.equal(differ);
    for (const c of changes) expect(normal(c.acls)).to.deep.equal(after.get(c.endpoint) ?? normal(acls()));
    for (const [ep, a] of after) expect(normal(calc.aclsFor(ep)), ep).to.deep.equal(a);
    expect(calc.endpointIds().sort()).to.deep.equal([...after.keys()].sort());
    return ids;
  }

  it('add, change membership, change rules, delete', () => {
    const calc = new AclCalculator();
    const model = new Map<string, GroupState>();
    expect(step(calc, model, prototype('A', { a1: ['10.0.0.1'], a2: ['10.0.0.2'] }))).to.deep.equal(['a1', 'a2']);
    expect(step(calc, model, prototype('B', { b1: ['10.0.1.1'] }))).to.deep.equal(['b1']);
    // Membership change in A touches A's members old and new, not B's.
    expect(step(calc, model, prototype('A', { a1: ['10.0.0.1'], a3: ['10.0.0.3'] }))).to.deep.equal(['a1', 'a2', 'a3']);
    // Rules-only change of B touches B only.
    expect(step(calc, model, group('B', { b1: ['10.0.1.1'] }, [fromGroup('A')]))).to.deep.equal(['b1']);
    // Now B references A: a change of A's members reaches b1 too.
    expect(step(calc, model, prototype('A', { a1: ['10.0.0.1'] }))).to.deep.equal(['a1', 'a3', 'b1']);
    expect(step(calc, model, deleted('A'))).to.deep.equal(['a1', 'b1']);
    expect(calc.aclsFor('a1')).to.equal(undefined);
  });

  it('a repeated update changes nothing', () => {
    const calc = new AclCalculator();
    const model = new Map<string, GroupState>();
    step(calc, model, prototype('A', { a1: ['10.0.0.1'] }));
    expect(step(calc, model, prototype('A', { a1: ['10.0.0.1'] }))).to.deep.equal([]);
    // Same content, members listed in another order, rules reordered.
    step(calc, model, group('A', { a1: ['10.0.0.1'], a2: ['10.0.0.2'] }, [fromGroup('A'), fromCidr('10.9.0.0/16')]));
    expect(step(calc, model, group('A', { a2: ['10.0.0.2'], a1: ['10.0.0.1'] }, [fromCidr('10.9.0.0/16'), fromGroup('A')]))).to.deep.equal([]);
  });

  it('deletion publishes deny-all once, then forgets the endpoint', () => {
    const calc = new AclCalculator();
    calc.applyGroupUpdate(prototype('A', { a1: ['10.0.0.1'] }));
    const { changes } = calc.applyGroupUpdate(deleted('A'));
    expect(changes).to.deep.equal([{ endpoint: 'a1', acls: acls() }]);
    expect(calc.aclsFor('a1')).to.equal(undefined);
    expect(calc.endpointIds()).to.deep.equal([]);
    expect(calc.groupIds()).to.deep.equal([]);
    expect(calc.applyGroupUpdate(deleted('A')).changes).to.deep.equal([]);
  });

  it('an endpoint leaving one of two groups keeps the other group’s rules', () => {
    const calc = new AclCalculator();
    const model = new Map<string, GroupState>();
    step(calc, model, group('A', { e: ['10.0.0.1'] }, [fromCidr('10.1.0.0/16')]));
    step(calc, model, group('B', { e: ['10.0.0.1'] }, [fromCidr('10.2.0.0/16')]));
    expect(step(calc, model, group('A', { other: ['10.0.0.9'] }, [fromCidr('10.1.0.0/16')]))).to.deep.equal(['e', 'other']);
    expect(normal(calc.aclsFor('e'))).to.deep.equal(normal(acls({ inbound: [out('10.2.0.0/16')] })));
  });

  it('a group referenced before it has members is picked up when it arrives, and dropped when it goes', () => {
    const calc = new AclCalculator();
    const model = new Map<string, GroupState>();
    expect(step(calc, model, group('web', { w1: ['10.0.0.1'] }, [fromGroup('db')]))).to.deep.equal(['w1']);
    expect(step(calc, model, group('db', { d1: ['10.0.1.1', 'fd00::11'] }))).to.deep.equal(['d1', 'w1']);
    expect(step(calc, model, deleted('db'))).to.deep.equal(['d1', 'w1']);
    expect(step(calc, model, group('db', { d2: ['10.0.1.2'] }))).to.deep.equal(['d2', 'w1']);
  });

  it('retainGroups drops the groups not re-announced', () => {
    const calc = new AclCalculator();
    calc.applyGroupUpdate(prototype('A', { a1: ['10.0.0.1'] }));
    calc.applyGroupUpdate(group('B', { b1: ['10.0.1.1'] }, [fromGroup('A')]));
    const { dropped, changes } = calc.retainGroups(new Set(['B']));
    expect(dropped).to.deep.equal(['A']);
    expect(changes.map((c) => c.endpoint).sort()).to.deep.equal(['a1', 'b1']);
    expect(calc.aclsFor('b1')).to.deep.equal(acls());
  });

  it('ids that name Object.prototype properties, or use SPEC §3 v2 characters, move between groups like any other', () => {
    // Built with fromEntries: a literal `{ __proto__: … }` would set the prototype instead of adding a member.
    const ids = ['constructor', 'toString', 'valueOf', 'hasOwnProperty', '__proto__', 'web:1', 'host1:ctr/web'];
    const members = (extra: string, base: number): Members => Object.fromEntries([extra, ...ids].map((id, i) => [id, [`10.0.${base}.${i + 1}`]]));
    const calc = new AclCalculator();
    const model = new Map<string, GroupState>();
    step(calc, model, prototype('group1', members('g1', 1)));
    step(calc, model, prototype('group2', { g2: ['10.0.2.99'] }));
    // Everyone but g1 moves to group2: their ACLs must hold group2's addresses only.
    const moved = members('g2', 2);
    moved['g2'] = ['10.0.2.99'];
    expect(step(calc, model, prototype('group1', { g1: ['10.0.1.1'] }))).to.deep.equal([...ids, 'g1'].sort());
    expect(step(calc, model, prototype('group2', moved))).to.include.members(ids);
    for (const id of ids) {
      const inbound = calc.aclsFor(id)!.v4.inbound.map((r) => r.cidr);
      expect(inbound, id).to.include('10.0.2.99/32').and.not.include('10.0.1.1/32');
    }
    // And back, then gone: nothing of either group stays behind.
    expect(step(calc, model, prototype('group1', members('g1', 1)))).to.include.members(ids);
    step(calc, model, deleted('group2'));
    step(calc, model, deleted('group1'));
    expect(calc.endpointIds()).to.deep.equal([]);
  });

  /** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
  function rng(seed: number): () => number {
    return () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function randomGroup(rand: () => number, id: string): GroupState {
    const pick = <T>(xs: T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const members: Members = {};
    const n = Math.floor(rand() * 4);
    for (let i = 0; i < n; i++) {
      const ep = pick(['e1', 'e2', 'e3', 'e4', 'e5', 'e6']);
      members[ep] = rand() < 0.2 ? [`10.0.0.${ep.slice(1)}`, `fd00::${ep.slice(1)}`] : [`10.0.0.${ep.slice(1)}`];
    }
    const rule = (): Rule =>
      rand() < 0.6
        ? fromGroup(pick(['G1', 'G2', 'G3', 'G4']))
        : fromCidr(pick(['0.0.0.0/0', '10.9.0.0/16', '::/0']), rand() < 0.3 ? { protocol: 'tcp', port: 80 } : {});
    return group(id, members, Array.from({ length: Math.floor(rand() * 3) }, rule), Array.from({ length: Math.floor(rand() * 3) }, rule));
  }

  it('random sequences, forwards, reversed and with repeats, match a full recomputation', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const rand = rng(seed);
      const updates = Array.from({ length: 12 }, () => randomGroup(rand, ['G1', 'G2', 'G3', 'G4'][Math.floor(rand() * 4)]!));
      const teardown = ['G1', 'G2', 'G3', 'G4'].map(deleted);
      for (const sequence of [[...updates, ...teardown], [...[...updates].reverse(), ...[...teardown].reverse()], updates.flatMap((u) => [u, u])]) {
        const calc = new AclCalculator();
        const model = new Map<string, GroupState>();
        for (const u of sequence) step(calc, model, u);
      }
    }
  });
});

describe('AclCalculator.explain: where each rule of an endpoint came from', () => {
  it('names the group, direction, index and referenced group of every rule, and the groups with their rules', () => {
    const calc = new AclCalculator();
    calc.applyGroupUpdate(prototype('web', { w1: ['10.0.0.1'], w2: ['10.0.0.2', 'fd00::2'] }));
    calc.applyGroupUpdate(group('ops', { w1: ['10.0.0.1'] }, [fromCidr('10.9.0.0/16', { protocol: 'tcp', port: 22 }), fromGroup('web')]));
    const ex = calc.explain('w1')!;
    expect(ex.groups.map((g) => [g.group, g.members])).to.deep.equal([
      ['ops', 1],
      ['web', 2],
    ]);
    expect(ex.groups[0]!.rules.inbound[0]).to.deep.include({ cidr: '10.9.0.0/16', protocol: 'tcp', port: 22, group: null });
    expect(ex.addrs).to.deep.equal(['10.0.0.1']);
    const inbound = ex.acls.v4.inbound.map((r, i) => [
      r.cidr,
      r.protocol,
      ex.sources.v4.inbound[i]!.map((s) => `${s.group}.${s.direction}[${s.index}] via ${s.via}`),
    ]);
    // 10.0.0.2/32 comes from both web's own rule and ops' rule naming web: both are listed.
    expect(inbound).to.have.deep.members([
      ['10.0.0.1/32', null, ['ops.inbound[1] via web', 'web.inbound[0] via web']],
      ['10.0.0.2/32', null, ['ops.inbound[1] via web', 'web.inbound[0] via web']],
      ['10.9.0.0/16', 'tcp', ['ops.inbound[0] via null']],
    ]);
    expect(ex.acls.v6.inbound.map((r) => r.cidr)).to.deep.equal(['fd00::2/128']);
    expect(ex.sources.v6.inbound).to.deep.equal([
      [
        { group: 'web', direction: 'inbound', index: 0, via: 'web' },
        { group: 'ops', direction: 'inbound', index: 1, via: 'web' },
      ].sort((a, b) => a.group.localeCompare(b.group)),
    ]);
    expect(ex.sources.v4.outbound.every((s) => s.length > 0)).to.equal(true);
  });

  it('knows nothing of an endpoint in no group', () => {
    const calc = new AclCalculator();
    calc.applyGroupUpdate(prototype('web', { w1: ['10.0.0.1'] }));
    expect(calc.explain('nobody')).to.equal(undefined);
    calc.applyGroupUpdate(deleted('web'));
    expect(calc.explain('w1')).to.equal(undefined);
  });
});
