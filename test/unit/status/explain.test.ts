/**
 * `calico-status explain` (issue #16: "Why can't A reach B?"), pure: the
 * daemons' documents built by hand — the ACL manager's view from the real
 * AclCalculator, Felix's ACLs as the ACL manager would have sent them and its
 * skipped rules as Felix renders them — in; hops, verdict and the summary
 * line the operator reads out.
 */
import { expect } from 'chai';
import { defaultInterfaceName } from '../../../src/common/endpoint-names.js';
import { AclCalculator } from '../../../src/aclmgr/calculator.js';
import type { EndpointStatus } from '../../../src/common/metrics.js';
import type { AclEndpointView, FelixEndpointView, RouteView, SkippedRule } from '../../../src/common/status-api.js';
import type { Acls } from '../../../src/common/wire/acl-api.js';
import type { Rule, Rules } from '../../../src/common/wire/rules.js';
import { renderAclRules } from '../../../src/felix/dataplane/render/acl.js';
import { prototypeRules } from '../../../src/plugin/changes.js';
import {
  explain,
  formatExplanation,
  packetQuery,
  shortId,
  type ExplainEnd,
  type ExplainInputs,
  type Explanation,
  type PacketSpec,
} from '../../../src/status/explain.js';

interface Ep {
  id: string;
  host: string;
  addrs: string[];
  groups: string[];
}

const ifname = (ep: Ep): string => defaultInterfaceName('tap', ep.id);

/** The prototype's picture: group1 on both hosts, group2 on instance-1. */
const A: Ep = { id: '1f0e7c2a-aaaa-4aaa-8aaa-000000000001', host: 'instance-1', addrs: ['192.168.1.1', 'fd00:1::1'], groups: ['group1'] };
const B: Ep = { id: '2b9d4e6f-bbbb-4bbb-8bbb-000000000004', host: 'instance-2', addrs: ['192.168.1.4', 'fd00:1::4'], groups: ['group1'] };
const C: Ep = { id: '3c8a5d7e-cccc-4ccc-8ccc-000000000002', host: 'instance-1', addrs: ['192.168.1.2', 'fd00:1::2'], groups: ['group2'] };
const E: Ep = { id: '4e7b6c8d-eeee-4eee-8eee-000000000005', host: 'instance-1', addrs: ['192.168.1.5'], groups: ['group1'] };
/** An admin host and two servers that let admins in over ssh only. */
const M: Ep = { id: '5a5a5a5a-mmmm-4mmm-8mmm-000000000009', host: 'instance-1', addrs: ['192.168.1.9'], groups: ['admins'] };
const S: Ep = { id: '6b6b6b6b-ssss-4sss-8sss-000000000008', host: 'instance-2', addrs: ['192.168.1.8'], groups: ['ssh'] };

const rule = (fields: Partial<Rule>): Rule => ({ group: null, cidr: null, protocol: null, port: null, ...fields });
const rules = (inbound: Rule[], outbound: Rule[]): Rules => ({ inbound, outbound, inbound_default: 'deny', outbound_default: 'deny' });
const sshOnly = rules([rule({ group: 'admins', protocol: 'tcp', port: 22 })], [rule({ cidr: '0.0.0.0/0' })]);

/**
 * The ACL manager fed whole groups (the prototype's rules unless given):
 * its view of each endpoint, and the ACLs it publishes (which Felix holds).
 */
class World {
  readonly calc = new AclCalculator();

  constructor(eps: Ep[], groupRules: Record<string, Rules> = {}) {
    const groups = [...new Set(eps.flatMap((e) => e.groups))].sort();
    for (const g of groups) {
      const members = Object.fromEntries(eps.filter((e) => e.groups.includes(g)).map((e) => [e.id, e.addrs]));
      const { invalidRules } = this.calc.applyGroupUpdate({ group: g, members, rules: groupRules[g] ?? prototypeRules(g) });
      expect(invalidRules).to.deep.equal([]);
    }
  }

  acls(ep: Ep): Acls {
    const acls = this.calc.aclsFor(ep.id);
    if (!acls) throw new Error(`${ep.id} has no ACLs`);
    return acls;
  }

  /** One end as the daemons report it; Felix holds what the ACL manager computes unless told otherwise. */
  end(
    ep: Ep,
    family: 4 | 6,
    over: { endpoint?: Partial<EndpointStatus>; acls?: Acls | null; skipped?: SkippedRule[]; acl?: AclEndpointView | null } = {},
  ): ExplainEnd {
    const acls = over.acls === undefined ? this.acls(ep) : over.acls;
    const felix: FelixEndpointView = {
      host: ep.host,
      endpoint: {
        id: ep.id,
        ifname: ifname(ep),
        addrs: ep.addrs,
        mac: 'ee:ee:ee:ee:ee:ee',
        enabled: true,
        interfaceUp: true,
        routesProgrammed: true,
        chainsProgrammed: true,
        programmed: true,
        error: null,
        aclAgeSeconds: acls === null ? null : 12.5,
        deniedPackets: null,
        ...over.endpoint,
      },
      acls,
      // As Felix's /status/endpoint reports them: the rules its rendering skipped.
      skipped:
        over.skipped ?? (acls ? renderAclRules(acls).invalid.map(({ family: f, direction, index, reason }) => ({ family: f, direction, index, reason })) : []),
      chains: [],
    };
    const acl = over.acl === undefined ? (this.calc.explain(ep.id) ?? null) : over.acl;
    return { addr: ep.addrs.find((a) => (a.includes(':') ? 6 : 4) === family)!, felix, acl };
  }
}

/** The route from SRC's host to DST: via the other host's address, learned from BIRD; or the local tap route. */
function routeTo(src: Ep, dst: Ep, family: 4 | 6, over: Partial<RouteView> = {}): RouteView {
  const addr = dst.addrs.find((a) => (a.includes(':') ? 6 : 4) === family)!;
  const base: RouteView =
    src.host === dst.host
      ? { host: src.host, dst: addr, dev: ifname(dst), gateway: null, protocol: null, endpoint: dst.id, error: null }
      : { host: src.host, dst: addr, dev: 'v0', gateway: family === 4 ? '198.18.0.2' : 'fd00:ffff::2', protocol: 'bird', endpoint: null, error: null };
  return { ...base, ...over };
}

interface Case {
  family?: 4 | 6;
  packet?: PacketSpec;
  src?: Parameters<World['end']>[2];
  dst?: Parameters<World['end']>[2];
  route?: Partial<RouteView>;
}

function inputs(world: World, src: Ep, dst: Ep, c: Case = {}): ExplainInputs {
  const family = c.family ?? 4;
  return {
    family,
    src: world.end(src, family, c.src),
    dst: world.end(dst, family, c.dst),
    route: routeTo(src, dst, family, c.route),
    packet: c.packet ?? { protocol: 'tcp', port: 80 },
  };
}

function explained(world: World, src: Ep, dst: Ep, c: Case = {}): Explanation {
  const x = explain(inputs(world, src, dst, c));
  if ('error' in x) throw new Error(`explain refused: ${x.error}`);
  return x;
}

const hop = (x: Explanation, name: string) => {
  const h = x.hops.find((y) => y.hop === name);
  if (!h) throw new Error(`no ${name} hop in ${x.hops.map((y) => y.hop).join(', ')}`);
  return h;
};
const allLines = (x: Explanation): string[] => x.hops.flatMap((h) => h.lines);

const world = new World([A, B, C, E]);
const a = shortId(A.id);
const b = shortId(B.id);
const c = shortId(C.id);

describe('explain: why can A reach B, or not (issue #16)', () => {
  it('cuts long ids as calico-status shows them', () => {
    expect(a).to.equal('1f0e7c2a-aa…');
    expect(shortId('short')).to.equal('short');
    expect(shortId('abcdefghijkl')).to.equal('abcdefghijkl');
  });

  describe('allowed', () => {
    it('two group1 members on different hosts, routed over BGP: ALLOW, naming both group rules', () => {
      const x = explained(world, A, B);
      expect(x.verdict).to.equal('ALLOW');
      expect(x.deniedAt).to.equal(null);
      expect(x.summary).to.equal(
        `ALLOW 192.168.1.1 → 192.168.1.4 tcp port 80: out of ${a} by group1 outbound rule 1 (0.0.0.0/0); ` +
          `into ${b} by group1 inbound rule 0 (members of group1: 192.168.1.1/32)`,
      );
      expect(x.hops.map((h) => [h.hop, h.host, h.result])).to.deep.equal([
        ['source', 'instance-1', 'note'],
        ['outbound', 'instance-1', 'pass'],
        ['route', 'instance-1', 'pass'],
        ['destination', 'instance-2', 'note'],
        ['inbound', 'instance-2', 'pass'],
      ]);
      expect(hop(x, 'route').lines).to.deep.equal(['192.168.1.4 via 198.18.0.2 dev v0 proto bird (next hop towards instance-2, learned over BGP)']);
      expect(hop(x, 'source').lines).to.deep.equal([`endpoint ${A.id}, interface ${ifname(A)}, 192.168.1.1 fd00:1::1; groups: group1`]);
      expect(hop(x, 'outbound').lines).to.deep.equal([
        `felix-from chain of ${a}: programmed, ACLs 12s old, same as the ACL manager computes`,
        'ALLOW by rule 0 of 4: 0.0.0.0/0, from group1 outbound rule 1 (0.0.0.0/0)',
      ]);
      expect(hop(x, 'inbound').lines[1]).to.equal('ALLOW by rule 0 of 3: 192.168.1.1/32, from group1 inbound rule 0 (members of group1: 192.168.1.1/32)');
      expect(x.src).to.deep.equal({ endpoint: A.id, addr: '192.168.1.1', host: 'instance-1' });
      expect(x.dst).to.deep.equal({ endpoint: B.id, addr: '192.168.1.4', host: 'instance-2' });
    });

    it('a route learned otherwise does not claim BGP', () => {
      const x = explained(world, A, B, { route: { protocol: 'static' } });
      expect(x.verdict).to.equal('ALLOW');
      expect(hop(x, 'route').lines).to.deep.equal(['192.168.1.4 via 198.18.0.2 dev v0 proto static (next hop towards instance-2)']);
    });

    it('IPv6 between group1 members: allowed by the member rule (there is no ::/0)', () => {
      const x = explained(world, A, B, { family: 6, packet: { protocol: 'icmp', port: null } });
      expect(x.verdict).to.equal('ALLOW');
      expect(x.summary).to.equal(
        `ALLOW fd00:1::1 → fd00:1::4 icmp: out of ${a} by group1 outbound rule 0 (members of group1: fd00:1::4/128); ` +
          `into ${b} by group1 inbound rule 0 (members of group1: fd00:1::1/128)`,
      );
    });

    it('two group1 members on the same host: the local tap route', () => {
      const x = explained(world, A, E, { packet: { protocol: 'udp', port: 53 } });
      expect(x.verdict).to.equal('ALLOW');
      expect(hop(x, 'route').lines).to.deep.equal([`192.168.1.5 dev ${ifname(E)} (local)`]);
    });

    it('group2 may send anywhere in IPv4 (0.0.0.0/0): its outbound passes', () => {
      const x = explained(world, C, B);
      expect(hop(x, 'outbound').result).to.equal('pass');
      expect(hop(x, 'outbound').lines[1]).to.equal('ALLOW by rule 0 of 2: 0.0.0.0/0, from group2 outbound rule 1 (0.0.0.0/0)');
    });
  });

  describe('denied by the rules', () => {
    it("group2 → group1 across hosts, IPv4: DENY at the destination's inbound", () => {
      const x = explained(world, C, B, { packet: { protocol: 'icmp', port: null } });
      expect(x.verdict).to.equal('DENY');
      expect(x.deniedAt).to.deep.equal({ host: 'instance-2', hop: 'inbound' });
      expect(x.summary).to.equal(
        `DENY at instance-2 inbound to ${b}: 192.168.1.2 is not in any allowed cidr; it is in group2; group1 allows only members of group1`,
      );
      expect(x.hops.map((h) => h.hop)).to.deep.equal(['source', 'outbound', 'route', 'destination', 'inbound']);
      expect(hop(x, 'inbound').result).to.equal('deny');
      expect(hop(x, 'inbound').lines[1]).to.equal(
        `DENY: no rule of 3 allows it (default deny): 192.168.1.2 is not in any allowed cidr; it is in group2; group1 allows only members of group1`,
      );
    });

    it("group2 → group1, IPv6: DENY at the source's outbound (0.0.0.0/0 is IPv4 only), and 0.0.0.0/0 is not offered as a reason", () => {
      const x = explained(world, C, B, { family: 6, packet: { protocol: 'icmp', port: null } });
      expect(x.verdict).to.equal('DENY');
      expect(x.deniedAt).to.deep.equal({ host: 'instance-1', hop: 'outbound' });
      expect(x.summary).to.equal(
        `DENY at instance-1 outbound from ${c}: fd00:1::4 is not in any allowed cidr; it is in group1; group2 allows only members of group2`,
      );
      expect(x.hops.map((h) => h.hop)).to.deep.equal(['source', 'outbound']);
      for (const line of [x.summary, ...allLines(x)]) expect(line).not.to.include('0.0.0.0/0');
    });

    it('a group with no IPv6 outbound rule says it allows nothing in IPv6', () => {
      const w = new World([A, B, C], { group2: rules([rule({ group: 'group2' })], [rule({ cidr: '0.0.0.0/0' })]) });
      const x = explained(w, C, B, { family: 6, packet: { protocol: 'icmp', port: null } });
      expect(x.summary).to.equal(
        `DENY at instance-1 outbound from ${c}: fd00:1::4 is not in any allowed cidr; it is in group1; group2 allows nothing outbound in IPv6`,
      );
    });

    describe('a rule for the peer on tcp port 22 only', () => {
      const w = new World([M, S], { ssh: sshOnly });
      const s = shortId(S.id);

      it('tcp port 80: DENY, allowed only for tcp port 22', () => {
        const x = explained(w, M, S, { packet: { protocol: 'tcp', port: 80 } });
        expect(x.verdict).to.equal('DENY');
        expect(x.deniedAt).to.deep.equal({ host: 'instance-2', hop: 'inbound' });
        expect(x.summary).to.equal(
          `DENY at instance-2 inbound to ${s}: 192.168.1.9 is allowed only for 192.168.1.9/32 tcp port 22; it is in admins; ssh allows only members of admins tcp port 22`,
        );
      });

      it('udp port 22: DENY the same way', () => {
        const x = explained(w, M, S, { packet: { protocol: 'udp', port: 22 } });
        expect(x.verdict).to.equal('DENY');
        expect(x.summary).to.include('192.168.1.9 is allowed only for 192.168.1.9/32 tcp port 22');
      });

      it("tcp port 22: ALLOW by the ssh group's rule", () => {
        const x = explained(w, M, S, { packet: { protocol: 'tcp', port: 22 } });
        expect(x.verdict).to.equal('ALLOW');
        expect(x.summary).to.equal(
          `ALLOW 192.168.1.9 → 192.168.1.8 tcp port 22: out of ${shortId(M.id)} by admins outbound rule 1 (0.0.0.0/0); into ${s} by ssh inbound rule 0 (members of admins: 192.168.1.9/32 tcp port 22)`,
        );
      });
    });

    it('a peer the ACL manager knows in no group: said so', () => {
      const x = explained(world, C, B, { src: { acl: null } });
      expect(x.verdict).to.equal('DENY');
      expect(hop(x, 'source').lines[0]).to.match(/; groups: none the ACL manager knows$/);
      expect(x.summary).to.equal(
        `DENY at instance-2 inbound to ${b}: 192.168.1.2 is not in any allowed cidr; the ACL manager knows it in no group; group1 allows only members of group1`,
      );
    });
  });

  describe("denied by the endpoint's state, whatever its rules", () => {
    const rows: Array<{ name: string; over: Case['dst']; reason: string; state: RegExp }> = [
      {
        name: 'no ACLs yet (acls null)',
        over: { acls: null },
        reason: 'no ACLs have arrived yet: everything is denied until the first ACLUPDATE',
        state: /: programmed, no ACLs yet$/,
      },
      {
        name: 'disabled',
        over: { endpoint: { enabled: false, routesProgrammed: false } },
        reason: 'the endpoint is disabled: its chains allow nothing',
        state: /: programmed, ACLs 12s old, same as the ACL manager computes$/,
      },
      {
        name: 'programming failed (FAILED)',
        over: { endpoint: { programmed: false, chainsProgrammed: false, error: 'programming chains and sets failed: ipset restore: boom' } },
        reason: 'programming failed (programming chains and sets failed: ipset restore: boom): the endpoint is out of dispatch until a retry succeeds',
        state: /: FAILED, ACLs 12s old/,
      },
      {
        name: 'interface down',
        over: { endpoint: { interfaceUp: false, routesProgrammed: false, programmed: false } },
        reason: `its interface ${ifname(B)} is down or missing`,
        state: /: pending \(the kernel may still hold the previous rules\), ACLs 12s old/,
      },
    ];
    for (const row of rows)
      it(`destination ${row.name}: DENY at its inbound`, () => {
        const x = explained(world, A, B, { dst: row.over });
        expect(x.verdict).to.equal('DENY');
        expect(x.deniedAt).to.deep.equal({ host: 'instance-2', hop: 'inbound' });
        expect(x.summary).to.equal(`DENY at instance-2 inbound to ${b}: ${row.reason}`);
        expect(hop(x, 'inbound').lines).to.have.length(2);
        expect(hop(x, 'inbound').lines[0])
          .to.match(new RegExp(`^felix-to chain of ${b}`))
          .and.match(row.state);
        expect(hop(x, 'inbound').lines[1]).to.equal(`DENY: ${row.reason}`);
      });

    it('source without ACLs: DENY at its outbound, before the route', () => {
      const x = explained(world, A, B, { src: { acls: null } });
      expect(x.deniedAt).to.deep.equal({ host: 'instance-1', hop: 'outbound' });
      expect(x.summary).to.equal(`DENY at instance-1 outbound from ${a}: no ACLs have arrived yet: everything is denied until the first ACLUPDATE`);
      expect(x.hops.map((h) => h.hop)).to.deep.equal(['source', 'outbound']);
    });
  });

  describe('rules Felix did not program', () => {
    /** The ssh server also lets 10.0.0.0/16 in on every tcp port: 65 536 entries, the whole port budget. */
    const big = rules(
      [rule({ cidr: '10.0.0.0/16', protocol: 'tcp', port: [0, 65535] }), rule({ group: 'admins', protocol: 'tcp', port: 22 })],
      [rule({ cidr: '0.0.0.0/0' })],
    );
    const w = new World([M, S], { ssh: big });
    const s = shortId(S.id);

    it('Felix reports the admins rule over the port budget', () => {
      const end = w.end(S, 4);
      expect(end.felix.acls!.v4.inbound.map((r) => r.cidr)).to.deep.equal(['10.0.0.0/16', '192.168.1.9/32']);
      expect(end.felix.skipped).to.have.length(1);
      expect(end.felix.skipped[0]).to.include({ family: 4, direction: 'inbound', index: 1 });
      expect(end.felix.skipped[0]!.reason).to.match(/^port entries over budget/);
    });

    it('a skipped rule that would match: DENY, and the hop says it is not programmed', () => {
      const x = explained(w, M, S, { packet: { protocol: 'tcp', port: 22 } });
      expect(x.verdict).to.equal('DENY');
      expect(x.deniedAt).to.deep.equal({ host: 'instance-2', hop: 'inbound' });
      const lines = hop(x, 'inbound').lines;
      expect(lines[1]).to.match(/^rule 1 \(192\.168\.1\.9\/32 tcp port 22\) would match but is not programmed: port entries over budget/);
      expect(lines[2]).to.match(/^DENY: no rule of 2 allows it \(default deny\)/);
      // The summary does not pretend the peer is in no allowed cidr: the rule is there, unprogrammed.
      expect(x.summary).to.match(
        new RegExp(
          `^DENY at instance-2 inbound to ${s}: 192\\.168\\.1\\.9 would be allowed by 192\\.168\\.1\\.9/32 tcp port 22, which Felix has not programmed \\(port entries over budget`,
        ),
      );
      expect(x.summary).not.to.include('is not in any allowed cidr');
      expect(x.summary).to.include('; it is in admins; ssh allows only 10.0.0.0/16 tcp port 0-65535, members of admins tcp port 22');
    });

    it('a skipped rule for the peer on another port would not match: it is not said to', () => {
      const x = explained(w, M, S, { packet: { protocol: 'tcp', port: 80 } });
      expect(x.verdict).to.equal('DENY');
      const lines = hop(x, 'inbound').lines;
      for (const line of lines) expect(line).not.to.include('would match');
      expect(lines[1]).to.match(/^rule 1 \(192\.168\.1\.9\/32 tcp port 22\) is not programmed: port entries over budget/);
      expect(x.summary).to.include(': 192.168.1.9 is not in any allowed cidr; it is in admins;');
    });

    it('a rule Felix skips as invalid, for the peer: the hop says why', () => {
      // Felix holds what the ACL manager sent; a port without protocol is skipped (the ACL manager passes it on).
      const acls = w.acls(S);
      const withBad: Acls = { ...acls, v4: { ...acls.v4, inbound: [rule({ cidr: '192.168.1.9/32', port: 80 })] } };
      const x = explained(w, M, S, { packet: { protocol: 'tcp', port: 80 }, dst: { acls: withBad } });
      expect(x.verdict).to.equal('DENY');
      expect(hop(x, 'inbound').lines[1]).to.equal('rule 0 (192.168.1.9/32 port 80) would match but is not programmed: port without protocol');
    });
  });

  describe('denied by the route', () => {
    it("no route (the kernel's error): DENY at the source host's route", () => {
      const x = explained(world, A, B, { route: { dev: null, gateway: null, protocol: null, error: 'Network is unreachable' } });
      expect(x.verdict).to.equal('DENY');
      expect(x.deniedAt).to.deep.equal({ host: 'instance-1', hop: 'route' });
      expect(x.summary).to.equal(`DENY at instance-1 route from ${a}: no route to 192.168.1.4 (Network is unreachable)`);
      expect(hop(x, 'route').lines).to.deep.equal(['no route to 192.168.1.4: Network is unreachable']);
      expect(x.hops.map((h) => h.hop)).to.deep.equal(['source', 'outbound', 'route']);
    });

    it("same host, but the route leads to another endpoint's interface: DENY at route", () => {
      const x = explained(world, A, E, { route: { dev: ifname(C), endpoint: C.id } });
      expect(x.verdict).to.equal('DENY');
      expect(x.deniedAt).to.deep.equal({ host: 'instance-1', hop: 'route' });
      expect(x.summary).to.equal(`DENY at instance-1 route from ${a}: the route to 192.168.1.5 leads to another endpoint's interface`);
      expect(hop(x, 'route').lines).to.deep.equal([`192.168.1.5 dev ${ifname(C)}: the interface of endpoint ${C.id}, not of ${E.id}`]);
    });

    it('same host, but the route leads off the host: DENY at route', () => {
      const x = explained(world, A, E, { route: { dev: 'v0', gateway: '198.18.0.254', protocol: 'boot', endpoint: null } });
      expect(x.deniedAt).to.deep.equal({ host: 'instance-1', hop: 'route' });
      expect(x.summary).to.equal(`DENY at instance-1 route from ${a}: the route to 192.168.1.5 does not lead to its interface`);
    });
  });

  describe('Felix and the ACL manager disagree (an update on its way)', () => {
    it("Felix still has B's ACLs from before A joined: the verdict follows Felix, and the hop says it differs", () => {
      const before = new World([B, E]);
      const x = explained(world, A, B, { dst: { acls: before.acls(B) } });
      expect(x.verdict).to.equal('DENY');
      expect(x.deniedAt).to.deep.equal({ host: 'instance-2', hop: 'inbound' });
      expect(hop(x, 'inbound').lines[0]).to.equal(
        `felix-to chain of ${b}: programmed, ACLs 12s old, NOT what the ACL manager computes now (an update is on its way)`,
      );
      expect(hop(x, 'outbound').lines[0]).to.include('same as the ACL manager computes');
      expect(x.summary).to.equal(
        `DENY at instance-2 inbound to ${b}: 192.168.1.1 is not in any allowed cidr; it is in group1; group1 allows only members of group1`,
      );
    });

    it('Felix still lets in a peer the ACL manager no longer allows: ALLOW by the bare rule (no group rule behind it)', () => {
      const moved = new World([{ ...A, groups: ['group2'] }, B, E]);
      const x = explained(moved, { ...A, groups: ['group2'] }, B, { dst: { acls: world.acls(B) } });
      expect(x.verdict).to.equal('ALLOW');
      expect(hop(x, 'inbound').lines[0]).to.include('NOT what the ACL manager computes now');
      expect(hop(x, 'inbound').lines[1]).to.equal('ALLOW by rule 0 of 3: 192.168.1.1/32');
      expect(x.summary).to.match(new RegExp(`; into ${b} by rule 0 \\(192\\.168\\.1\\.1/32\\)$`));
    });
  });

  describe('the packet asked about', () => {
    const errors: Array<[PacketSpec, 4 | 6, string]> = [
      [{ protocol: 'tcp', port: null }, 4, '--port is needed with protocol tcp'],
      [{ protocol: 'udp', port: null }, 6, '--port is needed with protocol udp'],
      [{ protocol: 'icmp', port: 80 }, 4, '--port makes no sense with protocol icmp'],
      [{ protocol: 'gre', port: 80 }, 4, '--port makes no sense with protocol gre'],
      [{ protocol: 'nosuchproto', port: null }, 4, 'unknown protocol "nosuchproto"'],
      [{ protocol: 'icmpv6', port: null }, 4, 'unknown protocol "icmpv6"'],
      [{ protocol: 'tcp', port: 70000 }, 4, '--port must be 0..65535'],
      [{ protocol: 'tcp', port: -1 }, 4, '--port must be 0..65535'],
      [{ protocol: 'udp', port: 1.5 }, 4, '--port must be 0..65535'],
    ];
    for (const [spec, family, error] of errors) {
      it(`${JSON.stringify(spec)} in IPv${family}: ${error}`, () =>
        expect(packetQuery(spec, family, family === 4 ? '192.168.1.4' : 'fd00:1::4')).to.deep.equal({ error }));
      it(`explain() answers {error} for ${JSON.stringify(spec)}`, () =>
        expect(explain({ ...inputs(world, A, B, { family }), packet: spec })).to.deep.equal({ error }));
    }

    const queries: Array<[PacketSpec, 4 | 6, object]> = [
      [{ protocol: 'tcp', port: 80 }, 4, { protocol: 6, port: 80, icmp: null }],
      [{ protocol: 'udp', port: 0 }, 4, { protocol: 17, port: 0, icmp: null }],
      [{ protocol: 'sctp', port: 65535 }, 6, { protocol: 132, port: 65535, icmp: null }],
      [{ protocol: 'icmp', port: null }, 4, { protocol: 1, port: null, icmp: { type: 8, code: 0 } }],
      [{ protocol: 'icmp', port: null }, 6, { protocol: 58, port: null, icmp: { type: 128, code: 0 } }],
      [{ protocol: 'icmpv6', port: null }, 6, { protocol: 58, port: null, icmp: { type: 128, code: 0 } }],
      [{ protocol: '47', port: null }, 4, { protocol: 47, port: null, icmp: null }],
      [{ protocol: 'gre', port: null }, 6, { protocol: 47, port: null, icmp: null }],
    ];
    for (const [spec, family, want] of queries)
      it(`${JSON.stringify(spec)} in IPv${family} is ${JSON.stringify(want)}`, () =>
        expect(packetQuery(spec, family, 'peer')).to.deep.equal({ peer: 'peer', ...want }));

    it('a protocol-only rule (gre) against gre and tcp', () => {
      const w = new World([M, S], { ssh: rules([rule({ group: 'admins', protocol: 'gre' })], [rule({ cidr: '0.0.0.0/0' })]) });
      expect(explained(w, M, S, { packet: { protocol: 'gre', port: null } }).verdict).to.equal('ALLOW');
      const x = explained(w, M, S, { packet: { protocol: 'tcp', port: 80 } });
      expect(x.verdict).to.equal('DENY');
      expect(x.summary).to.include('192.168.1.9 is allowed only for 192.168.1.9/32 gre');
    });
  });

  describe('formatExplanation', () => {
    it('a heading, one line per hop line, the summary last', () => {
      const x = explained(world, A, B);
      const lines = formatExplanation(x).split('\n');
      expect(lines[0]).to.equal(`explain IPv4 192.168.1.1 (${a} on instance-1) → 192.168.1.4 (${b} on instance-2), tcp port 80, a new connection`);
      expect(lines).to.have.length(1 + allLines(x).length + 1);
      expect(lines.at(-1)).to.equal(x.summary);
      expect(lines.slice(1, -1)).to.deep.equal([
        `  source       [instance-1] endpoint ${A.id}, interface ${ifname(A)}, 192.168.1.1 fd00:1::1; groups: group1`,
        `  outbound     [instance-1] felix-from chain of ${a}: programmed, ACLs 12s old, same as the ACL manager computes`,
        '                 ALLOW by rule 0 of 4: 0.0.0.0/0, from group1 outbound rule 1 (0.0.0.0/0)',
        '  route        [instance-1] 192.168.1.4 via 198.18.0.2 dev v0 proto bird (next hop towards instance-2, learned over BGP)',
        `  destination  [instance-2] endpoint ${B.id}, interface ${ifname(B)}, 192.168.1.4 fd00:1::4; groups: group1`,
        `  inbound      [instance-2] felix-to chain of ${b}: programmed, ACLs 12s old, same as the ACL manager computes`,
        '                 ALLOW by rule 0 of 3: 192.168.1.1/32, from group1 inbound rule 0 (members of group1: 192.168.1.1/32)',
      ]);
    });

    it('a denial stops at its hop; IPv6 in the heading', () => {
      const x = explained(world, C, B, { family: 6, packet: { protocol: 'icmp', port: null } });
      const lines = formatExplanation(x).split('\n');
      expect(lines[0]).to.match(/^explain IPv6 fd00:1::2 \(3c8a5d7e-cc… on instance-1\) → fd00:1::4 \(2b9d4e6f-bb… on instance-2\), icmp, a new connection$/);
      expect(lines).to.have.length(1 + 3 + 1);
      // Hop names padded to the longest shown (outbound), then two blanks.
      expect(lines[1]).to.match(/^ {2}source {4}\[instance-1\] endpoint /);
      expect(lines[2]).to.match(/^ {2}outbound {2}\[instance-1\] felix-from chain of /);
      expect(lines[3]).to.match(/^ {14}DENY: no rule of 1 allows it/);
      expect(lines.at(-1)).to.equal(x.summary);
    });
  });
});
